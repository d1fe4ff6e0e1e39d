package server

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/horust-go/horust/internal/control"
)

func TestListenUnixModeAndCleanup(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		want os.FileMode
	}{
		{"default mode is 0600", 0, 0o600},
		{"a shared mode is kept", 0o660, 0o660},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			path := filepath.Join(dir, control.SocketName(1))
			l, err := ListenUnix(path, tc.mode, -1)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tc.want {
				t.Fatalf("socket mode %v, want a socket with %v", fi.Mode(), tc.want)
			}
			if l.Addr().String() != path {
				t.Errorf("Addr %q, want %q", l.Addr(), path)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("the folder holds %d files, want only the socket", len(entries))
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("cannot connect: %v", err)
			}
			_ = c.Close()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("socket file left after Close: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestListenUnixGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group to another one needs root")
	}
	path := filepath.Join(shortDir(t), control.SocketName(1))
	l, err := ListenUnix(path, 0o660, 65534)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 65534 {
		t.Fatalf("socket group %d, want 65534", gid)
	}
}

func TestListenUnixReplacesOnlyAStaleSocket(t *testing.T) {
	t.Run("a stale socket is replaced", func(t *testing.T) {
		path := filepath.Join(shortDir(t), control.SocketName(1))
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		_ = old.Close() // the file stays, as after a kill -9
		l, err := ListenUnix(path, 0, -1)
		if err != nil {
			t.Fatalf("stale socket not replaced: %v", err)
		}
		defer func() { _ = l.Close() }()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("cannot connect to the new socket: %v", err)
		}
		_ = c.Close()
	})
	t.Run("a live socket is an error", func(t *testing.T) {
		path := filepath.Join(shortDir(t), control.SocketName(1))
		live, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = live.Close() }()
		_, err = ListenUnix(path, 0, -1)
		if err == nil || !strings.Contains(err.Error(), "answers on it") || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v, want an error saying another process answers on %s", err, path)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("the live socket was removed: %v", err)
		}
	})
	t.Run("a regular file is an error and kept", func(t *testing.T) {
		path := filepath.Join(shortDir(t), control.SocketName(1))
		if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ListenUnix(path, 0, -1); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("got %v, want a not-a-socket error", err)
		}
		if data, _ := os.ReadFile(path); string(data) != "data" {
			t.Fatal("the regular file was touched")
		}
	})
}

func TestListenUnixPathTooLong(t *testing.T) {
	dir := filepath.Join(shortDir(t), strings.Repeat("d", 100))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, control.SocketName(12345))
	_, err := ListenUnix(path, 0, -1)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "longer than the 107") {
		t.Fatalf("got %v, want an error naming %s and the limit", err, path)
	}
}

func TestListenUnixCloseKeepsASocketThatReplacedIt(t *testing.T) {
	path := filepath.Join(shortDir(t), control.SocketName(1))
	l, err := ListenUnix(path, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	_ = l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("Close removed a socket that was not its own: %v", err)
	}
}

func TestNonOwnerCannotConnect(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a client as nobody needs root")
	}
	// nobody must be able to run the test binary and reach the folder, so
	// that only the socket's own mode can stop it.
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dialAsNobody := func(path string) int {
		cmd := exec.Command(helper)
		cmd.Env = []string{dialHelperEnv + "=" + path}
		// nobody, with 12345 as a supplementary group.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{12345}}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ee.ExitCode() == 4 {
				t.Logf("helper: %s", out)
			}
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("helper did not run: %v %s", err, out)
		}
		return 0
	}
	tests := []struct {
		name string
		mode os.FileMode
		gid  int
		want int
	}{
		{"the default 0600 socket refuses nobody", 0, -1, 3},
		{"a 0666 socket lets nobody connect, and the peer check closes it", 0o666, -1, 5},
		{"a 0660 socket of nobody's group lets nobody in", 0o660, 65534, 0},
		{"a 0660 socket of a supplementary group of nobody lets nobody in", 0o660, 12345, 0},
		{"a 0666 socket of a group nobody is not in: the peer check closes it", 0o666, 54321, 5},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, control.SocketName(i+1))
			l, err := ListenUnix(path, tc.mode, tc.gid)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = Serve(ctx, l, Options{Backend: newMemBackend()}); close(done) }()
			defer func() { cancel(); <-done }()
			if got := dialAsNobody(path); got != tc.want {
				t.Fatalf("helper as nobody exited %d, want %d (0 answered, 3 EACCES, 5 closed unanswered)", got, tc.want)
			}
		})
	}
}
