package config

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"17nsec", 17}, {"17nanos", 17}, {"33ns", 33},
		{"3usec", 3 * time.Microsecond}, {"78us", 78 * time.Microsecond}, {"163µs", 163 * time.Microsecond},
		{"31msec", 31 * time.Millisecond}, {"31millis", 31 * time.Millisecond}, {"500ms", 500 * time.Millisecond},
		{"3000s", 3000 * time.Second}, {"300sec", 300 * time.Second}, {"300secs", 300 * time.Second},
		{"50seconds", 50 * time.Second}, {"1second", time.Second},
		{"100m", 100 * time.Minute}, {"1min", time.Minute}, {"12mins", 12 * time.Minute},
		{"1minute", time.Minute}, {"7minutes", 7 * time.Minute},
		{"2h", 2 * time.Hour}, {"7hr", 7 * time.Hour}, {"7hrs", 7 * time.Hour}, {"1hour", time.Hour}, {"24hours", day},
		{"1day", day}, {"2days", 2 * day}, {"365d", 365 * day},
		{"1week", 7 * day}, {"7weeks", 49 * day}, {"52w", 52 * 7 * day},
		{"1month", 2_630_016 * time.Second}, {"3months", 3 * 2_630_016 * time.Second}, {"12M", 12 * 2_630_016 * time.Second},
		{"1year", 31_557_600 * time.Second}, {"7years", 7 * 31_557_600 * time.Second}, {"17y", 17 * 31_557_600 * time.Second},
		{"0s", 0}, {"10s", 10 * time.Second},
		{"2h 30m", 150 * time.Minute}, {"1h30m", 90 * time.Minute},
		{"20 min 17 nsec ", 20*time.Minute + 17}, {"  5 s", 5 * time.Second},
		{"1 0s", 10 * time.Second}, {"1s1s", 2 * time.Second},
		{"292y", 292 * 31_557_600 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"fraction", "1.5s", `fractions are not allowed: use "1500ms"`},
		{"fraction of minutes", "1.5m", `use "90s"`},
		{"fraction of hours", "0.5h", `use "30m"`},
		{"fraction with a blank", "2.25 s", `use "2250ms"`},
		{"fraction of a humantime unit", "1.5min", `fractions are not allowed: write a whole number of a smaller unit`},
		{"bare number", "10", "time unit needed"},
		{"empty", "", "empty"},
		{"blank", "   ", "empty"},
		{"unknown unit", "10 parsecs", `unknown time unit "parsecs"`},
		{"upper-case seconds", "10S", `unknown time unit "S"`},
		{"number overflow", "100000000000000000000s", "too large"},
		{"duration overflow", "300y", "too large"},
		{"sum overflow", "290y 290y", "too large"},
		{"unit first", "s", "expected a number"},
		{"negative", "-1s", "expected a number"},
		{"unit split by a blank", "1 m s", "expected a number"},
		{"trailing number", "1s 2", "time unit needed"},
		{"symbol in the unit", "1s!", "invalid character"},
		{"symbol in the number", "1,000s", "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseDuration(%q) error %q does not contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"100 MB", 100_000_000}, {"110 MiB", 115_343_360}, {"110 MIB", 115_343_360}, {"110 mib", 115_343_360},
		{"50", 50}, {"50 ", 50}, {"1.5KB", 1500}, {"0", 0}, {"7B", 7}, {"7 b", 7},
		{"1KB", 1000}, {"1GB", 1e9}, {"1TB", 1e12}, {"1PB", 1e15},
		{"1KiB", 1024}, {"1GiB", 1 << 30}, {"1TiB", 1 << 40}, {"1PiB", 1 << 50},
		{"1.23 KiB", 1259}, {"1.23B", 1}, {"1.001KB", 1001}, {"100   MB", 100_000_000},
		{"18446744073709551615", 1<<64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"leading blank", " 1KB", "invalid size"},
		{"trailing blank after the unit", "1KB ", "unknown unit"},
		{"unit without B", "100 M", `unknown unit "M"`},
		{"K alone", "1K", `unknown unit "K"`},
		{"empty", "", "invalid size"},
		{"dot without digits", "1.KB", "followed by digits"},
		{"leading dot", ".5KB", "invalid size"},
		{"negative", "-1", "invalid size"},
		{"tab before the unit", "1\tKB", "unknown unit"},
		{"overflow", "18446744073709551616", "too large"},
		{"overflow with a unit", "20000 PB", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err == nil {
				t.Fatalf("ParseSize(%q) = %d, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSize(%q) error %q does not contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
	}{
		{"TERM", syscall.SIGTERM}, {"HUP", syscall.SIGHUP}, {"INT", syscall.SIGINT}, {"QUIT", syscall.SIGQUIT},
		{"USR1", syscall.SIGUSR1}, {"USR2", syscall.SIGUSR2}, {"WINCH", syscall.SIGWINCH}, {"CHLD", syscall.SIGCHLD},
		{"KILL", syscall.SIGKILL}, {"SIGTERM", syscall.SIGTERM}, {"term", syscall.SIGTERM}, {"sigkill", syscall.SIGKILL},
		{"SYS", syscall.SIGSYS}, {"IO", syscall.SIGIO},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if err != nil {
				t.Fatalf("ParseSignal(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSignal(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "SIG", "15", "TERMINATE", "SIGSIGTERM", "RTMIN"} {
		t.Run("rejects "+bad, func(t *testing.T) {
			if got, err := ParseSignal(bad); err == nil {
				t.Fatalf("ParseSignal(%q) = %v, want an error", bad, got)
			} else if !strings.Contains(err.Error(), "TERM") {
				t.Fatalf("error %q does not list the accepted names", err)
			}
		})
	}
}

func TestSignalName(t *testing.T) {
	n := 0
	allSignals(func(name string, sig syscall.Signal) {
		n++
		if got := SignalName(sig); got != name {
			t.Errorf("SignalName(%d) = %q, want %q", sig, got, name)
		}
		if got, err := ParseSignal(name); err != nil || got != sig {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", name, got, err, sig)
		}
	})
	if n < 31 {
		t.Errorf("%d signal names, want the 29 of every system and Linux's STKFLT and PWR", n)
	}
	if got := SignalName(syscall.Signal(99)); got != "99" {
		t.Errorf("SignalName(99) = %q, want \"99\"", got)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"HOME": "/home/u", "USER": "alice", "EMPTY": "", "1": "one", "A_B": "ab", "ÉTÉ": "summer", "DOLLAR": "$USER"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "command = \"x\"", "command = \"x\""},
		{"dollar name", "$USER", "alice"},
		{"braced name", "${USER}x", "alicex"},
		{"name ends at a dash", "$USER-x", "alice-x"},
		{"underscore in name", "$A_B.", "ab."},
		{"digit alone", "$1 x", "one x"},
		{"unicode name", "$ÉTÉ!", "summer!"},
		{"default when unset", "${NOPE:-fallback}", "fallback"},
		{"default not expanded", "${NOPE:-$USER}", "$USER"},
		{"default ends at first brace", "${NOPE:-a}b}", "ab}"},
		{"set but empty ignores default", "[${EMPTY:-d}]", "[]"},
		{"set ignores default", "${USER:-d}", "alice"},
		{"empty name with default", "${:-d}", "d"},
		{"double dollar escapes", "$$USER $$", "$USER $"},
		{"dollar before blank stays", "a $ b", "a $ b"},
		{"dollar before quote stays", `"$"`, `"$"`},
		{"dollar at the end stays", "a$", "a$"},
		{"unclosed brace stays", "${USER and more", "${USER and more"},
		{"unclosed brace then a name", "${ $USER", "${ alice"},
		{"value not expanded again", "${DOLLAR} $DOLLAR", "$USER $USER"},
		{"tilde at the start", "~/x", "/home/u/x"},
		{"tilde alone", "~", "/home/u"},
		{"tilde not followed by a slash", "~x", "~x"},
		{"tilde elsewhere", "a ~/x", "a ~/x"},
		// A comment line is left alone (a difference from the original).
		{"comment line left alone", "# $USER $NOPE\nx = \"$USER\"\n", "# $USER $NOPE\nx = \"alice\"\n"},
		{"indented comment line", "  \t# ${NOPE}\n", "  \t# ${NOPE}\n"},
		{"comment after a key is expanded", "x = 1 # $USER", "x = 1 # alice"},
		{"hash in a multi-line string is not a comment", "x = \"\"\"\n# $USER\n\"\"\"\n# $NOPE", "x = \"\"\"\n# alice\n\"\"\"\n# $NOPE"},
		{"literal multi-line string", "x = '''a\n# $USER'''\n# $NOPE", "x = '''a\n# alice'''\n# $NOPE"},
		{"escaped quotes do not end a multi-line string", "x = \"\"\"a \\\"\"\"\n# $USER\n\"\"\"", "x = \"\"\"a \\\"\"\"\n# alice\n\"\"\""},
		{"delimiters inside one-line strings", "x = \"'''\" # \"\"\"\ny = '\"\"\"'\n# $NOPE", "x = \"'''\" # \"\"\"\ny = '\"\"\"'\n# $NOPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, errs := expand(tt.in, lookup)
			if len(errs) > 0 {
				t.Fatalf("expand(%q): %v", tt.in, errs)
			}
			if got != tt.want {
				t.Fatalf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "USER" {
			return "alice", true
		}
		return "", false
	}
	tests := []struct {
		name, in  string
		line, col int
		msg       string
	}{
		{"undefined dollar name", "x = 1\ncommand = \"$NOPE\"", 2, 12, "undefined variable $NOPE"},
		{"undefined braced name", "  ${NOPE}", 1, 3, "undefined variable ${NOPE}"},
		{"longest run is looked up", "$USER_x", 1, 1, "undefined variable $USER_x"},
		{"empty braces", "a ${}", 1, 3, "empty variable name"},
		{"after a key, in a comment", "x = 1 # uses $SECRET\n", 1, 14, "$SECRET"},
		{"digit name", "$1st", 1, 1, "$1st"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, errs := expand(tt.in, lookup)
			if len(errs) != 1 {
				t.Fatalf("expand(%q) errors = %v, want one", tt.in, errs)
			}
			e := errs[0]
			if e.Line != tt.line || e.Col != tt.col || !strings.Contains(e.Error(), tt.msg) {
				t.Fatalf("expand(%q) error = %d:%d %q, want %d:%d containing %q", tt.in, e.Line, e.Col, e, tt.line, tt.col, tt.msg)
			}
			if out != tt.in {
				t.Fatalf("expand(%q) = %q, want the reference kept as written", tt.in, out)
			}
		})
	}
	t.Run("every undefined variable is reported", func(t *testing.T) {
		_, _, errs := expand("$A $B\n${C}", lookup)
		if len(errs) != 3 || errs[2].Line != 2 {
			t.Fatalf("errors = %+v, want A, B and C (C on line 2)", errs)
		}
	})
}

func TestExpandLineMap(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"V": "x\ny"}[k]
		return v, ok
	}
	tests := []struct {
		name, in string
		lines    []int
		errLines []int
	}{
		{"plain lines", "a\nb\nc", []int{1, 2, 3}, nil},
		{"a value with a newline", "a\n$V\nb", []int{1, 2, 2, 3}, nil},
		{"a default across lines", "${NO:-1\n2}\n$U", []int{1, 2, 3}, []int{3}},
		{"an undefined braced name across lines", "${U\nZ}\n$U", []int{1, 2, 3}, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, lines, errs := expand(tt.in, lookup)
			if !slices.Equal(lines, tt.lines) {
				t.Fatalf("lines = %v, want %v", lines, tt.lines)
			}
			var errLines []int
			for _, e := range errs {
				errLines = append(errLines, e.Line)
			}
			if !slices.Equal(errLines, tt.errLines) {
				t.Fatalf("errors on lines %v, want %v", errLines, tt.errLines)
			}
		})
	}
}
