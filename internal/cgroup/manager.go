package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/config"
)

// Default locations; Options fields left empty take these.
const (
	DefaultRoot       = "/sys/fs/cgroup"
	DefaultProcCgroup = "/proc/self/cgroup"
	DefaultMountInfo  = "/proc/self/mountinfo"
)

// leafName is horust's own cgroup under its parent once the cgroup v2 "no
// internal processes" rule makes it leave its original cgroup. EscapeName
// never yields a name with a leading dot, so no service can clash with it.
const leafName = ".supervisor"

// cpuPeriod is the CFS period, in µs, of every cpu limit; the quota is the
// fraction of CPUs times this.
const cpuPeriod = 100000

// minCPUQuota is the smallest CFS quota the kernel accepts, in µs.
const minCPUQuota = 1000

// Options configure Open. The zero value detects the real system.
type Options struct {
	// Root is where cgroup filesystems are mounted; only mounts at or below
	// it count. Default DefaultRoot.
	Root string
	// ProcCgroup and MountInfo are read to find horust's own cgroups and
	// the cgroup mounts. Defaults DefaultProcCgroup and DefaultMountInfo.
	ProcCgroup string
	MountInfo  string
	// Disabled is --no-cgroups: no cgroup is created or used, and a
	// service with limits gets an error.
	Disabled bool
	// IgnoreErrors is --ignore-resource-errors: a limit that cannot be
	// applied does not stop the service (see Manager.Service).
	IgnoreErrors bool
	// Parent names this horust's directory, under its own cgroup in every
	// hierarchy, that holds one cgroup per service. Default InstanceName():
	// unique among the horusts that share a cgroup, and recognised by
	// RemoveStale once its horust is gone. It must be a single path element.
	Parent string
}

// Manager creates and removes the cgroups of the services of one horust.
// It belongs to the supervisor loop: a Manager and its Groups are not safe
// for concurrent use.
type Manager struct {
	opts   Options
	lay    *layout
	groups map[string]*Group
	// parents are the services' parent directories that Close removes, each
	// with its open, flock'ed descriptor: the lock says "this horust is
	// alive" to the RemoveStale of every other horust.
	parents map[string]int
	// moved is set once horust moved itself into <own v2>/<parent>/.supervisor;
	// enabled lists the controllers it then enabled in its old cgroup.
	moved   bool
	enabled []string
	// intoCgroup is whether clone3 can start a child in its v2 cgroup;
	// when not, the re-exec step joins the v2 cgroup as it joins v1 ones.
	intoCgroup bool
}

// Open detects the cgroup setup. It creates nothing: the parent
// directories are made by the first Service that needs them. With
// opts.Disabled, or when no cgroup filesystem is mounted, the mode is
// "none" and every Group is a no-op. The error is only for an unreadable
// mount table or cgroup file (a missing one means no cgroups).
func Open(opts Options) (*Manager, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.ProcCgroup == "" {
		opts.ProcCgroup = DefaultProcCgroup
	}
	if opts.MountInfo == "" {
		opts.MountInfo = DefaultMountInfo
	}
	if opts.Parent == "" {
		opts.Parent = InstanceName()
	}
	if strings.Contains(opts.Parent, "/") || opts.Parent == "." || opts.Parent == ".." {
		return nil, fmt.Errorf("cgroup: bad parent name %q", opts.Parent)
	}
	m := &Manager{opts: opts, lay: &layout{v1: map[string]*hierarchy{}}, groups: map[string]*Group{}, parents: map[string]int{}}
	if opts.Disabled || unavailable != "" {
		return m, nil
	}
	lay, err := detect(opts.Root, opts.ProcCgroup, opts.MountInfo)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	m.lay = lay
	m.intoCgroup = lay.v2 != nil && cloneIntoCgroup()
	return m, nil
}

// Mode is the detected setup: "v2" (one unified tree), "v1" (separate
// controller hierarchies), "hybrid" (both: v1 controllers plus a v2 tree
// without them, as systemd's hybrid mode) or "none" (disabled, or nothing
// mounted).
func (m *Manager) Mode() string { return m.lay.mode() }

// limit is one requested limit and the hierarchy that will hold it.
type limit struct {
	what, ctrl string
	h          *hierarchy
}

// LimitError lists the limits of one service that could not be applied.
type LimitError struct {
	Problems []error
}

// Error is the problems on one line, separated by "; ".
func (e *LimitError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the problems.
func (e *LimitError) Unwrap() []error { return e.Problems }

// Service creates the cgroup of a service, or reuses it (a restart), and
// applies the limits of r. The rule for callers: when the Group is not nil
// the service can start, and an error returned with it is a warning to
// log; when it is nil the start fails with the error.
//
// A service without limits gets a cgroup wherever one can be made, and
// that cgroup is the unit Signal and Kill reach; where none can be made
// (not root, read-only cgroupfs, no cgroups, Disabled) the Group tracks
// nothing, Tracks reports false, and the error is nil: the caller falls
// back to the process group.
//
// A limit that cannot be applied (a missing controller, no permission, a
// read-only cgroupfs) is an error that names what is missing, of type
// *LimitError. Without Options.IgnoreErrors the Group is then nil and the
// service must not start. With IgnoreErrors the Group is returned too, with
// the limits that could be applied, and the error is the warning to log.
func (m *Manager) Service(name string, r config.Resource) (*Group, error) {
	if name == "" {
		return nil, errors.New("cgroup: empty service name")
	}
	g := m.groups[name]
	fresh := g == nil
	if fresh {
		g = &Group{m: m, name: name, fd: -1, procsFD: -1, killFD: -1, eventsFD: -1}
	}
	var problems []error
	var limits []limit
	add := func(what, ctrl string, set bool) {
		if !set {
			return
		}
		h, err := m.controllerFor(ctrl)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s limit needs the %s controller, which %w", what, ctrl, err))
			return
		}
		limits = append(limits, limit{what: what, ctrl: ctrl, h: h})
	}
	if r.CPU > 0 && math.Round(r.CPU*cpuPeriod) < minCPUQuota {
		problems = append(problems, fmt.Errorf("cpu limit %g is below the kernel's minimum of %g", r.CPU, float64(minCPUQuota)/cpuPeriod))
	} else {
		add("cpu", "cpu", r.CPU > 0)
	}
	add("memory", "memory", r.Memory > 0)
	add("pids", "pids", r.PidsMax > 0)

	if m.Mode() != "none" {
		m.build(g, limits, &problems)
		m.groups[name] = g
		for _, l := range limits {
			if err := g.apply(l, r); err != nil {
				problems = append(problems, err)
			}
		}
		// A directory made just now holds no limit; one reused (a restart
		// with other limits) may hold stale ones.
		if v2 := g.dir(m.lay.v2); v2 != "" && (!fresh || g.reused()) {
			if err := resetV2(v2, r); err != nil {
				problems = append(problems, err)
			}
		}
	}
	if len(problems) == 0 {
		return g, nil
	}
	err := &LimitError{Problems: problems}
	if m.opts.IgnoreErrors {
		return g, err
	}
	return nil, err
}

// controllerFor finds the hierarchy that holds ctrl: its v1 hierarchy if
// it has one (so on hybrid systems limits live in v1), else the v2 tree if
// the controller is available there. The error completes "the X
// controller, which ...".
func (m *Manager) controllerFor(ctrl string) (*hierarchy, error) {
	if m.opts.Disabled {
		return nil, errors.New("cannot be used: cgroups are disabled (--no-cgroups)")
	}
	if unavailable != "" {
		return nil, errors.New("cannot be used: " + unavailable)
	}
	if h := m.lay.v1[ctrl]; h != nil {
		return h, nil
	}
	if h := m.lay.v2; h != nil {
		if ctrl == "cpu" || ctrl == "memory" || ctrl == "pids" {
			f := filepath.Join(h.own, "cgroup.controllers")
			b, err := readFile(f)
			if err != nil {
				return nil, fmt.Errorf("cannot be checked: %w", err)
			}
			if slices.Contains(strings.Fields(string(b)), ctrl) {
				return h, nil
			}
			return nil, fmt.Errorf("is not available in %s (the parent cgroup does not delegate it)", f)
		}
	}
	var why string
	if m.Mode() == "none" {
		why = " (no cgroup filesystem is mounted there)"
	}
	if len(m.lay.notes) > 0 {
		why = " (" + strings.Join(m.lay.notes, "; ") + ")"
	}
	return nil, fmt.Errorf("is not mounted under %s%s", m.opts.Root, why)
}

// build creates the group's directories: in the v2 tree (membership, and
// limits for controllers that live there) and in every v1 hierarchy that a
// limit needs; on a pure v1 system also in the freezer hierarchy (the kill
// unit) and the cpuacct one (CPU accounting). A directory that cannot be
// made is a problem only when a limit needs it.
func (m *Manager) build(g *Group, limits []limit, problems *[]error) {
	var need []*hierarchy
	needFor := map[*hierarchy][]string{}
	for _, l := range limits {
		if !slices.Contains(need, l.h) {
			need = append(need, l.h)
		}
		needFor[l.h] = append(needFor[l.h], l.what)
	}
	if v2 := m.lay.v2; v2 != nil && !slices.Contains(need, v2) {
		need = append(need, v2)
	}
	if m.lay.v2 == nil {
		// Pure v1: the kill unit is the freezer hierarchy, or the first
		// other one mounted; cpuacct comes along for CPU accounting.
		for _, c := range []string{"freezer", "pids", "cpuacct", "cpu", "memory"} {
			if h := m.lay.v1[c]; h != nil {
				if !slices.Contains(need, h) {
					need = append(need, h)
				}
				break
			}
		}
		if h := m.lay.v1["cpuacct"]; h != nil && !slices.Contains(need, h) {
			need = append(need, h)
		}
	}
	for _, h := range need {
		if g.dir(h) != "" {
			continue
		}
		var ctrls []string
		if h.v2 {
			for _, l := range limits {
				if l.h == h {
					ctrls = append(ctrls, l.ctrl)
				}
			}
		}
		dir, made, err := m.makeDir(h, g.name, ctrls)
		if err != nil {
			if len(needFor[h]) > 0 {
				*problems = append(*problems, fmt.Errorf("%s limit: %w", strings.Join(needFor[h], " and "), err))
			}
			continue
		}
		g.dirs = append(g.dirs, groupDir{h: h, path: dir, made: made})
	}
	g.settle()
}

// makeDir creates (or reuses) <own>/<parent>/<escaped name> in h, first
// enabling ctrls for it when h is the v2 tree. made is false when the
// directory existed.
func (m *Manager) makeDir(h *hierarchy, name string, ctrls []string) (dir string, made bool, err error) {
	if h.readOnly {
		return "", false, fmt.Errorf("%s is mounted read-only", h.mount)
	}
	parent := filepath.Join(h.own, m.opts.Parent)
	// The parent is made once per hierarchy; should it vanish (removed by
	// hand), the ENOENT of the service's directory makes it again.
	_, known := m.parents[parent]
	if !known {
		if err := m.makeParent(h); err != nil {
			return "", false, err
		}
	}
	for _, c := range ctrls {
		if err := m.enableV2(h, parent, c); err != nil {
			return "", false, err
		}
	}
	dir = filepath.Join(parent, EscapeName(name))
	made, err = mkdir(dir)
	if known && errors.Is(err, fs.ErrNotExist) {
		if err := m.makeParent(h); err != nil {
			return "", false, err
		}
		made, err = mkdir(dir)
	}
	if err != nil {
		return "", false, fmt.Errorf("create cgroup: %w", err)
	}
	return dir, made, nil
}

// mkdir makes dir, or accepts an existing directory (made false).
func mkdir(dir string) (made bool, err error) {
	err = os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return false, nil
	}
	return err == nil, err
}

// enableV2 makes ctrl available to the services' cgroups: it must be in the
// subtree_control of horust's own cgroup and of the parent. The v2 "no
// internal processes" rule forbids the first while horust's own cgroup
// holds processes (unless it is the root), so horust first moves itself
// into <parent>/.supervisor, whatever the controller: a threaded one (cpu,
// pids) would be accepted while horust is still there, and would turn its
// cgroup into a thread root whose children refuse every later write
// (EOPNOTSUPP). Horust never makes a cgroup threaded.
func (m *Manager) enableV2(h *hierarchy, parent, ctrl string) error {
	own := filepath.Join(h.own, "cgroup.subtree_control")
	if !hasWord(own, ctrl) {
		root := isRoot(h.own)
		if !root && !m.moved {
			if err := m.moveSelf(parent); err != nil {
				return fmt.Errorf("enable the %s controller: %w", ctrl, err)
			}
		}
		err := writeFile(own, "+"+ctrl)
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("enable the %s controller in %s: horust's cgroup holds other processes, and cgroup v2 allows controllers below a cgroup only when it has none; start horust in a cgroup of its own: %w", ctrl, h.own, err)
		}
		if err != nil {
			return fmt.Errorf("enable the %s controller: %w%s", ctrl, err, typeNote(h.own))
		}
		if !root {
			m.enabled = append(m.enabled, ctrl)
		}
	}
	sub := filepath.Join(parent, "cgroup.subtree_control")
	if !hasWord(sub, ctrl) {
		if err := writeFile(sub, "+"+ctrl); err != nil {
			return fmt.Errorf("enable the %s controller: %w%s", ctrl, err, typeNote(parent))
		}
	}
	return nil
}

// isRoot reports whether dir is the root of the v2 tree, the one cgroup
// exempt from the "no internal processes" rule. Only the real root lacks
// cgroup.type; the root of a cgroup namespace has it.
func isRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.type"))
	return errors.Is(err, fs.ErrNotExist)
}

// typeNote explains an EOPNOTSUPP from a cgroup that is not a plain
// domain: a threaded subtree cannot hold domain controllers.
func typeNote(dir string) string {
	b, err := readFile(filepath.Join(dir, "cgroup.type"))
	if t := strings.TrimSpace(string(b)); err == nil && t != "domain" {
		return fmt.Sprintf(" (%s is of type %q: controllers cannot be enabled below a threaded cgroup; horust never makes one)", dir, t)
	}
	return ""
}

// moveSelf moves horust into <parent>/.supervisor.
func (m *Manager) moveSelf(parent string) error {
	leaf := filepath.Join(parent, leafName)
	if _, err := mkdir(leaf); err != nil {
		return fmt.Errorf("create horust's own leaf cgroup: %w", err)
	}
	if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
		_ = unix.Rmdir(leaf)
		return fmt.Errorf("move horust into its own leaf cgroup: %w", err)
	}
	m.moved = true
	return nil
}

// Close removes every service cgroup (killing what is left in them, see
// Group.Remove) and the parent directories. When horust had moved itself
// into a leaf cgroup, it first disables the controllers it enabled in its
// own cgroup and moves back (where another horust's use of a controller
// does not forbid it). The error lists the cgroups that could not be
// removed.
func (m *Manager) Close() error {
	var errs []error
	names := make([]string, 0, len(m.groups))
	for n := range m.groups {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := m.groups[n].Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if m.moved && m.lay.v2 != nil {
		own := m.lay.v2.own
		parent := filepath.Join(own, m.opts.Parent)
		for _, c := range slices.Backward(m.enabled) {
			_ = writeFile(filepath.Join(parent, "cgroup.subtree_control"), "-"+c)
			_ = writeFile(filepath.Join(own, "cgroup.subtree_control"), "-"+c)
		}
		if err := writeFile(filepath.Join(own, "cgroup.procs"), strconv.Itoa(os.Getpid())); err == nil {
			m.moved = false
			m.enabled = nil
			_ = unix.Rmdir(filepath.Join(parent, leafName))
		}
	}
	for p, fd := range m.parents {
		// Busy: horust could not leave its leaf. RemoveStale of the next
		// horust removes it once this one has exited.
		if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) {
			continue
		}
		_ = unix.Close(fd)
		delete(m.parents, p)
	}
	return errors.Join(errs...)
}

// resetV2 lifts v2 limits that r does not set, where the controller's file
// exists (a cgroup reused from a run with other limits).
func resetV2(dir string, r config.Resource) error {
	for _, f := range []struct {
		file, value string
		set         bool
	}{
		{"cpu.max", "max", r.CPU > 0},
		{"memory.max", "max", r.Memory > 0},
		{"pids.max", "max", r.PidsMax > 0},
	} {
		if f.set {
			continue
		}
		p := filepath.Join(dir, f.file)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := writeFile(p, f.value); err != nil {
			return fmt.Errorf("reset %s: %w", p, err)
		}
	}
	return nil
}

// hasWord reports whether the space-separated file at path lists w.
func hasWord(path, w string) bool {
	b, err := readFile(path)
	return err == nil && slices.Contains(strings.Fields(string(b)), w)
}
