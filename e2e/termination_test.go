//go:build linux

package e2e

import (
	"fmt"
	"github.com/horust-go/horust/internal/config"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// termForwarded are the signals horust passes on to running services in
// service mode (HUP reloads the configuration there instead:
// docs/configuration.md, "Reload"; TestPID1ForwardsSignals checks it).
var termForwarded = []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT}

func init() {
	// term-order FILE NAME READY: on TERM append "got NAME" to FILE, wait a
	// little, append "exit NAME" and exit 0. READY gets the pid once the
	// handler is installed.
	registerRole("term-order", func(args []string) int {
		if len(args) < 3 {
			return 100
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		ready(args[2])
		<-ch
		appendLine(args[0], "got "+args[1])
		// Long enough that a service signalled at the same time would
		// write between these two lines.
		time.Sleep(100 * time.Millisecond)
		appendLine(args[0], "exit "+args[1])
		return 0
	})
	// term-record FILE [CHILD]: append the name of every forwarded signal it
	// gets to FILE, exit 0 on TERM; FILE.pid gets the pid once the handler
	// is installed. With CHILD, it first starts a child in its own process
	// group that does the same with the file CHILD.
	registerRole("term-record", func(args []string) int {
		if len(args) < 1 {
			return 100
		}
		if len(args) > 1 {
			p, err := os.StartProcess(selfPath(), []string{selfPath(), "role:term-record", args[1]}, &os.ProcAttr{Files: []*os.File{nil, os.Stdout, os.Stderr}})
			if err != nil {
				return 3
			}
			p.Release()
		}
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT)
		ready(args[0] + ".pid")
		for s := range ch {
			if s == syscall.SIGTERM {
				return 0
			}
			appendLine(args[0], config.SignalName(s.(syscall.Signal)))
		}
		return 0
	})
	// term-check-dead PIDFILE OUT READY: on TERM, wait up to 3 s for the
	// process in PIDFILE to end (on a pidfd, no polling) and write "dead"
	// or "alive" to OUT, then exit 0.
	registerRole("term-check-dead", func(args []string) int {
		if len(args) < 3 {
			return 100
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		ready(args[2])
		<-ch
		var pid int
		if _, err := fmt.Sscan(readFile(args[0]), &pid); err != nil || pid <= 0 {
			os.WriteFile(args[1], []byte("no pid"), 0o644)
			return 0
		}
		verdict := "alive"
		fd, err := unix.PidfdOpen(pid, 0)
		if err == unix.ESRCH {
			verdict = "dead"
		} else if err == nil {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				n, err := unix.Poll(fds, 3000)
				if err == unix.EINTR {
					continue
				}
				if err == nil && n > 0 {
					verdict = "dead"
				}
				break
			}
			unix.Close(fd)
		} else {
			verdict = "pidfd: " + err.Error()
		}
		os.WriteFile(args[1], []byte(verdict), 0o644)
		return 0
	})
}

// termSvc is a service whose roles that exit 0 do not sleep a second in the
// race detector.
func termSvc(command string, more ...string) string {
	return svc(command, append(more, "[environment]", restartNoRaceExitSleep)...)
}

func TestTerminationSignal(t *testing.T) {
	for _, sig := range []string{"TERM", "INT", "HUP", "USR1", "USR2", "QUIT"} {
		t.Run("trapped "+sig, func(t *testing.T) {
			got := filepath.Join(t.TempDir(), "got")
			// wait = 1h: only the configured signal can end it in time.
			h := startHorust(t, runOpts{args: []string{"--unsuccessful-exit-finished-failed"}, files: map[string]string{
				"term-signal.toml": termSvc(role("trap", sig, "0", "0s", got), "[termination]", fmt.Sprintf("signal = %q", sig), `wait = "1h"`),
			}})
			h.waitState("term-signal.toml", 20*time.Second, "RUNNING")
			readPid(t, got)
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0 (a clean stop is no failure)", code)
			}
			if !strings.Contains(readFile(got), "got "+sig) {
				t.Fatalf("the service did not get %s: %q", sig, readFile(got))
			}
		})
	}
	// A service that dies of the configured signal (no handler) stopped
	// cleanly too: 128+N is the signal horust sent. The service is the
	// system's sleep, not a role: a Go program catches USR2 from its first
	// instructions on and ignores it, so only a signal that raced the
	// runtime's start would have killed the test binary.
	t.Run("death by the configured signal", func(t *testing.T) {
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			t.Skip("no sleep program on PATH")
		}
		h := startHorust(t, runOpts{args: []string{"--unsuccessful-exit-finished-failed"}, env: []string{"HORUST_LOG=info"}, files: map[string]string{
			"term-die.toml": svc(sleep+" 3600", "[termination]", `signal = "USR2"`, `wait = "1h"`),
		}})
		h.waitState("term-die.toml", 20*time.Second, "RUNNING")
		h.signal(syscall.SIGTERM)
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("horust exit code %d, want 0\n%s", code, h.stderr)
		}
		if want := fmt.Sprintf("exit_code=%d signal=USR2", 128+int(syscall.SIGUSR2)); !strings.Contains(h.stderr.String(), want) {
			t.Fatalf("the log does not say %q:\n%s", want, h.stderr)
		}
	})
}

func TestTerminationWaitThenKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"exit 0", nil, 0},
		{"exit 101 with --unsuccessful-exit-finished-failed", []string{"--unsuccessful-exit-finished-failed"}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			h := startHorust(t, runOpts{args: tc.args, env: []string{"HORUST_LOG=info"}, files: map[string]string{
				"term-stubborn.toml": svc(role("ignore-term", pidFile), "[termination]", `wait = "500ms"`),
			}})
			h.waitState("term-stubborn.toml", 20*time.Second, "RUNNING")
			pid := readPid(t, pidFile)
			began := time.Now()
			h.signal(syscall.SIGTERM)
			eventually(t, 10*time.Second, "the service to die", func() bool { return !pidAlive(pid) })
			took := time.Since(began)
			if took < 500*time.Millisecond || took >= 3*time.Second {
				t.Fatalf("the service died %v after SIGTERM, want SIGKILL after wait = 500ms", took)
			}
			if code := h.wait(20 * time.Second); code != tc.want {
				t.Fatalf("horust exit code %d, want %d (the service needed SIGKILL)", code, tc.want)
			}
			// From horust's own log: TERM, then KILL half a second later.
			term := restartLogTimes(t, h.stderr.String(), "signalling service", "term-stubborn.toml")
			if len(term) != 2 || !strings.Contains(h.stderr.String(), "signal=KILL") {
				t.Fatalf("want one TERM and one KILL in the log:\n%s", h.stderr)
			}
			if d := term[1].Sub(term[0]); d < 499*time.Millisecond || d >= 3*time.Second {
				t.Fatalf("SIGKILL %v after the signal, want 500ms", d)
			}
			t.Logf("died %v after SIGTERM; the log says %v", took, term[1].Sub(term[0]))
		})
	}
}

func TestTerminationShutdownAfterOrder(t *testing.T) {
	tmp := t.TempDir()
	order := filepath.Join(tmp, "order")
	// Stop order c, a, b: the file names sort otherwise, and none starts
	// after another.
	s := func(name string, after ...string) string {
		var more []string
		if len(after) > 0 {
			more = append(more, fmt.Sprintf("shutdown-after = [%q]", after[0]))
		}
		return termSvc(role("term-order", order, name, filepath.Join(tmp, name)), more...)
	}
	h := startHorust(t, runOpts{files: map[string]string{
		"stop-c.toml": s("c"),
		"stop-a.toml": s("a", "stop-c.toml"),
		"stop-b.toml": s("b", "stop-a.toml"),
	}})
	for _, n := range []string{"a", "b", "c"} {
		h.waitState("stop-"+n+".toml", 20*time.Second, "RUNNING")
		readPid(t, filepath.Join(tmp, n))
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d, want 0", code)
	}
	if got, want := readFile(order), "got c\nexit c\ngot a\nexit a\ngot b\nexit b\n"; got != want {
		t.Fatalf("signal order:\n%s\nwant:\n%s", got, want)
	}
}

func TestTerminationSecondSignalIsForceful(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, then syscall.Signal
		args        []string
		want        int
	}{
		{"TERM then TERM", syscall.SIGTERM, syscall.SIGTERM, nil, 0},
		{"INT then INT", syscall.SIGINT, syscall.SIGINT, []string{"--unsuccessful-exit-finished-failed"}, 101},
		{"TERM then INT", syscall.SIGTERM, syscall.SIGINT, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			h := startHorust(t, runOpts{args: tc.args, files: map[string]string{
				"term-forever.toml": svc(role("ignore-term", pidFile), "[termination]", `wait = "1h"`),
			}})
			h.waitState("term-forever.toml", 20*time.Second, "RUNNING")
			pid := readPid(t, pidFile)
			h.signal(tc.first)
			// The control socket answers during the shutdown.
			h.waitState("term-forever.toml", 20*time.Second, "INKILLING")
			if !pidAlive(pid) {
				t.Fatal("the service died of the first signal although it ignores it")
			}
			began := time.Now()
			h.signal(tc.then)
			if code := h.wait(10 * time.Second); code != tc.want {
				t.Fatalf("horust exit code %d, want %d", code, tc.want)
			}
			if pidAlive(pid) {
				t.Fatal("the service survived horust")
			}
			t.Logf("horust exited %v after the second signal", time.Since(began))
		})
	}
}

func TestTerminationGrandchildrenDie(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"with cgroups where available", nil},
		{"process group only", []string{"--no-cgroups"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			gcPid, verdict := filepath.Join(tmp, "grandchild"), filepath.Join(tmp, "verdict")
			h := startHorust(t, runOpts{args: tc.args, files: map[string]string{
				// Its main process dies of TERM; its child ignores TERM.
				"gc-parent.toml": svc(role("grandchild", gcPid)),
				// Signalled once gc-parent is done, while horust still runs
				// (before any final sweep): is the grandchild gone by then?
				"gc-checker.toml": termSvc(role("term-check-dead", gcPid, verdict, filepath.Join(tmp, "checker")), `shutdown-after = ["gc-parent.toml"]`,
					"[termination]", `wait = "30s"`),
			}})
			h.waitState("gc-parent.toml", 20*time.Second, "RUNNING")
			h.waitState("gc-checker.toml", 20*time.Second, "RUNNING")
			gc := readPid(t, gcPid)
			readPid(t, filepath.Join(tmp, "checker"))
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0", code)
			}
			if v := readFile(verdict); v != "dead" {
				t.Fatalf("the grandchild that ignores TERM outlived its service: %q", v)
			}
			if pidAlive(gc) {
				t.Fatal("the grandchild outlived horust")
			}
		})
	}
}

func TestTerminationForwardsSignals(t *testing.T) {
	// Each process gets each forwarded signal exactly once, whether the
	// cgroup or the process group is the unit (docs/design.md).
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"with cgroups where available", nil},
		{"process group only", []string{"--no-cgroups"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testForwardsSignals(t, tc.args) })
	}
}

func testForwardsSignals(t *testing.T, args []string) {
	tmp := t.TempDir()
	file := func(n string) string { return filepath.Join(tmp, n) }
	h := startHorust(t, runOpts{args: args, files: map[string]string{
		"fwd-one.toml": termSvc(role("term-record", file("one"), file("one-child"))),
		"fwd-two.toml": termSvc(role("term-record", file("two"))),
	}})
	for _, n := range []string{"one", "one-child", "two"} {
		readPid(t, file(n)+".pid")
	}
	h.waitState("fwd-one.toml", 20*time.Second, "RUNNING")
	h.waitState("fwd-two.toml", 20*time.Second, "RUNNING")
	var want []string
	for _, sig := range termForwarded {
		h.signal(sig)
		want = append(want, config.SignalName(sig))
		// One at a time, so that the files also show the order.
		for _, n := range []string{"one", "one-child", "two"} {
			eventually(t, 10*time.Second, fmt.Sprintf("%s to get %s", n, config.SignalName(sig)), func() bool {
				return readFile(file(n)) == strings.Join(want, "\n")+"\n"
			})
		}
	}
	for _, n := range []string{"one", "two"} {
		if s := h.state("fwd-" + n + ".toml"); s != "RUNNING" {
			t.Fatalf("fwd-%s.toml is %s after the forwarded signals", n, s)
		}
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d, want 0", code)
	}
}
