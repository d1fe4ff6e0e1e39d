package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOutOfFileDescriptors lowers horust's own RLIMIT_NOFILE under it, as
// an fd leak elsewhere in the container would: its checks can no longer
// open a socket, and that must not count against the service; a stop must
// still complete once signalling works again (docs/design.md, resource
// exhaustion).
func TestOutOfFileDescriptors(t *testing.T) {
	tmp := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	pidFile := filepath.Join(tmp, "svc.pid")
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=info"}, files: map[string]string{
		"fd.toml": svc(role("ignore-term", pidFile),
			"[healthiness]", `tcp-endpoint = "`+l.Addr().String()+`"`, `interval = "100ms"`, `max-failed = 1`,
			"[termination]", `wait = "1s"`),
	}})
	h.waitState("fd.toml", 20*time.Second, "RUNNING")
	pid := readPid(t, pidFile)
	hpid := h.cmd.Process.Pid
	var lim unix.Rlimit
	if err := unix.Prlimit(hpid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	low := unix.Rlimit{Cur: 3, Max: lim.Max} // below every fd horust holds: no new one
	if err := unix.Prlimit(hpid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(hpid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
				t.Errorf("restoring the limit: %v", err)
			}
		}
	}
	t.Cleanup(restore)
	eventually(t, 10*time.Second, "the check horust could not run to be logged", func() bool {
		return strings.Contains(h.stderr.String(), "could not be run by horust")
	})
	// With max-failed = 1 a failed round kills at once: none happened.
	if strings.Contains(h.stderr.String(), "signalling service") || !pidAlive(pid) {
		t.Fatalf("horust's own EMFILE was counted against the service:\n%s", h.stderr)
	}
	if !strings.Contains(h.stderr.String(), "too many open files") {
		t.Fatalf("the cause is not logged:\n%s", h.stderr)
	}
	// Stop while out of fds: signalling through the cgroup's files may
	// fail; the SIGKILL is retried until it works.
	h.signal(unix.SIGTERM)
	eventually(t, 10*time.Second, "the SIGKILL at the termination wait", func() bool {
		return strings.Contains(h.stderr.String(), "signal=KILL")
	})
	restore()
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exited %d, want 0", code)
	}
	if pidAlive(pid) {
		t.Fatalf("the service %d survived the stop", pid)
	}
}

// TestRestartDuringAStop: a restart sent while a stop is in progress is
// carried out once the stop is done, never answered and dropped.
func TestRestartDuringAStop(t *testing.T) {
	tmp := t.TempDir()
	got := filepath.Join(tmp, "got")
	h := startHorust(t, runOpts{files: map[string]string{
		// Takes a second to stop.
		"y.toml": svc(role("trap", "TERM", "0", "1s", got)),
	}})
	h.waitState("y.toml", 20*time.Second, "RUNNING")
	first := readPid(t, got) // its TERM handler is installed
	if _, errOut, code := h.ctl("stop", "y.toml"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
	if st := h.state("y.toml"); st != "INKILLING" {
		t.Fatalf("y is %s right after the stop, want INKILLING", st)
	}
	if _, errOut, code := h.ctl("restart", "y.toml"); code != 0 {
		t.Fatalf("restart: exit %d: %s", code, errOut)
	}
	eventually(t, 20*time.Second, "y to run again", func() bool {
		st := h.status("y.toml")
		return st.State == "RUNNING" && st.PID != first
	})
	if pidAlive(first) {
		t.Fatalf("the first run %d is still alive", first)
	}
}
