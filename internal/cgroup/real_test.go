//go:build linux

package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/config"
)

// These tests create real cgroups. Each runs in the setups this machine
// can show: "hybrid" and "v2" and "v1" are the real mounts, with the mount
// table given to Open filtered to look like that setup ("v2" keeps only
// the cgroup2 tree, "v1" drops it, "v1-nofreezer" drops the freezer too).
// A setup the machine cannot show is skipped.

var (
	allModes   = []string{"v2", "hybrid", "v1", "v1-nofreezer"}
	limitModes = []string{"v2", "hybrid", "v1"}
)

func realManager(t *testing.T, mode string) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	mi, err := os.ReadFile(DefaultMountInfo)
	if err != nil {
		t.Skipf("no mount table: %v", err)
	}
	var keep []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(mi)), "\n") {
		_, after, _ := strings.Cut(line, " - ")
		f := strings.Fields(after)
		if len(f) < 3 {
			continue
		}
		switch {
		case f[0] == "cgroup2" && strings.HasPrefix(mode, "v1"):
			continue
		case f[0] == "cgroup" && mode == "v2":
			continue
		case f[0] == "cgroup" && mode == "v1-nofreezer" && slices.Contains(strings.Split(f[2], ","), "freezer"):
			continue
		}
		keep = append(keep, line)
	}
	file := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(file, []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Options{MountInfo: file, Parent: fmt.Sprintf("horust-test-%d", os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(mode, "-nofreezer"); m.Mode() != want {
		t.Skipf("this machine cannot show a %s setup (it looks %s)", mode, m.Mode())
	}
	if mode == "v1" && m.lay.v1["freezer"] == nil {
		t.Skip("no v1 freezer here")
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		var hs []*hierarchy
		if m.lay.v2 != nil {
			hs = append(hs, m.lay.v2)
		}
		for _, h := range m.lay.v1 {
			hs = append(hs, h)
		}
		for _, h := range hs {
			p := filepath.Join(h.own, m.opts.Parent)
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after Close (%v)", p, err)
			}
		}
	})
	return m
}

// service makes the group, skipping when this machine cannot apply r.
func service(t *testing.T, m *Manager, name string, r config.Resource) *Group {
	t.Helper()
	g, err := m.Service(name, r)
	var le *LimitError
	if errors.As(err, &le) && (strings.Contains(err.Error(), "is not available in") || strings.Contains(err.Error(), "holds other processes")) {
		t.Skipf("limits cannot be applied in this %s setup: %v", m.Mode(), err)
	}
	if err != nil {
		t.Fatalf("Service: %v", err)
	}
	if !g.Tracks() {
		t.Skipf("the cgroup filesystem is not writable here (%s)", m.Mode())
	}
	return g
}

type child struct {
	pid int
	out *os.File // its stdout
	err *os.File // its stderr
}

// start forks path (the test binary playing helper when path is "")
// through the group's Prepare, as the supervisor does.
func start(t *testing.T, g *Group, helper, path string, argv []string, cred *syscall.Credential) child {
	t.Helper()
	env := os.Environ()
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		path, argv = exe, []string{exe}
		env = helperEnviron(helper)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	attr := &syscall.SysProcAttr{Setsid: true, Credential: cred}
	p, a := g.Prepare(attr, path, argv)
	pid, err := syscall.ForkExec(p, a, &syscall.ProcAttr{Env: env, Files: []uintptr{0, outW.Fd(), errW.Fd()}, Sys: attr})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("fork %s: %v", path, err)
	}
	t.Cleanup(func() {
		outR.Close()
		errR.Close()
	})
	return child{pid: pid, out: outR, err: errR}
}

// wait reaps the child, killing it after a generous deadline.
func wait(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	type result struct {
		ws  syscall.WaitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			done <- result{ws, err}
			return
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("wait %d: %v", pid, r.err)
		}
		return r.ws
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
		t.Fatalf("child %d did not exit in 30 s", pid)
	}
	return 0
}

// cgroupPaths maps the hierarchies of /proc/<pid>/cgroup text to paths:
// "0" for v2, else each controller.
func cgroupPaths(text string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" {
			out["0"] = parts[2]
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c != "" {
				out[c] = parts[2]
			}
		}
	}
	return out
}

// wantPaths is where a member of g appears in /proc/<pid>/cgroup.
func wantPaths(g *Group) map[string]string {
	want := map[string]string{}
	for _, d := range g.dirs {
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(d.path, d.h.mount), "/")
		if d.h.v2 {
			want["0"] = rel
			continue
		}
		for _, c := range d.h.controllers {
			want[c] = rel
		}
	}
	return want
}

// TestChildIsInItsCgroupsWhenItStarts, also with clone3 taken as unable
// to start a child in a cgroup (as Open finds it under qemu-user or
// Docker's default seccomp profile): the re-exec step joins the v2 cgroup.
func TestChildIsInItsCgroupsWhenItStarts(t *testing.T) {
	for _, mode := range allModes {
		for _, c := range []struct{ limited, clone3 bool }{{false, true}, {true, true}, {false, false}, {true, false}} {
			limited := c.limited
			t.Run(fmt.Sprintf("%s limits=%v clone3=%v", mode, limited, c.clone3), func(t *testing.T) {
				m := realManager(t, mode)
				if !c.clone3 {
					if m.lay.v2 == nil {
						t.Skip("no v2 tree: clone3 places no child")
					}
					m.intoCgroup = false
				} else if m.lay.v2 != nil && !m.intoCgroup {
					t.Skip("clone3 cannot start a child in a cgroup here")
				}
				var r config.Resource
				if limited {
					r = config.Resource{Memory: 256 << 20, PidsMax: 1000, CPU: 1}
				}
				g := service(t, m, "where am I.toml", r)
				c := start(t, g, "cgroup", "", nil, nil)
				out, _ := io.ReadAll(c.out)
				if ws := wait(t, c.pid); ws.ExitStatus() != 0 {
					msg, _ := io.ReadAll(c.err)
					t.Fatalf("helper exited %v: %s", ws, msg)
				}
				got := cgroupPaths(string(out))
				for k, want := range wantPaths(g) {
					if got[k] != want {
						t.Errorf("hierarchy %s: the program started in %q, want %q\n%s", k, got[k], want, out)
					}
				}
				if !strings.Contains(string(out), "/horust-test-") || !strings.Contains(string(out), "/where%20am%20I.toml") {
					t.Errorf("the program did not start in its cgroup:\n%s", out)
				}
			})
		}
	}
}

func TestMemoryLimitOOMKillIsCounted(t *testing.T) {
	for _, mode := range limitModes {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			g := service(t, m, "hog", config.Resource{Memory: 50 << 20})
			before := g.OOMKills()
			c := start(t, g, "alloc", "", nil, nil)
			ws := wait(t, c.pid)
			out, _ := io.ReadAll(c.out)
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the 200 MiB allocation under a 50 MiB limit ended with %v (output %q), want SIGKILL", ws, out)
			}
			after := g.OOMKills()
			if after <= before {
				t.Fatalf("OOMKills() = %d after an OOM kill, was %d", after, before)
			}
			if got := OOMReason(50 << 20); got != "killed: out of memory (limit 50 MiB)" {
				t.Errorf("OOMReason = %q", got)
			}
		})
	}
}

func TestPidsMaxStopsAForkLoop(t *testing.T) {
	for _, mode := range limitModes {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			g := service(t, m, "forker", config.Resource{PidsMax: 20})
			c := start(t, g, "", "/bin/sh", []string{"sh", "-c",
				`i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); echo $i; done; echo done`}, nil)
			sc := bufio.NewScanner(c.out)
			last := ""
			for sc.Scan() {
				// The sleeps keep the pipe open: stop at the shell's end.
				last = sc.Text()
				if last == "done" || last == "19" {
					break
				}
			}
			ws := wait(t, c.pid)
			if last != "19" || ws.ExitStatus() == 0 {
				t.Errorf("the fork loop's shell started %q sleeps and exited %v; want 19 (20 with the shell) and a failure", last, ws)
			}
			pids, err := g.procs()
			if err != nil {
				t.Fatal(err)
			}
			if len(pids) > 20 || len(pids) < 19 {
				t.Errorf("%d processes in the group, want 19 or 20", len(pids))
			}
			if err := g.Kill(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCPULimitHoldsABusyLoopNearIt(t *testing.T) {
	for _, mode := range limitModes {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			g := service(t, m, "spinner", config.Resource{CPU: 0.2})
			// This machine is shared: give the group the largest weight so
			// that other work cannot starve it, and only the quota holds
			// the loop back.
			file, weight := "cpu.shares", "262144"
			d := g.dir(m.lay.v1["cpu"])
			if d == "" {
				file, weight, d = "cpu.weight", "10000", g.dir(m.lay.v2)
			}
			for _, dir := range []string{filepath.Dir(d), d} {
				if err := writeFile(filepath.Join(dir, file), weight); err != nil {
					t.Fatal(err)
				}
			}
			used0, err := g.CPUUsage()
			if err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			c := start(t, g, "spin", "", nil, nil)
			if ws := wait(t, c.pid); ws.ExitStatus() != 0 {
				t.Fatalf("spin exited %v", ws)
			}
			elapsed := time.Since(begin)
			used, err := g.CPUUsage()
			if err != nil {
				t.Fatal(err)
			}
			share := float64(used-used0) / float64(elapsed)
			throttled := throttledPeriods(t, g)
			t.Logf("%v of CPU in %v: %.0f%%, throttled in %d periods", used-used0, elapsed, share*100, throttled)
			// The throttle count proves the limit, not the load, held the
			// loop back.
			if share < 0.10 || share > 0.35 {
				t.Errorf("a busy loop under cpu = 0.2 used %.0f%% of a CPU, want 10-35%%", share*100)
			}
			if throttled == 0 {
				t.Error("the CPU limit never throttled the busy loop")
			}
		})
	}
}

// throttledPeriods reads nr_throttled from the cpu.stat of the group's cpu
// controller (v1 cpu hierarchy or v2 tree).
func throttledPeriods(t *testing.T, g *Group) uint64 {
	t.Helper()
	d := g.dir(g.m.lay.v1["cpu"])
	if d == "" {
		d = g.dir(g.m.lay.v2)
	}
	n, ok, err := readKey(filepath.Join(d, "cpu.stat"), "nr_throttled")
	if err != nil || !ok {
		t.Fatalf("no nr_throttled in %s/cpu.stat: %v", d, err)
	}
	return n
}

func TestDaemonThatLeftItsSessionDiesWithItsGroup(t *testing.T) {
	for _, mode := range allModes {
		for _, how := range []string{"Kill", "Signal TERM", "Remove", "Close"} {
			t.Run(mode+" "+how, func(t *testing.T) {
				m := realManager(t, mode)
				g := service(t, m, "forking", config.Resource{})
				c := start(t, g, "daemon", "", nil, nil)
				line, err := bufio.NewReader(c.out).ReadString('\n')
				if err != nil {
					t.Fatalf("no daemon pid: %v", err)
				}
				if ws := wait(t, c.pid); ws.ExitStatus() != 0 {
					t.Fatalf("the service's main process exited %v", ws)
				}
				daemon, err := strconv.Atoi(strings.TrimSpace(line))
				if err != nil {
					t.Fatal(err)
				}
				pidfd, err := unix.PidfdOpen(daemon, 0)
				if err != nil {
					t.Fatalf("the daemon %d is not running: %v", daemon, err)
				}
				defer unix.Close(pidfd)
				sid, _ := unix.Getsid(daemon)
				if sid == c.pid || sid == unix.Getpid() {
					t.Fatalf("the daemon did not leave the session (sid %d)", sid)
				}
				if pids, _ := g.procs(); !slices.Contains(pids, daemon) {
					t.Fatalf("the daemon %d is not in the group: %v", daemon, pids)
				}
				switch how {
				case "Kill":
					err = g.Kill()
				case "Signal TERM":
					err = g.Signal(syscall.SIGTERM)
				case "Remove":
					err = g.Remove()
				case "Close":
					err = m.Close()
				}
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
				if n, err := unix.Poll(fds, 10_000); n != 1 || err != nil {
					t.Fatalf("the daemon survived %s (poll %d, %v)", how, n, err)
				}
				if how == "Remove" || how == "Close" {
					for _, p := range g.Paths() {
						t.Errorf("%s still there after Remove", p)
					}
					if g.Tracks() {
						t.Error("a removed group still tracks")
					}
				}
			})
		}
	}
}

func TestRemoveLeavesNoDirectoryAndRestartsReuse(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			r := config.Resource{}
			if mode != "v2" && mode != "v1-nofreezer" {
				r = config.Resource{Memory: 64 << 20, PidsMax: 50}
			}
			g := service(t, m, "db.toml", r)
			paths := g.Paths()
			again, err := m.Service("db.toml", r)
			if err != nil || again != g {
				t.Fatalf("a restart did not reuse the group: %v", err)
			}
			c := start(t, g, "cgroup", "", nil, nil)
			_, _ = io.ReadAll(c.out)
			wait(t, c.pid)
			// A service may make cgroups inside its own.
			for _, p := range paths {
				if err := os.MkdirAll(filepath.Join(p, "inner", "deeper"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Remove(); err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still there after Remove (%v)", p, err)
				}
			}
			if err := g.Remove(); err != nil {
				t.Errorf("a second Remove: %v", err)
			}
		})
	}
}

func TestJoinThenDropPrivileges(t *testing.T) {
	for _, mode := range []string{"hybrid", "v1"} {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			g := service(t, m, "nobody", config.Resource{PidsMax: 100})
			if _, _, join := g.StartAttr(); len(join) == 0 {
				t.Fatal("no v1 cgroup to join")
			}
			cred := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65533}}
			// Not the test binary: its directory is closed to nobody.
			c := start(t, g, "", "/bin/sh", []string{"sh", "-c", "echo $(id -u) $(id -g) $(id -G)"}, cred)
			out, _ := io.ReadAll(c.out)
			if ws := wait(t, c.pid); ws.ExitStatus() != 0 {
				msg, _ := io.ReadAll(c.err)
				t.Fatalf("exited %v: %s", ws, msg)
			}
			if got := strings.TrimSpace(string(out)); got != "65534 65534 65534 65533" {
				t.Errorf("uid gid groups = %q, want 65534 65534 65534 65533", got)
			}
		})
	}
}

func TestExecStepFailureIsExit127WithOneLine(t *testing.T) {
	m := realManager(t, "v1")
	g := service(t, m, "missing", config.Resource{})
	c := start(t, g, "", "/nonexistent/program", []string{"program"}, nil)
	msg, _ := io.ReadAll(c.err)
	ws := wait(t, c.pid)
	if ws.ExitStatus() != 127 {
		t.Errorf("exit %v, want 127", ws)
	}
	if lines := strings.Split(strings.TrimSpace(string(msg)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "/nonexistent/program") {
		t.Errorf("stderr = %q, want one line naming the program", msg)
	}
}

func TestTwoHorustsInTheSameCgroupDoNotTouchEachOther(t *testing.T) {
	for _, mode := range []string{"hybrid", "v1"} {
		t.Run(mode, func(t *testing.T) {
			first := realManager(t, mode)
			g := service(t, first, "db.toml", config.Resource{})
			c := start(t, g, "daemon", "", nil, nil)
			line, err := bufio.NewReader(c.out).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			wait(t, c.pid)
			daemon, _ := strconv.Atoi(strings.TrimSpace(line))

			// Another horust with the same service name: a parent of its own.
			opts := first.opts
			opts.Parent = ""
			second, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			g2, err := second.Service("db.toml", config.Resource{PidsMax: 100})
			if err != nil || !g2.Tracks() {
				t.Fatalf("second Service = %v, %v", g2, err)
			}
			for _, p := range g2.Paths() {
				if slices.Contains(g.Paths(), p) {
					t.Fatalf("both horusts use %s", p)
				}
			}
			if err := g2.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := second.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if pids, _ := g.procs(); !slices.Contains(pids, daemon) {
				t.Fatalf("the second horust's Close touched the first's service: %v", pids)
			}
			// The same parent name twice is refused, never shared: a
			// service without limits then runs without a cgroup.
			third, err := Open(first.opts)
			if err != nil {
				t.Fatal(err)
			}
			if g3, err := third.Service("other.toml", config.Resource{}); err != nil || g3.Tracks() {
				t.Fatalf("a second user of one parent = %v, %v; want a group that tracks nothing", g3, err)
			}
			if err := third.Close(); err != nil {
				t.Fatal(err)
			}
			if pids, _ := g.procs(); !slices.Contains(pids, daemon) {
				t.Fatalf("the third horust's Close touched the first's service: %v", pids)
			}
		})
	}
}

func TestTheJoinStepWorksUnderPidsMaxOne(t *testing.T) {
	// pids.max counts threads, and the step is a Go program: it must get
	// to its execve without needing a new thread after the join.
	for _, mode := range []string{"hybrid", "v1"} {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			g := service(t, m, "single", config.Resource{PidsMax: 1})
			for range 10 {
				c := start(t, g, "", "/bin/true", []string{"true"}, nil)
				msg, _ := io.ReadAll(c.err)
				if ws := wait(t, c.pid); ws != 0 {
					t.Fatalf("exited %v under pids-max = 1: %s", ws, msg)
				}
			}
		})
	}
}

// The parent directory is made once; when it vanishes (removed by hand
// between two services' first starts), the next service makes it again.
func TestParentRemovedByHandIsMadeAgain(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			a := service(t, m, "a.toml", config.Resource{})
			var parents []string
			for _, p := range a.Paths() {
				parents = append(parents, filepath.Dir(p))
			}
			if err := a.Remove(); err != nil {
				t.Fatal(err)
			}
			if len(parents) == 0 {
				t.Fatal("the group has no directory")
			}
			for _, p := range parents {
				if err := unix.Rmdir(p); err != nil {
					t.Fatalf("remove the parent by hand: %v", err)
				}
			}
			b, err := m.Service("b.toml", config.Resource{})
			if err != nil || !b.Tracks() {
				t.Fatalf("the next service has no cgroup (err %v)", err)
			}
			c := start(t, b, "cgroup", "", nil, nil)
			out, _ := io.ReadAll(c.out)
			wait(t, c.pid)
			got := cgroupPaths(string(out))
			for k, want := range wantPaths(b) {
				if got[k] != want {
					t.Errorf("child's cgroup in %s = %q, want %q", k, got[k], want)
				}
			}
			if err := b.Remove(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A horust killed with SIGKILL leaves its parent and a daemon in it; the
// next horust's RemoveStale kills the daemon and removes the parent, and
// leaves the parent of a live horust alone.
func TestRemoveStaleCleansUpAfterAKilledHorust(t *testing.T) {
	m := realManager(t, "hybrid")
	live, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Close() })
	lg := service(t, live, "svc.toml", config.Resource{})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmdOut, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer cmdOut.Close()
	pid, err := syscall.ForkExec(exe, []string{exe}, &syscall.ProcAttr{Env: helperEnviron("stale-horust"), Files: []uintptr{0, w.Fd(), 2}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(cmdOut)
	line, err := rd.ReadString('\n')
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		wait(t, pid)
		t.Fatalf("the horust to kill did not start its service: %v", err)
	}
	daemon, _ := strconv.Atoi(strings.TrimSpace(line))
	paths, _ := rd.ReadString('\n')
	_ = syscall.Kill(pid, syscall.SIGKILL)
	wait(t, pid)
	if daemon <= 0 || syscall.Kill(daemon, 0) != nil {
		t.Fatalf("no daemon left by the killed horust (%q)", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(daemon, syscall.SIGKILL) })
	fd, err := unix.PidfdOpen(daemon, 0)
	if err != nil {
		t.Fatal(err)
	}

	removed, err := m.RemoveStale()
	if err != nil {
		t.Errorf("RemoveStale: %v", err)
	}
	for p := range strings.FieldsSeq(paths) {
		parent := filepath.Dir(p)
		if !slices.Contains(removed, parent) {
			t.Errorf("RemoveStale removed %v, not the killed horust's %s", removed, parent)
		}
		if _, err := os.Stat(parent); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", parent, err)
		}
	}
	if !exitsWithin(fd, 10*time.Second) {
		t.Errorf("the killed horust's daemon %d still runs", daemon)
	}
	for _, p := range lg.Paths() {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the live horust's cgroup %s: %v", p, err)
		}
	}
}

// Out of file descriptors, a group still signals and kills its processes:
// the files that needs were opened when the group was made.
func TestSignalAndKillNeedNoFreeDescriptor(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode, func(t *testing.T) {
			m := realManager(t, mode)
			g := service(t, m, "fds.toml", config.Resource{})
			c := start(t, g, "daemon", "", nil, nil)
			line, err := bufio.NewReader(c.out).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			wait(t, c.pid)
			daemon, _ := strconv.Atoi(strings.TrimSpace(line))
			t.Cleanup(func() { _ = syscall.Kill(daemon, syscall.SIGKILL) })
			pfd, err := unix.PidfdOpen(daemon, 0)
			if err != nil {
				t.Fatal(err)
			}

			var lim unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
			low := lim
			low.Cur = 256
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
				t.Fatal(err)
			}
			var filler []int
			for {
				fd, err := unix.Dup(0)
				if err != nil {
					break
				}
				filler = append(filler, fd)
			}
			_, openErr := unix.Open("/dev/null", unix.O_RDONLY, 0)
			sigErr := g.Signal(syscall.SIGCONT)
			busy, popErr := g.Populated()
			killErr := g.Kill()
			for _, fd := range filler {
				unix.Close(fd)
			}
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(openErr, unix.EMFILE) {
				t.Fatalf("the test did not use up the descriptors: open gave %v", openErr)
			}
			if sigErr != nil || popErr != nil || !busy || killErr != nil {
				t.Fatalf("out of descriptors: Signal %v, Populated %v %v, Kill %v", sigErr, busy, popErr, killErr)
			}
			if !exitsWithin(pfd, 10*time.Second) {
				t.Errorf("the daemon %d survived Kill out of descriptors", daemon)
			}
		})
	}
}

// exitsWithin reports whether the process of pidfd exits within d (a
// zombie has exited), and closes pidfd.
func exitsWithin(pidfd int, d time.Duration) bool {
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n == 1 && err == nil
	}
}
