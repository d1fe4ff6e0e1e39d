package config

import (
	"strings"
	"testing"

	"github.com/horust-go/horust/internal/shell"
)

// seeds returns the example services, the sample and a few broken files.
func seeds(tb testing.TB) []string {
	var out []string
	for _, text := range exampleFiles(tb) {
		out = append(out, text)
	}
	return append(out, SampleService(),
		"command = \"x\"\n[restart\n", "command = \"$UNDEF ${A:-b} $$ ${\"\n",
		"command = \"x\"\nrestart = { strategy = \"always\", attempts = -1 }\n[[failure]]\n",
		"a.b.c = 1\n[a]\nb = [1, [2, {x = 3}]]\n", "x = 1979-05-27T07:32:00Z\ny = inf\nz = 0x_1",
	)
}

func FuzzTemplate(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	lookup := func(k string) (string, bool) {
		if strings.HasPrefix(k, "U") {
			return "", false // undefined
		}
		return "<" + k + ">", true
	}
	f.Fuzz(func(t *testing.T, text string) {
		out, lines, errs := expand(text, lookup)
		inLines := strings.Count(text, "\n") + 1
		for _, e := range errs {
			if e.Line < 1 || e.Line > inLines || e.Col < 1 {
				t.Fatalf("error at %d:%d outside the text (%d lines)", e.Line, e.Col, inLines)
			}
			if e.Error() == "" {
				t.Fatal("empty error message")
			}
		}
		if len(lines) != strings.Count(out, "\n")+1 {
			t.Fatalf("%d line mappings for %d lines", len(lines), strings.Count(out, "\n")+1)
		}
		for k, l := range lines {
			if l < 1 || l > inLines || k > 0 && l < lines[k-1] {
				t.Fatalf("line map %v out of order or range", lines)
			}
		}
		if !strings.Contains(text, "$") && !strings.HasPrefix(text, "~") && (out != text || len(errs) > 0) {
			t.Fatalf("text without $ changed: %q -> %q", text, out)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10s", "500ms", "1min", "2h 30m", "1h30m", "1 0s", "1.5s", "10", "", "5µs", "3M", "99999999999999999999y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v < 0", s, d)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"100 MB", "110 MiB", "110 MIB", "50", "1.5KB", " 1KB", "100 M", "1K", "18446744073709551616", "0.000001 PiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Any input: a size or an error, never a panic.
		if _, err := ParseSize(s); err != nil && err.Error() == "" {
			t.Fatalf("ParseSize(%q): an error without a message", s)
		}
	})
}

func FuzzDecodeService(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		svc, _, probs := decodeService("svc.toml", text, "/")
		if svc == nil || svc.Name == "" {
			t.Fatal("no service or no name")
		}
		for _, p := range probs {
			if p.File != "svc.toml" || p.Msg == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
		if len(probs) == 0 {
			words, err := shell.Split(svc.Command)
			if err != nil || len(words) == 0 {
				t.Fatalf("accepted command %q: %v", svc.Command, err)
			}
			if svc.Healthiness.Interval <= 0 || svc.Healthiness.Timeout <= 0 {
				t.Fatalf("accepted interval %v / timeout %v", svc.Healthiness.Interval, svc.Healthiness.Timeout)
			}
		}
	})
}
