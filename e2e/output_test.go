//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// outputSvc is a service that prints "to-stdout" on stdout and "to-stderr"
// on stderr once, with more TOML.
func outputSvc(more ...string) string {
	return svc(role("print", "to-stdout", "to-stderr"), append(more, "[environment]", restartNoRaceExitSleep)...)
}

func TestOutputRedirection(t *testing.T) {
	const out, errl = "to-stdout\n", "to-stderr\n"
	cases := []struct {
		name string
		// keys, with FILE and FILE2 replaced by paths
		toml []string
		// what horust's stdout and stderr and the files hold, exactly
		stdout, stderr, file, file2 string
	}{
		{name: "defaults", stdout: out, stderr: errl},
		{name: "explicit STDOUT and STDERR", toml: []string{`stdout = "STDOUT"`, `stderr = "STDERR"`}, stdout: out, stderr: errl},
		{name: "stdout to STDERR", toml: []string{`stdout = "STDERR"`}, stderr: out + errl},
		{name: "stderr to STDOUT", toml: []string{`stderr = "STDOUT"`}, stdout: out + errl},
		{name: "swapped", toml: []string{`stdout = "STDERR"`, `stderr = "STDOUT"`}, stderr: out + errl},
		{name: "stdout to a file", toml: []string{`stdout = "FILE"`}, stderr: errl, file: out},
		{name: "stderr to a file", toml: []string{`stderr = "FILE"`}, stdout: out, file: errl},
		{name: "both to their own files", toml: []string{`stdout = "FILE"`, `stderr = "FILE2"`}, file: out, file2: errl},
		{name: "stderr follows stdout into a file", toml: []string{`stdout = "FILE"`, `stderr = "STDOUT"`}, file: out + errl},
		{name: "both to the same file", toml: []string{`stdout = "FILE"`, `stderr = "FILE"`}, file: out + errl},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			file, file2 := filepath.Join(tmp, "out.log"), filepath.Join(tmp, "err.log")
			var keys []string
			for _, k := range tc.toml {
				keys = append(keys, strings.NewReplacer(`"FILE2"`, fmt.Sprintf("%q", file2), `"FILE"`, fmt.Sprintf("%q", file)).Replace(k))
			}
			h := startHorust(t, runOpts{files: map[string]string{"output.toml": outputSvc(keys...)}})
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0", code)
			}
			for _, c := range []struct{ what, got, want string }{
				{"horust's stdout", h.stdout.String(), tc.stdout},
				{"horust's stderr", h.stderr.String(), tc.stderr},
				{"the file", readFile(file), tc.file},
				{"the second file", readFile(file2), tc.file2},
			} {
				if c.got != c.want {
					t.Errorf("%s holds %q, want %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestOutputFileAppendsAcrossRestarts(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "out.log")
	// What was there before horust is kept.
	if err := os.WriteFile(file, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHorust(t, runOpts{files: map[string]string{
		"output-restarts.toml": outputSvc(fmt.Sprintf("stdout = %q", file), `stderr = "STDOUT"`, "[restart]", `strategy = "always"`),
	}})
	eventually(t, 20*time.Second, "three runs in the file", func() bool { return strings.Count(readFile(file), "to-stderr\n") >= 3 })
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d, want 0", code)
	}
	got := readFile(file)
	rest, ok := strings.CutPrefix(got, "before\n")
	if !ok {
		t.Fatalf("the file's earlier content is gone:\n%s", got)
	}
	// Every run's two lines, whole and in order, one run after the other.
	runs := strings.Count(rest, "to-stdout\nto-stderr\n")
	if runs < 3 || rest != strings.Repeat("to-stdout\nto-stderr\n", runs) {
		t.Fatalf("the file after 'before' is not whole runs appended:\n%s", got)
	}
}

func TestOutputUnwritablePath(t *testing.T) {
	tmp := t.TempDir()
	missingDir := filepath.Join(tmp, "no-such-dir", "out.log")
	cases := []struct {
		name, key, path string
	}{
		{"stdout in a missing directory", "stdout", missingDir},
		{"stderr in a missing directory", "stderr", missingDir},
		{"stdout is a directory", "stdout", tmp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startHorust(t, runOpts{env: []string{"HORUST_LOG=error"}, files: map[string]string{
				"output-bad.toml":   outputSvc(fmt.Sprintf("%s = %q", tc.key, tc.path)),
				"output-other.toml": svc(role("sleep")),
			}})
			h.waitState("output-bad.toml", 20*time.Second, "FINISHEDFAILED")
			st := h.status("output-bad.toml")
			if !strings.Contains(st.Reason, tc.key) || !strings.Contains(st.Reason, tc.path) {
				t.Errorf("reason %q does not name %s and the path", st.Reason, tc.key)
			}
			if log := h.stderr.String(); !strings.Contains(log, "service=output-bad.toml") || !strings.Contains(log, tc.path) {
				t.Errorf("no error line names the service and the path:\n%s", log)
			}
			if s := h.state("output-other.toml"); s != "RUNNING" {
				t.Fatalf("the other service is %s", s)
			}
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0", code)
			}
		})
	}
}

func TestOutputUnwritablePathExitCode(t *testing.T) {
	h := startHorust(t, runOpts{args: []string{"--unsuccessful-exit-finished-failed"}, files: map[string]string{
		"output-fails.toml": outputSvc(fmt.Sprintf("stdout = %q", filepath.Join(t.TempDir(), "no-such-dir", "out.log"))),
	}})
	if code := h.wait(20 * time.Second); code != 101 {
		t.Fatalf("horust exit code %d, want 101", code)
	}
}
