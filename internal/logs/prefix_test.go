//go:build linux

package logs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

func TestPrefixThreeServicesConcurrently(t *testing.T) {
	// Three services write at once, one of them to stderr, all to one pipe
	// behind horust's stdout and stderr: every line must arrive whole,
	// attributed, and in each service's order.
	const n = 20000
	out, collect := pipeOutputs(t, true)
	names := []string{"alpha.toml", "beta.toml", "gamma.toml"}
	var children []*child
	for i, name := range names {
		op := "lines:" + name + ":" + strconv.Itoa(n)
		if i == 2 {
			op = "e" + op
		}
		c, _ := start(t, &config.Service{Name: name, Stdout: "STDOUT", Stderr: "STDERR"}, out, op)
		children = append(children, c)
	}
	for _, c := range children {
		c.wait(t)
	}
	text := collect()
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("output does not end with a newline")
	}
	re := regexp.MustCompile(`^([a-z]+\.toml) \| ([a-z]+\.toml) (\d+) (x+)$`)
	next := map[string]int{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil || m[1] != m[2] {
			t.Fatalf("line %d is not a whole attributed line: %.200q", i, line)
		}
		k, _ := strconv.Atoi(m[3])
		if k != next[m[1]] || len(m[4]) != 40+k%50 {
			t.Fatalf("line %d: %s line %d, want line %d: %.200q", i, m[1], k, next[m[1]], line)
		}
		next[m[1]]++
	}
	for _, name := range names {
		if next[name] != n {
			t.Errorf("%s: %d lines, want %d", name, next[name], n)
		}
	}
}

func TestPrefixLines(t *testing.T) {
	long := strings.Repeat("L", 200<<10)
	tests := []struct {
		name string
		ops  []string
		want []string // lines without "n.toml | " and without newline
	}{
		{"a last line without newline gets one at EOF", []string{"out:abc\ndef"}, []string{"abc", "def"}},
		{"a line written in pieces is one line", []string{"out:ab", "out:cd", "out:e\nf\n"}, []string{"abcde", "f"}},
		{"empty lines are lines", []string{"out:\n\nx\n"}, []string{"", "", "x"}},
		{"a 200 KiB line is split in 64 KiB pieces, not lost", []string{"fill:L:204800", "out:\nnext\n"},
			[]string{long[:64<<10], long[64<<10 : 128<<10], long[128<<10 : 192<<10], long[192<<10:], "next"}},
		{"a 64 KiB line is one line", []string{"fill:L:65536", "out:\n"}, []string{long[:64<<10]}},
		{"128 KiB without newline at EOF gives two pieces, no empty line", []string{"fill:L:131072"},
			[]string{long[:64<<10], long[64<<10 : 128<<10]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, path, _ := testOutputs(t, false, false)
			svc := &config.Service{Name: "n.toml", Stdout: "STDOUT", Stderr: "STDERR", Prefix: true}
			run(t, svc, out, tt.ops...)
			var want strings.Builder
			for _, l := range tt.want {
				want.WriteString("n.toml | " + l + "\n")
			}
			if got := readFile(t, path); got != want.String() {
				t.Fatalf("got %d bytes %.300q\nwant %d bytes %.300q", len(got), got, want.Len(), want.String())
			}
		})
	}
}

func TestPrefixTimestamps(t *testing.T) {
	out, _, errPath := testOutputs(t, false, false)
	svc := &config.Service{Name: "ts.toml", Stdout: "STDERR", Stderr: "STDERR", Prefix: true, Timestamps: true}
	before := time.Now().UTC().Truncate(time.Millisecond)
	run(t, svc, out, "out:hello\n", "err:world\n")
	after := time.Now().UTC()
	lines := strings.Split(strings.TrimSuffix(readFile(t, errPath), "\n"), "\n")
	re := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ts\.toml \| (hello|world)$`)
	if len(lines) != 2 {
		t.Fatalf("got %q", lines)
	}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q does not match %s", l, re)
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || at.Before(before) || at.After(after) {
			t.Fatalf("time %s not within [%s, %s] (%v)", m[1], before, after, err)
		}
	}
}

func TestPrefixStreams(t *testing.T) {
	tests := []struct {
		name           string
		stdout, stderr string
		prefix         bool
		prefixAll      bool
		wantOut        string
		wantErr        string
		pipes          int // copiers expected
	}{
		{"stdout-prefix on both streams", "STDOUT", "STDERR", true, false, "p.toml | o\n", "p.toml | e\n", 2},
		{"--log-prefix without stdout-prefix", "STDOUT", "STDERR", false, true, "p.toml | o\n", "p.toml | e\n", 2},
		{"no prefix is direct", "STDOUT", "STDERR", false, false, "o\n", "e\n", 0},
		{"stderr follows stdout into one pipe", "STDOUT", "STDOUT", true, false, "p.toml | o\np.toml | e\n", "", 1},
		{"stdout follows stderr", "STDERR", "STDERR", true, false, "", "p.toml | o\np.toml | e\n", 1},
		{"swapped: both go to horust's stderr", "STDERR", "STDOUT", true, false, "", "p.toml | o\np.toml | e\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, outPath, errPath := testOutputs(t, tt.prefixAll, false)
			svc := &config.Service{Name: "p.toml", Stdout: tt.stdout, Stderr: tt.stderr, Prefix: tt.prefix}
			c, w := start(t, svc, out, "out:o\n", "err:e\n")
			c.wait(t)
			if len(w.copiers) != tt.pipes {
				t.Errorf("%d copiers, want %d", len(w.copiers), tt.pipes)
			}
			if got := readFile(t, outPath); got != tt.wantOut {
				t.Errorf("stdout %q, want %q", got, tt.wantOut)
			}
			if got := readFile(t, errPath); got != tt.wantErr {
				t.Errorf("stderr %q, want %q", got, tt.wantErr)
			}
			st := out.Stats("p.toml")
			if tt.pipes > 0 && st.Copied != uint64(len(tt.wantOut)+len(tt.wantErr)) || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestPrefixWriteFailureIsCountedAndLoggedOnce(t *testing.T) {
	// horust's stdout is /dev/full: every write fails with ENOSPC. The
	// service must still run to its end, everything is counted as dropped,
	// and the failure is logged once.
	full := openDevFull(t)
	out := NewOutputs(full, full, true)
	var logged logCounter
	svc := &config.Service{Name: "full.toml", Stdout: "STDOUT", Stderr: "STDOUT"}
	w, err := Setup(svc, out, logged.logger())
	if err != nil {
		t.Fatal(err)
	}
	c := startWired(t, w, "lines:full.toml:30000", "err:last")
	c.wait(t)
	var want int
	for i := range 30000 {
		want += len(fmt.Sprintf("full.toml | full.toml %d %s\n", i, strings.Repeat("x", 40+i%50)))
	}
	want += len("full.toml | last\n")
	if st := out.Stats("full.toml"); st.Dropped != uint64(want) || st.Copied != 0 {
		t.Fatalf("stats %+v, want %d dropped", st, want)
	}
	if n := logged.count("service output dropped"); n != 1 {
		t.Fatalf("logged %d times, want once: %s", n, logged.text())
	}
	for _, s := range []string{"service=full.toml", "stream=stdout", "path=STDOUT", "no space left on device"} {
		if !strings.Contains(logged.text(), s) {
			t.Errorf("log %q lacks %q", logged.text(), s)
		}
	}
}
