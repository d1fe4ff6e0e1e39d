package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// knownControllers are the v1 controllers a mount's options may name; any
// other option (rw, noprefix, name=systemd, ...) is not a controller.
var knownControllers = []string{
	"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
	"blkio", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
}

// hierarchy is one cgroup hierarchy as horust sees it: the v2 tree or one v1
// hierarchy (one or more co-mounted controllers).
type hierarchy struct {
	v2          bool
	controllers []string // v1: the controllers bound to it
	mount       string   // where it is mounted
	own         string   // directory of horust's own cgroup in it
	readOnly    bool
}

func (h *hierarchy) String() string {
	if h.v2 {
		return "cgroup2 " + h.mount
	}
	return strings.Join(h.controllers, ",") + " " + h.mount
}

// layout is what detection found.
type layout struct {
	v2 *hierarchy
	// v1 maps a controller to its hierarchy; co-mounted controllers share
	// one *hierarchy.
	v1 map[string]*hierarchy
	// notes says why a mounted hierarchy is not used, for error messages.
	notes []string
}

func (l *layout) mode() string {
	switch {
	case l.v2 != nil && len(l.v1) > 0:
		return "hybrid"
	case l.v2 != nil:
		return "v2"
	case len(l.v1) > 0:
		return "v1"
	}
	return "none"
}

type mountEntry struct {
	root, point string
	fstype      string
	options     []string // mount options and super options together
}

// detect reads the mount table and the process's cgroup membership and
// keeps the cgroup filesystems mounted at or below root. A missing mount
// table or cgroup file means no cgroups (a container without /proc).
func detect(root, procCgroup, mountInfo string) (*layout, error) {
	l := &layout{v1: map[string]*hierarchy{}}
	mi, err := os.ReadFile(mountInfo)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	pc, err := os.ReadFile(procCgroup)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	own, ownV2, hasV2 := parseProcCgroup(pc)
	root = filepath.Clean(root)
	mounts := parseMountInfo(mi)
	// Of several mounts at one point only the last, on top, is visible (a
	// read-only bind mount over a writable cgroupfs, as a container
	// engine makes).
	top := map[string]int{}
	for i, m := range mounts {
		top[m.point] = i
	}
	for i, m := range mounts {
		if top[m.point] != i || m.point != root && !strings.HasPrefix(m.point, root+"/") {
			continue
		}
		h := &hierarchy{mount: m.point, readOnly: slices.Contains(m.options, "ro")}
		var path string
		switch m.fstype {
		case "cgroup2":
			if l.v2 != nil || !hasV2 {
				continue
			}
			h.v2 = true
			path = ownV2
		case "cgroup":
			for _, o := range m.options {
				if slices.Contains(knownControllers, o) && !slices.Contains(h.controllers, o) {
					h.controllers = append(h.controllers, o)
				}
			}
			if len(h.controllers) == 0 || l.v1[h.controllers[0]] != nil {
				continue // a named hierarchy (name=systemd) or a second mount
			}
			p, ok := own[h.controllers[0]]
			if !ok {
				l.notes = append(l.notes, fmt.Sprintf("%s: horust is in no cgroup of it", h))
				continue
			}
			path = p
		default:
			continue
		}
		dir, err := ownDir(m, path)
		if err != nil {
			l.notes = append(l.notes, fmt.Sprintf("%s: %v", h, err))
			continue
		}
		h.own = dir
		if h.v2 {
			l.v2 = h
			continue
		}
		for _, c := range h.controllers {
			l.v1[c] = h
		}
	}
	return l, nil
}

// ownDir maps the cgroup path from /proc/self/cgroup to a directory under
// the mount, whose root may itself be a cgroup (a bind mount in a
// container).
func ownDir(m mountEntry, path string) (string, error) {
	if !strings.HasPrefix(path, "/") || slices.Contains(strings.Split(path, "/"), "..") {
		return "", fmt.Errorf("horust's cgroup %q is outside the visible tree", path)
	}
	rel := path
	if m.root != "/" {
		switch {
		case path == m.root:
			rel = "/"
		case strings.HasPrefix(path, m.root+"/"):
			rel = path[len(m.root):]
		default:
			return "", fmt.Errorf("horust's cgroup %q is not under the mounted %q", path, m.root)
		}
	}
	return filepath.Join(m.point, rel), nil
}

// parseProcCgroup reads /proc/self/cgroup: "id:controllers:path" lines, the
// v2 line being "0::path".
func parseProcCgroup(b []byte) (v1 map[string]string, v2 string, hasV2 bool) {
	v1 = map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, hasV2 = parts[2], true
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c != "" && !strings.HasPrefix(c, "name=") {
				v1[c] = parts[2]
			}
		}
	}
	return v1, v2, hasV2
}

// parseMountInfo reads /proc/self/mountinfo (proc(5)): "id parent maj:min
// root point options [optional...] - fstype source superoptions".
func parseMountInfo(b []byte) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		before, after, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(before), strings.Fields(after)
		if len(f) < 6 || len(g) < 1 {
			continue
		}
		m := mountEntry{root: unescapeOctal(f[3]), point: unescapeOctal(f[4]), fstype: g[0]}
		m.options = strings.Split(f[5], ",")
		if len(g) >= 3 {
			m.options = append(m.options, strings.Split(g[2], ",")...)
		}
		out = append(out, m)
	}
	return out
}

// unescapeOctal undoes the \ooo escapes of mountinfo (space is \040).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
