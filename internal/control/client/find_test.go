package client

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/horust-go/horust/internal/control"
)

func TestFindSocket(t *testing.T) {
	// mkSock makes a socket in dir that a process listens on, as a running
	// horust's; mkDead leaves one nobody listens on, as a killed horust does.
	mkSock := func(t *testing.T, dir, name string) {
		t.Helper()
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
	}
	mkDead := func(t *testing.T, dir, name string) {
		t.Helper()
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		_ = l.Close()
	}
	t.Run("socket path wins", func(t *testing.T) {
		got, err := FindSocket(Discovery{SocketPath: "/x/y.sock", Dir: "/nonexistent", PID: 3})
		if err != nil || got != "/x/y.sock" {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("pid names the socket", func(t *testing.T) {
		dir := shortDir(t)
		got, err := FindSocket(Discovery{Dir: dir, PID: 42})
		if err != nil || got != filepath.Join(dir, "horust-42.sock") {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("the one socket is found", func(t *testing.T) {
		dir := shortDir(t)
		mkSock(t, dir, "horust-7.sock")
		mkSock(t, dir, "other.sock")
		if err := os.WriteFile(filepath.Join(dir, "horust-8.sock"), nil, 0o600); err != nil {
			t.Fatal(err) // a regular file with the name is not a socket
		}
		got, err := FindSocket(Discovery{Dir: dir})
		if err != nil || got != filepath.Join(dir, "horust-7.sock") {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		dir := shortDir(t)
		_, err := FindSocket(Discovery{Dir: dir})
		if err == nil || err.Error() != "no horust socket found in "+dir {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("several sockets", func(t *testing.T) {
		dir := shortDir(t)
		mkSock(t, dir, "horust-12.sock")
		mkSock(t, dir, "horust-7.sock")
		_, err := FindSocket(Discovery{Dir: dir})
		want := "several horust sockets in " + dir + " (horust-7.sock, horust-12.sock): pick one with --pid"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
	t.Run("dead sockets are skipped", func(t *testing.T) {
		dir := shortDir(t)
		mkDead(t, dir, "horust-3.sock")
		mkSock(t, dir, "horust-7.sock")
		mkDead(t, dir, "horust-12.sock")
		got, err := FindSocket(Discovery{Dir: dir})
		if err != nil || got != filepath.Join(dir, "horust-7.sock") {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("a dead socket alone is returned for the connection to report", func(t *testing.T) {
		dir := shortDir(t)
		mkDead(t, dir, "horust-3.sock")
		got, err := FindSocket(Discovery{Dir: dir})
		if err != nil || got != filepath.Join(dir, "horust-3.sock") {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("several dead sockets", func(t *testing.T) {
		dir := shortDir(t)
		mkDead(t, dir, "horust-3.sock")
		mkDead(t, dir, "horust-4.sock")
		_, err := FindSocket(Discovery{Dir: dir})
		want := "no horust answers in " + dir + ": horust-3.sock, horust-4.sock are left by horusts that are gone"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		dir := filepath.Join(shortDir(t), "none")
		_, err := FindSocket(Discovery{Dir: dir})
		if err == nil || !strings.HasPrefix(err.Error(), "no horust socket found in "+dir) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("folder that is a file", func(t *testing.T) {
		f := filepath.Join(shortDir(t), "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := FindSocket(Discovery{Dir: f})
		if err == nil || err.Error() != f+" is not a directory" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fallback folders when the default has none", func(t *testing.T) {
		if _, err := os.Stat(control.DefaultSocketDir); err == nil {
			t.Skipf("%s exists on this machine: the fallback is not reached", control.DefaultSocketDir)
		}
		xdg := shortDir(t)
		t.Setenv("XDG_RUNTIME_DIR", xdg)
		tmp := shortDir(t)
		t.Setenv("TMPDIR", tmp)
		_, err := FindSocket(Discovery{})
		want := "no horust socket found in " + control.DefaultSocketDir + " (also looked in " + xdg + "/horust, " + control.TempSocketDir() + ")"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
		if err := os.Mkdir(control.TempSocketDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		mkSock(t, control.TempSocketDir(), "horust-5.sock")
		got, err := FindSocket(Discovery{})
		if err != nil || got != filepath.Join(control.TempSocketDir(), "horust-5.sock") {
			t.Fatalf("temp fallback: got %q %v", got, err)
		}
		if err := os.Mkdir(filepath.Join(xdg, "horust"), 0o700); err != nil {
			t.Fatal(err)
		}
		mkSock(t, filepath.Join(xdg, "horust"), "horust-6.sock")
		got, err = FindSocket(Discovery{})
		if err != nil || got != filepath.Join(xdg, "horust", "horust-6.sock") {
			t.Fatalf("XDG fallback comes first: got %q %v", got, err)
		}
		got, err = FindSocket(Discovery{PID: 5})
		if err != nil || got != filepath.Join(control.TempSocketDir(), "horust-5.sock") {
			t.Fatalf("--pid in a fallback folder: got %q %v", got, err)
		}
	})
}

// shortDir is a temporary folder with a short path: t.TempDir's paths carry
// the test's name and can pass the 107 bytes a socket path may have.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
