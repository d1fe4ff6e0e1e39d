package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/config"
)

// maxKillPasses bounds the kill passes over cgroup.procs where neither
// cgroup.kill nor a freezer stops new forks; a pass that finds no new
// process ends it early.
const maxKillPasses = 100

// removeWait bounds how long Remove waits for killed processes to exit.
const removeWait = time.Second

type groupDir struct {
	h    *hierarchy
	path string
	made bool // created by this Manager (not reused)
}

// Group is the cgroup of one service: one directory in the v2 tree and/or
// in some v1 hierarchies. The zero of its features is a no-op: a Group that
// tracks nothing signals nothing and removes nothing.
type Group struct {
	m    *Manager
	name string
	dirs []groupDir
	// fd is the v2 directory opened for CLONE_INTO_CGROUP, or -1.
	fd int
	// unit is the directory whose cgroup.procs lists the service's
	// processes; unitV2 says it is in the v2 tree (cgroup.kill,
	// cgroup.events).
	unit   string
	unitV2 bool
	// The unit's files that stopping the service needs, opened once when
	// the group is made (-1 when they could not be, or do not exist):
	// out of descriptors, a stop must still reach the service.
	procsFD, killFD, eventsFD int
}

func (g *Group) dir(h *hierarchy) string {
	if h == nil {
		return ""
	}
	for _, d := range g.dirs {
		if d.h == h {
			return d.path
		}
	}
	return ""
}

// reused reports whether any of the group's directories existed before
// this Manager asked for it.
func (g *Group) reused() bool {
	return slices.ContainsFunc(g.dirs, func(d groupDir) bool { return !d.made })
}

// settle opens the v2 directory and picks the unit: the v2 directory if
// there is one, else the v1 freezer one, else any v1 one.
func (g *Group) settle() {
	if v2 := g.dir(g.m.lay.v2); v2 != "" && g.fd < 0 {
		// O_PATH would not do: CLONE_INTO_CGROUP wants a real directory fd.
		fd, err := unix.Open(v2, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			g.dirs = slices.DeleteFunc(g.dirs, func(d groupDir) bool { return d.h.v2 })
		} else {
			g.fd = fd
		}
	}
	unit, unitV2 := "", false
	if v2 := g.dir(g.m.lay.v2); v2 != "" {
		unit, unitV2 = v2, true
	} else if f := g.dir(g.m.lay.v1["freezer"]); f != "" {
		unit = f
	} else if len(g.dirs) > 0 {
		unit = g.dirs[0].path
	}
	if unit == g.unit {
		return
	}
	g.closeUnit()
	g.unit, g.unitV2 = unit, unitV2
	if unit == "" {
		return
	}
	g.procsFD = openFile(filepath.Join(unit, "cgroup.procs"), unix.O_RDONLY)
	if unitV2 {
		g.killFD = openFile(filepath.Join(unit, "cgroup.kill"), unix.O_WRONLY)
		g.eventsFD = openFile(filepath.Join(unit, "cgroup.events"), unix.O_RDONLY)
	}
}

// openFile opens a cgroupfs file to keep, or returns -1.
func openFile(path string, mode int) int {
	fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// closeUnit closes the unit's kept descriptors.
func (g *Group) closeUnit() {
	for _, fd := range []*int{&g.procsFD, &g.killFD, &g.eventsFD} {
		if *fd >= 0 {
			_ = unix.Close(*fd)
		}
		*fd = -1
	}
}

// apply writes one limit into the group's directory of its hierarchy.
func (g *Group) apply(l limit, r config.Resource) error {
	dir := g.dir(l.h)
	if dir == "" {
		return nil // build already reported why
	}
	var files [][2]string
	quota := strconv.FormatInt(int64(math.Round(r.CPU*cpuPeriod)), 10)
	switch {
	case l.ctrl == "cpu" && l.h.v2:
		files = [][2]string{{"cpu.max", quota + " " + strconv.Itoa(cpuPeriod)}}
	case l.ctrl == "cpu":
		files = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)}, {"cpu.cfs_quota_us", quota}}
	case l.ctrl == "memory" && l.h.v2:
		files = [][2]string{{"memory.max", strconv.FormatUint(r.Memory, 10)}}
	case l.ctrl == "memory":
		files = [][2]string{{"memory.limit_in_bytes", strconv.FormatUint(r.Memory, 10)}}
	case l.ctrl == "pids":
		files = [][2]string{{"pids.max", strconv.FormatInt(r.PidsMax, 10)}}
	}
	for _, f := range files {
		p := filepath.Join(dir, f[0])
		if err := writeFile(p, f[1]); err != nil {
			return fmt.Errorf("%s limit: %w", l.what, err)
		}
	}
	return nil
}

// Tracks reports whether the group holds the service's processes, so that
// Signal and Kill reach all of them. When false (no writable cgroupfs, or
// cgroups disabled) the caller signals the process group instead.
func (g *Group) Tracks() bool { return g != nil && g.unit != "" }

// Paths are the group's directories, v2 first if any, for logs and status.
func (g *Group) Paths() []string {
	var out []string
	for _, d := range g.dirs {
		if d.h.v2 {
			out = append([]string{d.path}, out...)
		} else {
			out = append(out, d.path)
		}
	}
	return out
}

// StartAttr is what the fork needs. When useFD is true, set
// SysProcAttr.UseCgroupFD and CgroupFD = cgroupFD (clone3 places the child
// in the v2 cgroup before it runs). When joinProcs is not empty, the child
// must also join those cgroups before it executes the service: start the
// program through ExecArgv (or let Prepare do both). They are the v1
// cgroups, and the v2 one too where clone3 cannot place a child in it.
func (g *Group) StartAttr() (cgroupFD int, useFD bool, joinProcs []string) {
	if g == nil {
		return -1, false, nil
	}
	for _, d := range g.dirs {
		if !d.h.v2 || !g.m.intoCgroup {
			joinProcs = append(joinProcs, filepath.Join(d.path, "cgroup.procs"))
		}
	}
	return g.fd, g.fd >= 0 && g.m.intoCgroup, joinProcs
}

// Prepare sets up attr and returns the program and argv to fork so that the
// child is in every cgroup of the group before it executes path: it sets
// UseCgroupFD/CgroupFD for the v2 cgroup and, when v1 cgroups must be
// joined, returns the re-exec form of ExecArgv and moves attr.Credential
// into it (the join needs root; privileges are dropped after it). A nil
// Group leaves everything as it is.
func (g *Group) Prepare(attr *syscall.SysProcAttr, path string, argv []string) (string, []string) {
	fd, useFD, procs := g.StartAttr()
	if useFD {
		setCgroupFD(attr, fd)
	}
	if len(procs) == 0 {
		return path, argv
	}
	self, args := g.ExecArgv(path, argv, attr.Credential)
	attr.Credential = nil
	return self, args
}

// ExecArgv is the re-exec form of starting path with argv: fork self with
// args (and no Credential in SysProcAttr); the child, horust again, joins
// the group's v1 cgroups, then drops to cred if it is not nil (setgroups
// unless cred.NoSetGroups, setgid, setuid), then executes path with argv
// and its own environment. See MaybeExec.
func (g *Group) ExecArgv(path string, argv []string, cred *syscall.Credential) (self string, args []string) {
	_, _, procs := g.StartAttr()
	return execArgv(procs, path, argv, cred)
}

// procs lists the pids in the unit.
func (g *Group) procs() ([]int, error) {
	if !g.Tracks() {
		return nil, nil
	}
	return readProcs(filepath.Join(g.unit, "cgroup.procs"), g.procsFD)
}

// readProcs lists the pids in a cgroup.procs file, read through fd when
// it is not -1.
func readProcs(path string, fd int) ([]int, error) {
	var b []byte
	var err error
	if fd >= 0 {
		b, err = readFD(fd, path)
	} else {
		b, err = readFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if p, err := strconv.Atoi(f); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Signal sends sig to every process in the group. A process that exits
// meanwhile is not an error; neither is a group that tracks nothing.
func (g *Group) Signal(sig syscall.Signal) error {
	pids, err := g.procs()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pids {
		if err := unix.Kill(p, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("signal %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Kill sends SIGKILL to every process in the group, including those forked
// meanwhile: v2 writes cgroup.kill; v1 freezes the group, kills every
// process and thaws it; without either it repeats kill passes over
// cgroup.procs until one finds nobody new. It returns at once; the
// processes die asynchronously.
func (g *Group) Kill() error {
	if !g.Tracks() {
		return nil
	}
	if g.unitV2 {
		kill := filepath.Join(g.unit, "cgroup.kill")
		var err error
		if g.killFD >= 0 {
			err = writeFD(g.killFD, kill, "1")
		} else {
			err = writeFile(kill, "1")
		}
		if !errors.Is(err, fs.ErrNotExist) { // before Linux 5.14: kill passes
			if err != nil {
				return fmt.Errorf("kill cgroup: %w", err)
			}
			return nil
		}
	}
	if f := g.dir(g.m.lay.v1["freezer"]); f != "" && f == g.unit {
		state := filepath.Join(f, "freezer.state")
		if err := writeFile(state, "FROZEN"); err == nil {
			// Frozen processes keep the SIGKILL pending and die on thaw.
			defer func() { _ = writeFile(state, "THAWED") }()
		}
	}
	return killPasses(filepath.Join(g.unit, "cgroup.procs"), g.procsFD)
}

// killPasses SIGKILLs the pids of a cgroup.procs file (read through fd when
// it is not -1) until a pass finds nobody new.
func killPasses(path string, fd int) error {
	killed := map[int]bool{}
	for range maxKillPasses {
		pids, err := readProcs(path, fd)
		if err != nil {
			return err
		}
		fresh := 0
		for _, p := range pids {
			if killed[p] {
				continue
			}
			killed[p] = true
			fresh++
			if err := unix.Kill(p, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill %d: %w", p, err)
			}
		}
		if fresh == 0 {
			return nil
		}
	}
	return fmt.Errorf("kill cgroup %s: processes kept appearing after %d passes", filepath.Dir(path), maxKillPasses)
}

// Populated reports whether any process is in the group.
func (g *Group) Populated() (bool, error) {
	if !g.Tracks() {
		return false, nil
	}
	if g.unitV2 {
		events := filepath.Join(g.unit, "cgroup.events")
		var b []byte
		var err error
		if g.eventsFD >= 0 {
			b, err = readFD(g.eventsFD, events)
		} else {
			b, err = readFile(events)
		}
		if err == nil {
			if v, ok, err := parseKey(b, events, "populated"); err == nil && ok {
				return v != 0, nil
			}
		}
	}
	pids, err := g.procs()
	return len(pids) > 0, err
}

// OOMKills is how many processes of the group the kernel killed for its
// memory limit so far (v1 memory.oom_control, Linux 4.13 or later; v2
// memory.events; both key "oom_kill"). It is 0 where nothing counts them
// (no memory controller for the group). Compare the value before a start
// with the value after the exit to explain a SIGKILL (see OOMReason).
func (g *Group) OOMKills() uint64 {
	if g == nil {
		return 0
	}
	file := ""
	if d := g.dir(g.m.lay.v1["memory"]); d != "" {
		file = filepath.Join(d, "memory.oom_control")
	} else if d := g.dir(g.m.lay.v2); d != "" {
		file = filepath.Join(d, "memory.events")
	}
	if file == "" {
		return 0
	}
	v, _, _ := readKey(file, "oom_kill")
	return v
}

// CPUUsage is the CPU time used by the group's processes so far, from v2
// cpu.stat usage_usec (present without the cpu controller) or v1
// cpuacct.usage.
func (g *Group) CPUUsage() (time.Duration, error) {
	if g == nil {
		return 0, errors.New("no cgroup")
	}
	if d := g.dir(g.m.lay.v2); d != "" {
		v, ok, err := readKey(filepath.Join(d, "cpu.stat"), "usage_usec")
		if err == nil && ok {
			return time.Duration(v) * time.Microsecond, nil
		}
	}
	if d := g.dir(g.m.lay.v1["cpuacct"]); d != "" {
		b, err := readFile(filepath.Join(d, "cpuacct.usage"))
		if err != nil {
			return 0, fmt.Errorf("cpu usage: %w", err)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu usage: %w", err)
		}
		return time.Duration(v), nil
	}
	return 0, errors.New("cpu usage: no cpu accounting for this cgroup")
}

// Remove removes the group's directories in every hierarchy. Processes
// still in the group (a daemon left behind by a finished service) are
// killed first, and Remove waits up to a second for them to exit (with
// pidfds, no polling). A Group that could not be removed stays known to
// the Manager, and Close tries again. After a successful Remove the Group
// tracks nothing; Manager.Service makes a new one.
func (g *Group) Remove() error {
	if g == nil {
		return nil
	}
	if pids, _ := g.procs(); len(pids) > 0 {
		fds := pidfds(pids)
		_ = g.Kill()
		waitExit(fds, removeWait)
	}
	var errs []error
	for i := len(g.dirs) - 1; i >= 0; i-- {
		d := g.dirs[i]
		if err := rmdirTree(d.path); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d.path, err))
			continue
		}
		g.dirs = slices.Delete(g.dirs, i, i+1)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	g.release()
	return nil
}

// rmdirTree removes a cgroup and, first, the cgroups a service may have
// made inside its own (a container runtime run as a service). A cgroup
// without children is removed without being read, which needs no free
// descriptor.
func rmdirTree(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
	}
	return unix.Rmdir(dir)
}

// release forgets the group's directories and closes its descriptor.
func (g *Group) release() {
	if g.fd >= 0 {
		_ = unix.Close(g.fd)
		g.fd = -1
	}
	g.closeUnit()
	g.dirs = nil
	g.unit, g.unitV2 = "", false
	if g.m.groups[g.name] == g {
		delete(g.m.groups, g.name)
	}
}

// waitExit waits until every pidfd reports its process exited, or the
// timeout passes, and closes them.
func waitExit(fds []int, timeout time.Duration) {
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	deadline := time.Now().Add(timeout)
	for len(pfds) > 0 {
		ms := time.Until(deadline).Milliseconds()
		if ms <= 0 {
			return
		}
		_, err := unix.Poll(pfds, int(ms))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		pfds = slices.DeleteFunc(pfds, func(p unix.PollFd) bool { return p.Revents != 0 })
	}
}

// readKey reads "key value" lines (cgroup.events, memory.events, cpu.stat,
// memory.oom_control) and returns the value of key.
func readKey(path, key string) (uint64, bool, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, false, err
	}
	return parseKey(b, path, key)
}

// parseKey finds key in the "key value" lines b read from path.
func parseKey(b []byte, path, key string) (uint64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			return n, true, nil
		}
	}
	return 0, false, nil
}

// StartError explains a failed fork of a child placed in the group: when
// the group's v2 directory is gone (removed under horust), clone3 fails
// with an errno that would otherwise read as the program's ("no such file
// or directory"), so the error names the cgroup. It is nil when the
// cgroup is not the cause (and when the re-exec step joins it: the step
// names the cgroup itself).
func (g *Group) StartError(err error) error {
	if g == nil || g.fd < 0 || !g.m.intoCgroup {
		return nil
	}
	v2 := g.dir(g.m.lay.v2)
	if unix.Faccessat(g.fd, "cgroup.procs", unix.F_OK, 0) == nil {
		return nil
	}
	return fmt.Errorf("start in cgroup %s: %w (the cgroup was removed under horust; the next start makes it again)", v2, err)
}
