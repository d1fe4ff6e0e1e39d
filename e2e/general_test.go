//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runHorust runs horust to completion with args and returns its output and
// exit code.
func runHorust(t *testing.T, timeout time.Duration, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	h := startHorust(t, runOpts{args: args, noArgs: true, env: env})
	code = h.wait(timeout)
	return h.stdout.String(), h.stderr.String(), code
}

func TestCommandLine(t *testing.T) {
	good := servicesDir(t, map[string]string{"a.toml": svc(role("exit", "0"))})
	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStderr bool
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: "--services-path PATH", noStderr: true},
		{name: "short help", args: []string{"-h"}, code: 0, stdout: "Usage:", noStderr: true},
		{name: "version", args: []string{"--version"}, code: 0, stdout: " (commit ", noStderr: true},
		{name: "version short flag", args: []string{"-V"}, code: 0, stdout: ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n", noStderr: true},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, stderr: "horust: flag provided but not defined: --nope\n"},
		{name: "flag without its value", args: []string{"--uds-mode"}, code: 2, stderr: "horust: flag needs an argument: --uds-mode\n"},
		{name: "bad flag value", args: []string{"--uds-mode", "999"}, code: 2, stderr: `horust: invalid value "999" for flag --uds-mode: want an octal mode`},
		{name: "bad boolean", args: []string{"--validate=maybe"}, code: 2, stderr: `horust: invalid boolean value "maybe" for --validate: parse error`},
		{name: "sample service", args: []string{"--sample-service"}, code: 0, stdout: "[restart]", noStderr: true},
		{name: "validate prints the start order", args: []string{"--validate", "--services-path", "../examples/services"}, code: 0,
			stdout: "1. database.toml", noStderr: true},
		{name: "missing services path", args: []string{"--services-path", "/nonexistent/services", "--uds-folder-path", t.TempDir()}, code: 1,
			stderr: "/nonexistent/services"},
		{name: "unparsable global config", args: []string{"--config-path", writeTemp(t, "horust.toml", "x = [\n"), "--services-path", good}, code: 1,
			stderr: "horust.toml"},
		{name: "uds folder is a file", args: []string{"--services-path", good, "--uds-folder-path", writeTemp(t, "file", "")}, code: 1,
			stderr: "--uds-folder-path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runHorust(t, 20*time.Second, nil, tc.args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Fatalf("stdout does not contain %q:\n%s", tc.stdout, out)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("stderr does not contain %q:\n%s", tc.stderr, errOut)
			}
			if tc.noStderr && errOut != "" {
				t.Fatalf("unexpected stderr: %s", errOut)
			}
		})
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidationErrorsStartNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	h := startHorust(t, runOpts{files: map[string]string{
		"good.toml": svc(role("append", marker, "x")),
		"bad.toml":  svc(role("sleep"), `start-after = ["db"]`, `bogus-key = 1`),
	}})
	if code := h.wait(10 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	errOut := h.stderr.String()
	for _, want := range []string{"bad.toml", "bogus-key", "start-after", `"db"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not name %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a service started although the configuration is invalid")
	}
}

func TestRunsServicesAndStopsOnSIGTERM(t *testing.T) {
	tmp := t.TempDir()
	h := startHorust(t, runOpts{files: map[string]string{
		"a.toml": svc(role("append-sleep", filepath.Join(tmp, "a"), "up")),
		"b.toml": svc(role("append-sleep", filepath.Join(tmp, "b"), "up"), `start-after = ["a.toml"]`),
	}})
	h.waitState("b.toml", 10*time.Second, "RUNNING")
	eventually(t, 10*time.Second, "both services to write", func() bool {
		return readFile(filepath.Join(tmp, "a")) == "up\n" && readFile(filepath.Join(tmp, "b")) == "up\n"
	})
	h.signal(syscall.SIGTERM)
	if code := h.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if s := h.stderr.String(); s != "" {
		t.Fatalf("horust wrote to stderr at the default log level: %s", s)
	}
}

func TestOneShot(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"argv kept", []string{"--", "/bin/sh", "-c", "echo a b"}, 0, "a b\n"},
		{"single argument split by shell rules", []string{"--", "/bin/sh -c 'echo hello world'"}, 0, "hello world\n"},
		{"exit code passed on", []string{"--", "/bin/sh", "-c", "exit 7"}, 7, ""},
		{"signal death is 128+N", []string{"--", "/bin/sh", "-c", "kill -USR1 $$"}, 128 + int(syscall.SIGUSR1), ""},
		{"missing program is 127", []string{"--", "/nonexistent/program"}, 127, ""},
		{"environment passed through", []string{"--", "/bin/sh", "-c", "echo $HORUST_E2E_VAR"}, 0, "kept\n"},
		// The options end at the first argument that is not one: no -- needed.
		{"without --", []string{"/bin/sh", "-c", "echo a b"}, 0, "a b\n"},
		{"the command's flags are its own", []string{"/bin/echo", "--validate", "-h", "--version"}, 0, "--validate -h --version\n"},
		{"a -- after the command is the command's", []string{"/bin/echo", "x", "--", "y"}, 0, "x -- y\n"},
		{"-- alone is a usage error", []string{"--"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runHorust(t, 20*time.Second, []string{"HORUST_E2E_VAR=kept"}, append([]string{"--uds-folder-path", t.TempDir()}, tc.args...)...)
			if code != tc.code || out != tc.stdout {
				t.Fatalf("exit %d stdout %q, want %d %q (stderr %s)", code, out, tc.code, tc.stdout, errOut)
			}
		})
	}
}

func TestOneShotForwardsTerm(t *testing.T) {
	tmp := t.TempDir()
	got := filepath.Join(tmp, "got")
	h := startHorust(t, runOpts{noArgs: true, args: []string{"--uds-folder-path", tmp, "--", selfBin, "role:trap", "TERM", "3", "0s", got}})
	readPid(t, got) // the trap is installed
	h.signal(syscall.SIGTERM)
	if code := h.wait(10 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want the command's 3", code)
	}
	if !strings.Contains(readFile(got), "got TERM") {
		t.Fatal("the command did not get TERM")
	}
}

// A one-shot horust serves horustctl while its command runs and removes its
// socket when it exits, also when the command ends before the socket is made
// (the socket is made once the command has run for a moment; a command that
// ends sooner never gets one).
func TestOneShotControlSocket(t *testing.T) {
	tmp := t.TempDir()
	got := filepath.Join(tmp, "got")
	h := startHorust(t, runOpts{noArgs: true, args: []string{"--uds-folder-path", tmp, "--", selfBin, "role:trap", "TERM", "3", "0s", got}})
	readPid(t, got)
	h.uds = tmp
	var out, errOut string
	eventually(t, 20*time.Second, "horustctl status to reach the one-shot horust", func() bool {
		var code int
		out, errOut, code = h.ctl("status")
		return code == 0
	})
	if !strings.Contains(out, "RUNNING") {
		t.Fatalf("horustctl status: stdout %q, stderr %q", out, errOut)
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(10 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want the command's 3", code)
	}
	if socks, _ := filepath.Glob(filepath.Join(tmp, "horust-*.sock")); len(socks) > 0 {
		t.Fatalf("sockets left after exit: %v", socks)
	}
	quick := t.TempDir()
	for range 5 {
		if _, errOut, code := runHorust(t, 20*time.Second, nil, "--uds-folder-path", quick, "--", "/bin/true"); code != 0 {
			t.Fatalf("horust -- /bin/true: exit %d (stderr %s)", code, errOut)
		}
	}
	if left, _ := os.ReadDir(quick); len(left) > 0 {
		t.Fatalf("files left in the socket folder after five quick one-shot runs: %v", left)
	}
}

func TestFatalConfigurationErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // every one must be on stderr
	}{
		{"undefined template variable", map[string]string{"a.toml": "command = \"/bin/echo $HORUST_E2E_UNDEFINED\"\n"},
			[]string{"a.toml:1", "HORUST_E2E_UNDEFINED"}},
		{"bad duration", map[string]string{"a.toml": "command = \"/bin/true\"\nstart-delay = \"1.5s\"\n"},
			[]string{"a.toml:2", "start-delay"}},
		{"bad signal", map[string]string{"a.toml": "command = \"/bin/true\"\n[termination]\nsignal = \"NOPE\"\n"},
			[]string{"a.toml:3", "signal"}},
		{"toml syntax", map[string]string{"a.toml": "command = \"/bin/true\n"},
			[]string{"a.toml:1"}},
		{"empty command", map[string]string{"a.toml": "command = \"   \"\n"},
			[]string{"a.toml:1", "command"}},
		{"duplicate names", map[string]string{"a.toml": "name = \"x\"\ncommand = \"/bin/true\"\n", "b.toml": "name = \"x\"\ncommand = \"/bin/true\"\n"},
			[]string{"a.toml", "b.toml", `"x"`}},
		{"start-after cycle", map[string]string{
			"a.toml": "command = \"/bin/true\"\nstart-after = [\"b.toml\"]\n",
			"b.toml": "command = \"/bin/true\"\nstart-after = [\"a.toml\"]\n"},
			[]string{"start-after", "a.toml -> b.toml -> a.toml"}},
		{"near miss", map[string]string{
			"db.toml":  "command = \"/bin/true\"\n",
			"web.toml": "command = \"/bin/true\"\nstart-after = [\"db\"]\n"},
			[]string{"web.toml:2", "start-after", "db.toml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "started")
			files := map[string]string{"zz-marker.toml": svc(role("append", marker, "x"))}
			for k, v := range tc.files {
				files[k] = v
			}
			h := startHorust(t, runOpts{files: files})
			if code := h.wait(20 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			errOut := h.stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errOut)
				}
			}
			if h.stdout.String() != "" {
				t.Errorf("stdout: %q", h.stdout.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("a service started although the configuration is invalid")
			}
		})
	}
}
