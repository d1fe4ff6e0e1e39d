package main

import (
	"io"
	"slices"
	"testing"

	"github.com/horust-go/horust/internal/control"
)

// "horust -- CMD" skips the flag set; it must give what parsing the
// options would give.
func TestDoubleDashWithoutOptions(t *testing.T) {
	t.Setenv(control.FolderEnv, "")
	for _, args := range [][]string{
		{"--", "/bin/true"},
		{"--", "--version"},
		{"--", "/bin/sh", "-c", "exit 3", "--", "x"},
	} {
		fast, err := parseArgs(args, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		slow := &cli{}
		if err := parseOptions(slow, args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !slices.Equal(fast.command, slow.command) || fast.version || fast.configPath != defaultConfigPath || fast.udsFolder != defaultUDSFolder {
			t.Errorf("%q: command %q (want %q), %+v", args, fast.command, slow.command, fast)
		}
	}
	if _, err := parseArgs([]string{"--"}, io.Discard); err == nil {
		t.Error(`"horust --" alone: no error`)
	}
}
