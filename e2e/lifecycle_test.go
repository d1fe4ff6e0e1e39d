//go:build linux

package e2e

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
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
			// ESRCH: horust already finished the stop and exited.
			err := unix.Prlimit(hpid, unix.RLIMIT_NOFILE, &lim, nil)
			if err != nil && !errors.Is(err, unix.ESRCH) {
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
		// Takes 3 s to stop: the restart comes while it stops, even on a
		// loaded machine.
		"y.toml": svc(role("trap", "TERM", "0", "3s", got), "[termination]", `wait = "20s"`),
		// Keeps horust running while y is stopped.
		"keep.toml": svc(role("sleep")),
	}})
	h.waitState("y.toml", 20*time.Second, "RUNNING")
	first := readPid(t, got) // its TERM handler is installed
	if _, errOut, code := h.ctl("stop", "y.toml"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
	if st := h.state("y.toml"); st != "INKILLING" {
		t.Fatalf("y is %s right after the stop, want INKILLING", st)
	}
	out, errOut, code := h.ctl("--json", "restart", "y.toml")
	if code != 0 {
		t.Fatalf("restart: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"INKILLING"`) {
		t.Fatalf("the restart was not sent during the stop: %s", out)
	}
	eventually(t, 30*time.Second, "y to run again", func() bool {
		st := h.status("y.toml")
		return st.State == status.Running && st.PID != first
	})
	if pidAlive(first) {
		t.Fatalf("the first run %d is still alive", first)
	}
}

// quickDeath is a service that dies at once, appending the time of each of
// its runs to stamps.
func quickDeath(stamps string, more ...string) string {
	return svc("/bin/sh -c 'date +%s.%N >> "+stamps+"; exit 1'", append([]string{"[restart]", `strategy = "always"`}, more...)...)
}

// TestCrashLoopBacksOff: with the defaults, a service that dies at once
// runs about 7 times in 5 s (at 0, 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s, then
// at 6.3 s); status and the log say so once.
func TestCrashLoopBacksOff(t *testing.T) {
	stamps := filepath.Join(t.TempDir(), "stamps")
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{"crash.toml": quickDeath(stamps)}})
	eventually(t, 30*time.Second, "7 runs", func() bool { return lines(stamps) >= 7 })
	var st status.ServiceStatus
	eventually(t, 10*time.Second, "the wait after the 7th run", func() bool {
		st = h.status("crash.toml")
		return st.QuickExits == 7 && st.State == status.Starting
	})
	times := readStamps(t, stamps)
	if len(times) != 7 {
		t.Fatalf("%d runs before the 7th wait, want 7", len(times))
	}
	if d := times[6].Sub(times[0]); d < 3*time.Second {
		t.Fatalf("7 runs within %v, want the 7th about 3.1 s after the first", d)
	}
	if d := st.NextStart.Sub(times[0]); d < 6*time.Second {
		t.Fatalf("8th start %v after the first, want about 6.3 s", d)
	}
	if !strings.Contains(st.Reason, "crash loop: 7 quick exits in a row") {
		t.Fatalf("reason %q", st.Reason)
	}
	out, _, code := h.ctl("status")
	if code != 0 || !strings.Contains(out, "crash loop: 7 quick exits in a row, next start in") {
		t.Fatalf("horustctl status (exit %d):\n%s", code, out)
	}
	if n := strings.Count(h.stderr.String(), "crash loop"); n != 1 {
		t.Fatalf("%d crash-loop log lines, want 1:\n%s", n, h.stderr)
	}
}

// TestCrashLoopGuardOff: min-uptime = "0s" restarts at once, as fast as the
// machine forks (the benchmarks' raw restart rate).
func TestCrashLoopGuardOff(t *testing.T) {
	stamps := filepath.Join(t.TempDir(), "stamps")
	h := startHorust(t, runOpts{files: map[string]string{"crash.toml": quickDeath(stamps, `min-uptime = "0s"`)}})
	// With the guard on, 200 runs would take half an hour.
	eventually(t, 30*time.Second, "200 runs", func() bool { return lines(stamps) >= 200 })
	if st := h.status("crash.toml"); st.QuickExits != 0 {
		t.Fatalf("quick exits counted with the guard off: %+v", st)
	}
}

func readStamps(t *testing.T, file string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, f := range strings.Fields(readFile(file)) {
		sec, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("stamp %q: %v", f, err)
		}
		out = append(out, time.Unix(0, int64(sec*1e9)))
	}
	return out
}

// TestJobs: oneshot = true, "run the migration, then start the app".
func TestJobs(t *testing.T) {
	t.Run("a job gates its dependent", func(t *testing.T) {
		tmp := t.TempDir()
		order := filepath.Join(tmp, "order")
		h := startHorust(t, runOpts{files: map[string]string{
			// The job takes a while and appends when it is done.
			"migrate.toml": svc("/bin/sh -c 'sleep 0.5; echo migrated >> "+order+"'", "oneshot = true"),
			"app.toml":     svc(role("append-sleep", order, "app"), `start-after = ["migrate.toml"]`),
		}})
		h.waitState("app.toml", 20*time.Second, "RUNNING")
		eventually(t, 10*time.Second, "the app's line", func() bool { return lines(order) == 2 })
		if got := readFile(order); got != "migrated\napp\n" {
			t.Fatalf("order %q: the app started before the job finished", got)
		}
		if st := h.state("migrate.toml"); st != "FINISHED" {
			t.Fatalf("the job is %s, want FINISHED", st)
		}
	})
	t.Run("a failing job with attempts 2 runs 3 times and fails its dependent", func(t *testing.T) {
		tmp := t.TempDir()
		runs := filepath.Join(tmp, "runs")
		h := startHorust(t, runOpts{env: []string{"HORUST_LOG=error"}, files: map[string]string{
			"migrate.toml": svc(role("append", runs, "run", "3"), "oneshot = true", "[restart]", "attempts = 2"),
			"app.toml":     svc(role("sleep"), `start-after = ["migrate.toml"]`),
		}})
		if code := h.wait(30 * time.Second); code != 0 {
			t.Fatalf("horust exit code %d, want 0", code)
		}
		if n := lines(runs); n != 3 {
			t.Fatalf("the job ran %d times, want 3", n)
		}
		log := h.stderr.String()
		for _, want := range []string{"service=migrate.toml reason=\"exited with code 3; gave up after 3 failed starts\" exit_code=3", "service=app.toml reason=\"dependency 'migrate.toml' failed\"\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log does not say %s:\n%s", want, log)
			}
		}
	})
	t.Run("oneshot with strategy always is refused", func(t *testing.T) {
		h := startHorust(t, runOpts{files: map[string]string{
			"job.toml": svc("/bin/true", "oneshot = true", "[restart]", `strategy = "always"`),
		}})
		if code := h.wait(20 * time.Second); code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
		if errOut := h.stderr.String(); !strings.Contains(errOut, "job.toml:4: restart.strategy") || !strings.Contains(errOut, "oneshot") {
			t.Fatalf("the error does not name file, line and key:\n%s", errOut)
		}
	})
	t.Run("--validate marks jobs", func(t *testing.T) {
		h := startHorust(t, runOpts{args: []string{"--validate"}, files: map[string]string{
			"migrate.toml": svc("/bin/true", "oneshot = true"),
			"app.toml":     svc("/bin/true", `start-after = ["migrate.toml"]`),
		}})
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("exit code %d: %s", code, h.stderr)
		}
		out := h.stdout.String()
		if !strings.Contains(out, "1. migrate.toml  (job: up once it has exited successfully)") || !strings.Contains(out, "2. app.toml  (after migrate.toml)") {
			t.Fatalf("--validate:\n%s", out)
		}
	})
}

// TestHonestFailureLines: a start that failed is never logged with an exit
// code, and every failed service says why.
func TestHonestFailureLines(t *testing.T) {
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=error"}, files: map[string]string{
		"missing.toml": svc("/nonexistent/horust-e2e-prog"),
		"killed.toml":  svc("/bin/sh -c 'kill -KILL $$$$'"),
	}})
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	log := h.stderr.String()
	for _, want := range []string{
		"service=missing.toml reason=\"could not start /nonexistent/horust-e2e-prog: no such file or directory\"\n",
		"service=killed.toml reason=\"killed by SIGKILL\" exit_code=137\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
