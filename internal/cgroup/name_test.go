package cgroup

import (
	"net/url"
	"strings"
	"testing"
)

func TestEscapeName(t *testing.T) {
	for _, tc := range []struct{ scenario, name, want string }{
		{"file name kept", "db.toml", "db.toml"},
		{"safe characters kept", "A-z_0.9", "A-z_0.9"},
		{"slash encoded", "a/b", "a%2Fb"},
		{"dot-dot path encoded", "../../etc", "%2E.%2F..%2Fetc"},
		{"dot alone encoded", ".", "%2E"},
		{"dot-dot alone encoded", "..", "%2E."},
		{"leading dot encoded", ".supervisor", "%2Esupervisor"},
		{"space encoded", "my service", "my%20service"},
		{"percent encoded", "100%", "100%25"},
		{"unicode encoded bytewise", "café", "caf%C3%A9"},
		{"newline encoded", "a\nb", "a%0Ab"},
		{"interface file name kept apart", "cpu.max", "cpu%2Emax"},
		{"cgroup file kept apart", "cgroup.procs", "cgroup%2Eprocs"},
		{"memory prefix kept apart", "memory.toml", "memory%2Etoml"},
		{"v1 tasks file kept apart", "tasks", "%74asks"},
		{"controller name without dot kept", "cpu", "cpu"},
		{"longer prefix not reserved", "cpux.toml", "cpux.toml"},
		{"empty stays empty", "", ""},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			got := EscapeName(tc.name)
			if got != tc.want {
				t.Fatalf("EscapeName(%q) = %q, want %q", tc.name, got, tc.want)
			}
			back, err := url.PathUnescape(got)
			if err != nil || back != tc.name {
				t.Fatalf("unescape %q = %q, %v; want %q", got, back, err, tc.name)
			}
		})
	}
}

func TestEscapeNameIsAlwaysASafeDirectoryName(t *testing.T) {
	long := strings.Repeat("é", 200)
	for _, name := range []string{long, long + "x", strings.Repeat("a", 300), strings.Repeat("a", 255), "/", "..", "\x00"} {
		got := EscapeName(name)
		if len(got) > 255 || strings.Contains(got, "/") || got == "." || got == ".." || strings.HasPrefix(got, ".") || strings.ContainsRune(got, 0) {
			t.Errorf("EscapeName(%.20q...) = %q: not a safe directory name", name, got)
		}
	}
	if a, b := EscapeName(long), EscapeName(long+"x"); a == b {
		t.Errorf("two long names escape to the same %q", a)
	}
	if got := EscapeName(strings.Repeat("a", 255)); got != strings.Repeat("a", 255) {
		t.Errorf("a 255-byte name was changed to %q", got)
	}
}

func FuzzEscapeName(f *testing.F) {
	for _, s := range []string{"db.toml", "../x", "café", "cpu.max", "tasks", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := EscapeName(name)
		if strings.Contains(got, "/") || got == "." || got == ".." || strings.HasPrefix(got, ".") || len(got) > 255 {
			t.Fatalf("EscapeName(%q) = %q", name, got)
		}
		if !strings.Contains(got, "~") {
			if back, err := url.PathUnescape(got); err != nil || back != name {
				t.Fatalf("round trip of %q: %q, %v", name, back, err)
			}
		}
	})
}

func TestOOMReason(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		limit    uint64
		want     string
	}{
		{"binary megabytes", 100 << 20, "killed: out of memory (limit 100 MiB)"},
		{"binary gigabytes", 2 << 30, "killed: out of memory (limit 2 GiB)"},
		{"decimal megabytes", 100_000_000, "killed: out of memory (limit 100 MB)"},
		{"odd size", 100<<20 + 1, "killed: out of memory (limit 100.0 MiB)"},
		{"bytes", 512, "killed: out of memory (limit 512 B)"},
		{"no limit known", 0, "killed: out of memory"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			if got := OOMReason(tc.limit); got != tc.want {
				t.Fatalf("OOMReason(%d) = %q, want %q", tc.limit, got, tc.want)
			}
		})
	}
}

// RemoveStale touches only the parents InstanceName makes.
func TestIsInstanceName(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{InstanceName(), true},
		{"horust-1-0123456789abcdef", true},
		{"horust-4194304-ffffffffffffffff", true},
		{"horust--0123456789abcdef", false},      // no pid
		{"horust-12-0123456789abcde", false},     // 15 hex digits
		{"horust-12-0123456789abcdef0", false},   // 17
		{"horust-12-0123456789ABCDEF", false},    // upper case
		{"horust-1x-0123456789abcdef", false},    // pid not a number
		{"horust-12-0123456789abcdeg", false},    // not hex
		{"horust-12-34-0123456789abcdef", false}, // two dashes
		{"horust-12", false},                     // no random part
		{"Horust-12-0123456789abcdef", false},    // prefix
		{"xhorust-12-0123456789abcdef", false},   // prefix
		{"horust-12-0123456789abcdef/", false},   // trailing byte
		{"horust-١٢-0123456789abcdef", false},    // non-ASCII digits
		{"", false},
	} {
		if got := isInstanceName(c.name); got != c.want {
			t.Errorf("isInstanceName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
