//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/status"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec.Cmd
// and the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running horust under test.
type horust struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string // its services directory
	uds     string // its --uds-folder-path
	stdout  *syncBuffer
	stderr  *syncBuffer
	done    chan struct{}
	exitErr error
}

// options of startHorust.
type runOpts struct {
	args   []string          // extra arguments (before --)
	env    []string          // extra environment
	pidNS  bool              // run as PID 1 in a new pid namespace (root only)
	noArgs bool              // do not add --services-path and --uds-folder-path
	files  map[string]string // service files to write first: name → TOML
	stdout *os.File          // horust's stdout; nil: a buffer the test reads as h.stdout
	wrap   []string          // a command that execs horust with its arguments after its own
	bin    string            // the horust binary; "" is horustBin
}

// servicesDir writes service files into a new directory.
func servicesDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startHorust runs horust on the given service files.
func startHorust(t *testing.T, o runOpts) *horust {
	t.Helper()
	h := &horust{t: t, uds: t.TempDir(), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	args := o.args
	if !o.noArgs {
		h.dir = servicesDir(t, o.files)
		args = append([]string{"--services-path", h.dir, "--uds-folder-path", h.uds}, args...)
	}
	bin := horustBin
	if o.bin != "" {
		bin = o.bin
	}
	argv := append(append(append([]string(nil), o.wrap...), bin), args...)
	h.cmd = exec.Command(argv[0], argv[1:]...)
	h.cmd.Env = append(os.Environ(), o.env...)
	h.cmd.Stdout, h.cmd.Stderr = h.stdout, h.stderr
	if o.stdout != nil {
		h.cmd.Stdout = o.stdout
	}
	if o.pidNS {
		requireRoot(t)
		h.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	if err := h.cmd.Start(); err != nil {
		if o.pidNS {
			t.Skipf("cannot create a pid namespace here: %v", err)
		}
		t.Fatal(err)
	}
	go func() {
		h.exitErr = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		// Stop horust as a user would, so that its services and cgroups
		// are cleaned up; SIGKILL only if it does not exit.
		select {
		case <-h.done:
		default:
			_ = h.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-h.done:
			case <-time.After(15 * time.Second):
				_ = h.cmd.Process.Signal(syscall.SIGKILL)
				<-h.done
			}
		}
		if t.Failed() {
			t.Logf("horust stdout:\n%s\nhorust stderr:\n%s", h.stdout, h.stderr)
		}
	})
	return h
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
}

// signal sends sig to horust.
func (h *horust) signal(sig syscall.Signal) {
	h.t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		h.t.Fatalf("signal horust: %v", err)
	}
}

// wait waits for horust to exit and returns its exit code.
func (h *horust) wait(timeout time.Duration) int {
	h.t.Helper()
	select {
	case <-h.done:
	case <-time.After(timeout):
		h.t.Fatalf("horust did not exit within %v", timeout)
	}
	var ee *exec.ExitError
	if errors.As(h.exitErr, &ee) {
		return ee.ExitCode()
	}
	if h.exitErr != nil {
		h.t.Fatalf("horust: %v", h.exitErr)
	}
	return 0
}

func (h *horust) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// client talks to this horust's control socket.
func (h *horust) client() *client.Client {
	h.t.Helper()
	var sock string
	eventually(h.t, 10*time.Second, "the control socket", func() bool {
		m, _ := filepath.Glob(filepath.Join(h.uds, "horust-*.sock"))
		if len(m) == 1 {
			sock = m[0]
			return true
		}
		return false
	})
	return client.New(sock)
}

// state returns a service's state through the control API ("" if unknown).
func (h *horust) state(name string) string {
	h.t.Helper()
	st, err := h.client().Get(context.Background(), name)
	if err != nil {
		return ""
	}
	return st.State.API()
}

// status returns a service's full status.
func (h *horust) status(name string) status.ServiceStatus {
	h.t.Helper()
	st, err := h.client().Get(context.Background(), name)
	if err != nil {
		h.t.Fatalf("status of %s: %v", name, err)
	}
	return st
}

// waitState waits until a service is in one of the states.
func (h *horust) waitState(name string, timeout time.Duration, states ...string) {
	h.t.Helper()
	eventually(h.t, timeout, fmt.Sprintf("%s to be %v", name, states), func() bool {
		s := h.state(name)
		for _, w := range states {
			if s == w {
				return true
			}
		}
		return false
	})
}

// ctl runs horustctl against this horust.
func (h *horust) ctl(args ...string) (stdout, stderr string, code int) {
	h.t.Helper()
	return runCtl(h.t, append([]string{"-u", h.uds}, args...)...)
}

func runCtl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return ctlEnv(t, nil, args...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readFile returns a file's content, "" when it does not exist.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// lines counts the lines of a file.
func lines(path string) int { return strings.Count(readFile(path), "\n") }

// role is the TOML command that makes the test binary play a role.
func role(name string, args ...string) string {
	parts := []string{selfBin, "role:" + name}
	for _, a := range args {
		parts = append(parts, "'"+a+"'")
	}
	return strings.Join(parts, " ")
}

// svc is a service file with the command for a role and more TOML after it.
func svc(command string, more ...string) string {
	return fmt.Sprintf("command = %q\n%s\n", command, strings.Join(more, "\n"))
}

// pidAlive reports whether a process exists and is not a zombie.
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "pid file "+file, func() bool {
		_, err := fmt.Sscan(readFile(file), &pid)
		return err == nil && pid > 0
	})
	return pid
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
