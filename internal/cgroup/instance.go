package cgroup

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Each horust keeps its services' cgroups under a parent of its own,
// <own cgroup>/horust-<pid>-<16 hex digits>, so that two horusts in one
// cgroup never share a directory. The pid alone would not do (every
// container's horust is pid 1), hence the random part.
//
// A live horust holds an exclusive flock(2) on its parent directory (in
// every hierarchy) from the moment it makes it until it removes it, so
// "provably gone" is "nobody holds the lock": the kernel drops the lock
// when the last descriptor closes, however horust ended (SIGKILL
// included). Making a parent and testing a parent both happen under a lock
// on horust's own cgroup directory, so a parent just made and not yet
// locked is never taken for a dead one.

// isInstanceName reports whether name is one InstanceName makes,
// horust-<decimal pid>-<16 lower-case hex digits>, and only such a name:
// RemoveStale never touches a directory made by someone else. It is
// written out rather than a regexp: a regexp compiled at package
// initialization would cost every start of horust (one-shot included)
// about 0.4 ms, and package regexp would pull in the unicode tables.
func isInstanceName(name string) bool {
	rest, ok := strings.CutPrefix(name, "horust-")
	if !ok {
		return false
	}
	pid, random, ok := strings.Cut(rest, "-")
	if pid == "" || !ok || len(random) != 16 {
		return false
	}
	for _, c := range []byte(pid) {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range []byte(random) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// InstanceName is a new parent name: horust-<pid>-<16 random hex digits>.
func InstanceName() string {
	// math/rand/v2's generator is seeded from the kernel's randomness;
	// the name needs to be unique, not secret (crypto/rand would link the
	// whole crypto module into horust, whose initialization delays every
	// start: docs/design.md, "One-shot start-up").
	return fmt.Sprintf("horust-%d-%016x", os.Getpid(), rand.Uint64())
}

// lockDir opens dir and takes flock how (unix.LOCK_EX, maybe |LOCK_NB) on
// it; the descriptor holds the lock until closed.
func lockDir(dir string, how int) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for {
		err = unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// makeParent makes and locks this horust's parent in h (again, when it
// was removed by hand).
func (m *Manager) makeParent(h *hierarchy) error {
	parent := filepath.Join(h.own, m.opts.Parent)
	own, err := lockDir(h.own, unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("create cgroup: lock %s: %w", h.own, err)
	}
	defer unix.Close(own)
	if _, err := mkdir(parent); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	fd, err := lockDir(parent, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("create cgroup: %s is in use by another horust", parent)
	}
	if err != nil {
		return fmt.Errorf("create cgroup: lock %s: %w", parent, err)
	}
	if old, ok := m.parents[parent]; ok {
		_ = unix.Close(old)
	}
	m.parents[parent] = fd
	return nil
}

// RemoveStale removes the parents that horusts now gone left in horust's
// own cgroups (a horust killed with SIGKILL cannot remove its own): the
// processes still in them (a daemon that outlived its service, or a
// service whose horust died) are killed, and the directories removed.
// It returns the parents removed, and an error naming those that could
// not be. Parents of live horusts, and directories that horust did not
// name, are never touched.
func (m *Manager) RemoveStale() (removed []string, err error) {
	var errs []error
	for _, h := range m.hierarchies() {
		if h.readOnly {
			continue
		}
		stale, err := staleParents(h.own)
		if err != nil {
			errs = append(errs, err)
		}
		for _, s := range stale {
			if err := removeStale(s.path, h.v2); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, s.path)
			}
			_ = unix.Close(s.fd)
		}
	}
	return removed, errors.Join(errs...)
}

// hierarchies lists each mounted hierarchy once, the v2 tree first.
func (m *Manager) hierarchies() []*hierarchy {
	var hs []*hierarchy
	if m.lay.v2 != nil {
		hs = append(hs, m.lay.v2)
	}
	for _, c := range knownControllers {
		if h := m.lay.v1[c]; h != nil && !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return hs
}

type lockedDir struct {
	path string
	fd   int
}

// staleParents lists, locked, the parents under own that nobody holds.
func staleParents(own string) ([]lockedDir, error) {
	ownFD, err := lockDir(own, unix.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("remove stale cgroups: lock %s: %w", own, err)
	}
	defer unix.Close(ownFD)
	entries, err := os.ReadDir(own)
	if err != nil {
		return nil, fmt.Errorf("remove stale cgroups: %w", err)
	}
	var out []lockedDir
	for _, e := range entries {
		if !e.IsDir() || !isInstanceName(e.Name()) {
			continue
		}
		p := filepath.Join(own, e.Name())
		if fd, err := lockDir(p, unix.LOCK_EX|unix.LOCK_NB); err == nil {
			out = append(out, lockedDir{path: p, fd: fd})
		}
	}
	return out, nil
}

// removeStale kills every process in the tree of cgroups at dir, waits for
// them (at most removeWait), and removes the tree.
func removeStale(dir string, v2 bool) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var fds []int
	for _, d := range dirs {
		pids, _ := readProcs(filepath.Join(d, "cgroup.procs"), -1)
		fds = append(fds, pidfds(pids)...)
	}
	if len(fds) > 0 {
		// cgroup.kill (v2, Linux 5.14) reaches the whole subtree at once,
		// forks included; elsewhere, kill passes over each cgroup.
		if !v2 || writeFile(filepath.Join(dir, "cgroup.kill"), "1") != nil {
			for _, d := range dirs {
				_ = killPasses(filepath.Join(d, "cgroup.procs"), -1)
			}
		}
		waitExit(fds, removeWait)
	}
	// Gone already is removed: someone else (an operator, another tool)
	// may remove a dead horust's cgroups meanwhile.
	if err := rmdirTree(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove stale cgroup %s: %w", dir, err)
	}
	return nil
}
