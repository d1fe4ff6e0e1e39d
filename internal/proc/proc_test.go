package proc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			panic("duplicate " + k)
		}
		m[k] = v
	}
	return m
}

func TestEnvironPrecedence(t *testing.T) {
	dir := t.TempDir()
	hostnameFile = filepath.Join(dir, "hostname")
	t.Cleanup(func() { hostnameFile = "/etc/hostname" })
	if err := os.WriteFile(hostnameFile, []byte("box\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := []string{"PATH=/host/bin", "HOME=/root", "USER=root", "TERM=xterm", "SECRET=s", "KEEP=k", "HOSTNAME=fromenv"}
	id := Identity{Name: "svcuser", Home: "/home/svc"}
	cases := []struct {
		name    string
		env     config.Environment
		extra   []string
		want    map[string]string
		missing []string
	}{
		{"clean environment by default", config.Environment{},
			nil, map[string]string{"HOSTNAME": "box", "PATH": "/host/bin", "USER": "svcuser", "HOME": "/home/svc", "TERM": "xterm"}, nil},
		{"keep-env keeps horust's, USER and HOME are the service's", config.Environment{KeepEnv: true},
			nil, map[string]string{"HOSTNAME": "box", "PATH": "/host/bin", "USER": "svcuser", "HOME": "/home/svc", "TERM": "xterm", "SECRET": "s", "KEEP": "k"}, nil},
		{"re-export picks names, a missing one is reported", config.Environment{ReExport: []string{"SECRET", "NOPE"}},
			nil, map[string]string{"HOSTNAME": "box", "PATH": "/host/bin", "USER": "svcuser", "HOME": "/home/svc", "TERM": "xterm", "SECRET": "s"}, []string{"NOPE"}},
		{"additional wins over everything", config.Environment{ReExport: []string{"SECRET"}, Additional: map[string]string{"SECRET": "a", "USER": "u", "PATH": "/p", "NEW": "n"}},
			nil, map[string]string{"HOSTNAME": "box", "PATH": "/p", "USER": "u", "HOME": "/home/svc", "TERM": "xterm", "SECRET": "a", "NEW": "n"}, nil},
		{"extra comes last", config.Environment{Additional: map[string]string{"NOTIFY_SOCKET": "x"}},
			[]string{"NOTIFY_SOCKET=@n"}, map[string]string{"HOSTNAME": "box", "PATH": "/host/bin", "USER": "svcuser", "HOME": "/home/svc", "TERM": "xterm", "NOTIFY_SOCKET": "@n"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, missing := Environ(&config.Service{Environment: tc.env}, id, host, tc.extra...)
			got := envMap(env)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s=%q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			if !slices.Equal(missing, tc.missing) {
				t.Fatalf("missing %v, want %v", missing, tc.missing)
			}
		})
	}
}

func TestHostname(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { hostnameFile = "/etc/hostname" })
	hostnameFile = filepath.Join(dir, "missing")
	if got := hostname("envhost"); got != "envhost" {
		t.Fatalf("no file: %q, want $HOSTNAME", got)
	}
	if got := hostname(""); got != "localhost" {
		t.Fatalf("no file, no $HOSTNAME: %q", got)
	}
	hostnameFile = dir // a directory, not a regular file
	if got := hostname("envhost"); got != "envhost" {
		t.Fatalf("directory: %q", got)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	plain := filepath.Join(dir, "data")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(plain, []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if p, err := LookPath("prog", "/nonexistent:"+dir); err != nil || p != exe {
		t.Fatalf("LookPath(prog) = %q, %v", p, err)
	}
	if _, err := LookPath("data", dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a file that is not executable was found: %v", err)
	}
	if _, err := LookPath("sub", dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a directory was found: %v", err)
	}
	if p, err := LookPath("./rel/x", ""); err != nil || p != "./rel/x" {
		t.Fatalf("a name with a slash is used as given: %q, %v", p, err)
	}
	_, err := LookPath("nope", dir)
	if err == nil || !strings.Contains(err.Error(), `program "nope"`) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v does not name the program and the PATH", err)
	}
}

func TestLookup(t *testing.T) {
	self := Self()
	if id, err := Lookup(config.User{}, self); err != nil || id.UID != self.UID || id.Switch {
		t.Fatalf("unset user: %+v, %v", id, err)
	}
	if _, err := Lookup(config.User{Set: true, IsName: true, Name: "no-such-user-horust"}, self); err == nil || !strings.Contains(err.Error(), "no-such-user-horust") {
		t.Fatalf("unknown name: %v", err)
	}
	// A uid without a passwd entry runs as itself.
	id, err := Lookup(config.User{Set: true, UID: 54321}, self)
	if err != nil || id.UID != 54321 || id.GID != 54321 || id.Name != "54321" || id.Home != "/" || len(id.Groups) != 0 {
		t.Fatalf("uid without entry: %+v, %v", id, err)
	}
	if self.UID == 0 {
		id, err := Lookup(config.User{Set: true, IsName: true, Name: "nobody"}, self)
		if err != nil || id.UID != 65534 || !id.Switch || id.Credential() == nil {
			t.Fatalf("nobody: %+v, %v", id, err)
		}
	}
}

func TestExitCode(t *testing.T) {
	if got := ExitCode(syscall.WaitStatus(3 << 8)); got != 3 {
		t.Fatalf("exit 3: %d", got)
	}
	if got := ExitCode(syscall.WaitStatus(syscall.SIGTERM)); got != 143 {
		t.Fatalf("SIGTERM: %d", got)
	}
}

// TestOwnProgramLookup: one of horust's own programs is looked for beside
// horust's executable, then in PATH; missing, the error says where to put it.
func TestOwnProgramLookup(t *testing.T) {
	beside, inPath, empty := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{beside, inPath} {
		if err := os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, selfDir, path string
		own                 bool
		want, wantErr       string
	}{
		{"beside horust first", beside, inPath, true, filepath.Join(beside, "prog"), ""},
		{"then PATH", empty, inPath, true, filepath.Join(inPath, "prog"), ""},
		{"PATH only for other programs", beside, empty, false, "", "not found in any of the PATH directories"},
		{"missing: where to install it", empty, empty, true, "", "prog is neither beside horust (in " + empty + ") nor in PATH (" + empty + "): install it beside horust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSystem(SystemOptions{Env: []string{"PATH=" + tc.path}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.selfDir = func() string { return tc.selfDir }
			got, err := s.lookPath("prog", tc.own)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("lookPath = %q, %v; want an error holding %q", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("lookPath = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestCheckStderr: a check started with CheckStderr hands over the first
// line of its stderr once the pipe closes, and the rest is drained.
func TestCheckStderr(t *testing.T) {
	s, err := NewSystem(SystemOptions{Env: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct{ script, want string }{
		{`printf '  first line  \nsecond\n' >&2; exit 1`, "first line"},
		{`exit 0`, ""},
		// More than the pipe holds: the check must not block on it.
		{`i=0; while [ $i -lt 2000 ]; do echo "a long line of the check's stderr, again and again" >&2; i=$((i+1)); done`, "a long line of the check's stderr, again and again"},
	} {
		lines := make(chan string, 1)
		p, err := s.Start(&config.Service{Name: "check", Argv: []string{"/bin/sh", "-c", tc.script}}, StartOptions{Check: true, CheckStderr: func(l string) { lines <- l }})
		if err != nil {
			t.Fatal(err)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(p.Pid(), &ws, 0, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-lines:
			if got != tc.want {
				t.Errorf("%s: line %q, want %q", tc.script, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no line 10s after the exit", tc.script)
		}
	}
}
