//go:build linux

package e2e

import (
	"context"
	"fmt"
	"github.com/horust-go/horust/internal/config"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Horust as PID 1 in a new pid namespace (root only). The test sees the
// namespace from the host: horust's host pid is h.cmd.Process.Pid, and every
// process of the namespace is one of its descendants in the host's /proc
// (horust is the namespace's init, so orphans are re-parented to it).

func init() {
	// pid1-daemon FILE: start a daemon that leaves the service's session
	// (setsid) and catches TERM without exiting; it appends "got TERM" to
	// FILE.log and writes its host pid to FILE. The service itself runs
	// until signalled.
	registerRole("pid1-daemon", func(args []string) int {
		file := args[0]
		if len(args) > 1 && args[1] == "daemon" {
			if _, err := syscall.Setsid(); err != nil {
				return 3
			}
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			pid1WriteHostPid(file)
			for range ch {
				appendLine(file+".log", "got TERM")
			}
			return 0
		}
		p, err := os.StartProcess(selfPath(), []string{selfPath(), "role:pid1-daemon", file, "daemon"},
			&os.ProcAttr{Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			return 3
		}
		// The daemon leaves the group but stays this process's child: an
		// orphan only once the service has gone.
		_ = p.Release()
		select {}
	})
	// pid1-traps FILE: append "got SIG" to FILE.log for each forwarded
	// signal, write the host pid to FILE once the handlers are in place,
	// run until TERM.
	registerRole("pid1-traps", func(args []string) int {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT)
		pid1WriteHostPid(args[0])
		for sig := range ch {
			appendLine(args[0]+".log", "got "+config.SignalName(sig.(syscall.Signal)))
		}
		return 0
	})
}

// pid1WriteHostPid writes the caller's pid as the host sees it: /proc is
// the host's mount, so /proc/self names the host pid even inside the new
// pid namespace.
func pid1WriteHostPid(file string) {
	pid := os.Getpid()
	if s, err := os.Readlink("/proc/self"); err == nil {
		if n, err := strconv.Atoi(s); err == nil {
			pid = n
		}
	}
	_ = os.WriteFile(file+".tmp", []byte(strconv.Itoa(pid)), 0o644)
	_ = os.Rename(file+".tmp", file)
}

// pid1Proc is one process of the host's /proc.
type pid1Proc struct {
	pid, ppid int
	state     byte // R, S, Z, ...
	comm      string
}

// pid1Procs reads every process of the host.
func pid1Procs() map[int]pid1Proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make(map[int]pid1Proc, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = pid1Proc{pid: pid, ppid: ppid, state: f[0][0], comm: s[open+1 : end]}
	}
	return out
}

// pid1Namespace returns the processes of horust's namespace but horust:
// its descendants in the host's /proc.
func pid1Namespace(hpid int) []pid1Proc {
	all := pid1Procs()
	children := map[int][]int{}
	for _, p := range all {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []pid1Proc
	queue := children[hpid]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, all[pid])
		queue = append(queue, children[pid]...)
	}
	return out
}

func pid1Zombies(ps []pid1Proc) int {
	n := 0
	for _, p := range ps {
		if p.state == 'Z' {
			n++
		}
	}
	return n
}

func pid1Describe(ps []pid1Proc) string {
	var b strings.Builder
	for i, p := range ps {
		if i == 20 {
			fmt.Fprintf(&b, "\n\t... and %d more", len(ps)-i)
			break
		}
		fmt.Fprintf(&b, "\n\t%d ppid %d %c %s %q", p.pid, p.ppid, p.state, p.comm, pid1Cmdline(p.pid))
	}
	return b.String()
}

func pid1Cmdline(pid int) string {
	return strings.ReplaceAll(strings.TrimRight(readFile(fmt.Sprintf("/proc/%d/cmdline", pid)), "\x00"), "\x00", " ")
}

// pid1Start runs horust as PID 1 of a new pid namespace and checks that it
// is.
func pid1Start(t *testing.T, o runOpts) (*horust, int) {
	t.Helper()
	o.pidNS = true
	h := startHorust(t, o)
	hpid := h.cmd.Process.Pid
	var nspid string
	for line := range strings.SplitSeq(readFile(fmt.Sprintf("/proc/%d/status", hpid)), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			nspid = strings.TrimSpace(v)
		}
	}
	if f := strings.Fields(nspid); len(f) < 2 || f[len(f)-1] != "1" {
		if !h.exited() {
			t.Fatalf("horust is not PID 1 of a new pid namespace: NSpid %q", nspid)
		}
	}
	return h, hpid
}

func TestPID1ReapsOrphans(t *testing.T) {
	const orphans = 2000
	marker := filepath.Join(t.TempDir(), "spawned")
	h, hpid := pid1Start(t, runOpts{files: map[string]string{
		"pid1-orphans.toml": svc(role("orphans", strconv.Itoa(orphans), marker)),
	}})
	// Sample the namespace until every orphan has exited: the zombies at
	// any moment, and that the orphans really were horust's to reap.
	maxZombies, adopted := 0, map[int]bool{}
	deadline := time.Now().Add(60 * time.Second)
	var ns []pid1Proc
	for {
		ns = pid1Namespace(hpid)
		maxZombies = max(maxZombies, pid1Zombies(ns))
		leftovers := 0
		for _, p := range ns {
			if p.ppid == hpid && p.comm == "sleep" {
				adopted[p.pid] = true
			}
			if p.comm != "player" || p.state == 'Z' {
				leftovers++
			}
		}
		if readFile(marker) != "" && leftovers == 0 {
			break
		}
		// A loaded two-core machine may delay horust's SIGCHLD handling; a
		// reaper that falls behind lets hundreds pile up.
		if maxZombies > 50 {
			t.Fatalf("%d zombies at once in the namespace, want at most 50:%s", maxZombies, pid1Describe(ns))
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s, %d zombies (at most %d at once) and these processes are left in the namespace:%s",
				pid1Zombies(ns), maxZombies, pid1Describe(ns))
		}
		if h.exited() {
			t.Fatalf("horust exited early (code %d)", h.wait(time.Second))
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("%d orphans: at most %d zombies at once in the namespace; saw %d orphans adopted by horust", orphans, maxZombies, len(adopted))
	if len(ns) != 1 {
		t.Fatalf("want only the service left in the namespace, got:%s", pid1Describe(ns))
	}
	if len(adopted) == 0 {
		t.Fatal("never saw an orphan re-parented to horust: the test did not exercise reaping")
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

func TestPID1KillsGrandchildThatIgnoresTerm(t *testing.T) {
	cases := []struct {
		name    string
		cgroups bool
	}{
		// The service's cgroup is the unit: stopping the service ends the
		// daemon that left its process group.
		{"the service's cgroup", true},
		// Without cgroups nothing but the final sweep (kill(-1, TERM),
		// then KILL) reaches a daemon outside the service's group.
		{"the final sweep without cgroups", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "daemon")
			o := runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{
				"pid1-daemon.toml": svc(role("pid1-daemon", file), "[termination]", `wait = "1s"`),
				// keeps horust running once the daemon's service stopped
				"pid1-idle.toml": svc(role("sleep")),
			}}
			if !tc.cgroups {
				o.args = []string{"--no-cgroups"}
			}
			h, hpid := pid1Start(t, o)
			daemon := readPid(t, file)
			ns := pid1Namespace(hpid)
			found := false
			for _, p := range ns {
				found = found || p.pid == daemon
			}
			if !found {
				t.Fatalf("daemon %d is not in horust's namespace:%s", daemon, pid1Describe(ns))
			}
			if sid, err := unix.Getsid(daemon); err != nil || sid != daemon {
				t.Fatalf("daemon %d did not leave the service's session: sid %d (%v)", daemon, sid, err)
			}
			if strings.Contains(h.stderr.String(), "cgroups unavailable") {
				if tc.cgroups {
					t.Skip("horust has no cgroups here")
				}
			}

			if out, errOut, code := h.ctl("stop", "pid1-daemon.toml"); code != 0 {
				t.Fatalf("horustctl stop: exit %d: %s%s", code, out, errOut)
			}
			h.waitState("pid1-daemon.toml", 10*time.Second, "FINISHED", "FINISHEDFAILED")
			if tc.cgroups {
				eventually(t, 10*time.Second, "the daemon to be killed with its service's cgroup", func() bool {
					return !pidAlive(daemon)
				})
				if h.exited() {
					t.Fatal("horust exited with a service still running")
				}
			} else if !pidAlive(daemon) {
				t.Fatal("the daemon died with its service although it left the process group and there is no cgroup: " +
					"the final sweep is not what this case tests")
			}

			start := time.Now()
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("exit code %d, want 0", code)
			}
			took := time.Since(start)
			t.Logf("horust exited %v after SIGTERM", took.Round(time.Millisecond))
			if pidAlive(daemon) {
				t.Fatalf("daemon %d survived horust", daemon)
			}
			// The kernel kills what is left in a pid namespace when its
			// init exits, but with SIGKILL only: a TERM came from horust's
			// sweep, which waits 2 s before its KILL.
			if !tc.cgroups && !strings.Contains(readFile(file+".log"), "got TERM") {
				t.Fatal("the daemon never got TERM from horust's final sweep")
			}
			if took > 10*time.Second {
				t.Fatalf("horust took %v to exit, want it prompt", took)
			}
		})
	}
}

func TestPID1ForwardsSignals(t *testing.T) {
	file := filepath.Join(t.TempDir(), "traps")
	h, _ := pid1Start(t, runOpts{files: map[string]string{
		"pid1-traps.toml": svc(role("pid1-traps", file)),
	}})
	readPid(t, file)
	h.waitState("pid1-traps.toml", 10*time.Second, "RUNNING")
	// In service mode SIGHUP reloads the configuration instead of being
	// passed on (docs/configuration.md, "Reload").
	h.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "SIGHUP to reload the configuration", func() bool {
		st, err := h.client().Config(context.Background())
		return err == nil && st.Generation == 2 && st.LastReload != nil && st.LastReload.Trigger == "SIGHUP"
	})
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT} {
		name := config.SignalName(sig)
		h.signal(sig)
		eventually(t, 10*time.Second, "the service to get "+name, func() bool {
			return strings.Contains(readFile(file+".log"), "got "+name)
		})
		if h.exited() {
			t.Fatalf("horust exited on %s", name)
		}
	}
	if s := h.state("pid1-traps.toml"); s != "RUNNING" {
		t.Fatalf("service is %s after the forwarded signals, want RUNNING", s)
	}
	if strings.Contains(readFile(file+".log"), "got HUP") {
		t.Fatal("SIGHUP was passed on to the service in service mode")
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

func TestPID1OneShotExitCodes(t *testing.T) {
	cases := []struct {
		name string
		cmd  []string
		code int
	}{
		{"the command's exit code", []string{selfBin, "role:exit", "3"}, 3},
		{"death by USR1 is 128+10", []string{"/bin/sh", "-c", "kill -USR1 $$"}, 128 + int(syscall.SIGUSR1)},
		{"death by KILL is 128+9", []string{"/bin/sh", "-c", "kill -KILL $$"}, 128 + int(syscall.SIGKILL)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startHorust(t, runOpts{pidNS: true, noArgs: true, env: []string{"GORACE=atexit_sleep_ms=0"},
				args: append([]string{"--uds-folder-path", t.TempDir(), "--"}, tc.cmd...)})
			if code := h.wait(20 * time.Second); code != tc.code {
				t.Fatalf("exit code %d, want %d (stderr %s)", code, tc.code, h.stderr)
			}
		})
	}
}

func TestPID1OneShotReapsOrphans(t *testing.T) {
	// Each ( ... &) subshell leaves a short sleep that is re-parented to
	// horust; the command then becomes a long sleep that TERM ends.
	script := "for i in 1 2 3 4 5 6 7 8 9 10; do (/bin/sleep 0.05 &); done; exec /bin/sleep 60"
	h, hpid := pid1Start(t, runOpts{noArgs: true, args: []string{"--uds-folder-path", t.TempDir(), "--", "/bin/sh", "-c", script}})
	var ns []pid1Proc
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns = pid1Namespace(hpid)
		if len(ns) == 1 && ns[0].state != 'Z' && pid1Cmdline(ns[0].pid) == "/bin/sleep 60" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, want only the command in the namespace, got:%s", pid1Describe(ns))
		}
		if h.exited() {
			t.Fatalf("horust exited early (code %d)", h.wait(time.Second))
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit code %d, want 143 (the command died of the forwarded TERM)", code)
	}
}
