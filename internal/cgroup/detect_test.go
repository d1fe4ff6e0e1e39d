package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/horust-go/horust/internal/config"
)

// fakeSystem is a fake machine in a temporary directory: a cgroup root
// (plain directories and files), a mount table and a /proc/self/cgroup.
type fakeSystem struct {
	root   string // the cgroup root, <tmp>/sys/fs/cgroup
	mounts []string
	procCg string
}

func newFake(t *testing.T) *fakeSystem {
	t.Helper()
	root := filepath.Join(t.TempDir(), "sys", "fs", "cgroup")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeSystem{root: root}
	f.mount("/", "", "tmpfs", "rw,mode=755")
	return f
}

// mount adds a mount of fstype at <root>/<sub> whose mount root is mroot.
func (f *fakeSystem) mount(mroot, sub, fstype, superOpts string) string {
	point := filepath.Join(f.root, sub)
	if err := os.MkdirAll(point, 0o755); err != nil {
		panic(err) // a temporary directory of the test
	}
	id := 30 + len(f.mounts)
	f.mounts = append(f.mounts, fmt.Sprintf("%d 23 0:%d %s %s rw,nosuid,nodev,noexec,relatime shared:%d - %s %s %s",
		id, id, mroot, point, id, fstype, fstype, superOpts))
	return point
}

// file writes content to <root>/<rel>, making its directories.
func (f *fakeSystem) file(t *testing.T, rel, content string) string {
	t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fakeSystem) read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fakeSystem) open(t *testing.T, ignore bool) *Manager {
	t.Helper()
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	pc := filepath.Join(dir, "cgroup")
	if err := os.WriteFile(mi, []byte(strings.Join(f.mounts, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pc, []byte(f.procCg), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Options{Root: f.root, MountInfo: mi, ProcCgroup: pc, IgnoreErrors: ignore, Parent: "horust"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fakeV2(t *testing.T, own, controllers string) *fakeSystem {
	f := newFake(t)
	f.mounts = nil // pure v2: cgroup2 is mounted at the root itself
	f.mount("/", "", "cgroup2", "rw,nsdelegate")
	f.procCg = "0::" + own + "\n"
	f.file(t, filepath.Join(own, "cgroup.controllers"), controllers+"\n")
	f.file(t, filepath.Join(own, "cgroup.subtree_control"), "")
	return f
}

func fakeV1(t *testing.T, skip ...string) *fakeSystem {
	f := newFake(t)
	lines := []string{"12:name=systemd:/user.slice"}
	for i, c := range []string{"cpu,cpuacct", "memory", "pids", "freezer"} {
		if slices.Contains(skip, c) {
			continue
		}
		f.mount("/", c, "cgroup", "rw,"+c)
		path := "/"
		if c == "memory" {
			path = "/user.slice"
		}
		lines = append(lines, fmt.Sprintf("%d:%s:%s", i+1, c, path))
	}
	f.mount("/", "systemd", "cgroup", "rw,xattr,name=systemd")
	lines = append(lines, "0::/user.slice")
	f.procCg = strings.Join(lines, "\n") + "\n"
	return f
}

func TestDetect(t *testing.T) {
	type want struct {
		mode  string
		v2own string            // relative to the fake root, "" = no v2
		v1own map[string]string // controller -> own dir relative to the fake root
	}
	for _, tc := range []struct {
		scenario string
		build    func(t *testing.T) *fakeSystem
		want     want
	}{
		{"pure v2 under systemd", func(t *testing.T) *fakeSystem {
			return fakeV2(t, "/system.slice/horust.service", "cpu memory pids")
		}, want{mode: "v2", v2own: "system.slice/horust.service"}},
		{"pure v2 in a container with a cgroup namespace", func(t *testing.T) *fakeSystem {
			return fakeV2(t, "/", "cpu memory pids")
		}, want{mode: "v2", v2own: "."}},
		{"pure v1 with cpu and cpuacct mounted together", func(t *testing.T) *fakeSystem {
			return fakeV1(t)
		}, want{mode: "v1", v1own: map[string]string{
			"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "memory": "memory/user.slice",
			"pids": "pids", "freezer": "freezer",
		}}},
		{"v1 in a container whose cgroup is bind-mounted", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.mount("/docker/abc", "memory", "cgroup", "rw,memory")
			f.procCg = "4:memory:/docker/abc\n0::/\n"
			return f
		}, want{mode: "v1", v1own: map[string]string{"memory": "memory"}}},
		{"hybrid with the v2 tree at unified", func(t *testing.T) *fakeSystem {
			f := fakeV1(t)
			f.mount("/", "unified", "cgroup2", "rw")
			return f
		}, want{mode: "hybrid", v2own: "unified/user.slice", v1own: map[string]string{
			"cpu": "cpu,cpuacct", "memory": "memory/user.slice", "pids": "pids", "freezer": "freezer",
		}}},
		{"no cgroup filesystem mounted", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.procCg = "0::/\n"
			return f
		}, want{mode: "none"}},
		{"cgroup mounts outside the root are ignored", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.mounts = append(f.mounts, "50 23 0:50 / /elsewhere rw - cgroup2 cgroup2 rw")
			f.procCg = "0::/\n"
			return f
		}, want{mode: "none"}},
		{"v1 cgroup outside the mounted subtree is unusable", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.mount("/docker/abc", "memory", "cgroup", "rw,memory")
			f.procCg = "4:memory:/other\n"
			return f
		}, want{mode: "none"}},
		{"a controller horust is not in is unusable", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.mount("/", "pids", "cgroup", "rw,pids")
			f.procCg = "4:memory:/\n"
			return f
		}, want{mode: "none"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			f := tc.build(t)
			m := f.open(t, false)
			if got := m.Mode(); got != tc.want.mode {
				t.Fatalf("Mode() = %q, want %q", got, tc.want.mode)
			}
			if tc.want.v2own == "" && m.lay.v2 != nil {
				t.Errorf("found a v2 tree at %s", m.lay.v2.mount)
			}
			if tc.want.v2own != "" {
				if m.lay.v2 == nil {
					t.Fatal("no v2 tree found")
				}
				if want := filepath.Join(f.root, tc.want.v2own); m.lay.v2.own != want {
					t.Errorf("v2 own = %s, want %s", m.lay.v2.own, want)
				}
			}
			for c, rel := range tc.want.v1own {
				h := m.lay.v1[c]
				if h == nil {
					t.Errorf("controller %s not found", c)
					continue
				}
				if want := filepath.Join(f.root, rel); h.own != want {
					t.Errorf("%s own = %s, want %s", c, h.own, want)
				}
			}
			if len(tc.want.v1own) > 0 && len(m.lay.v1) != len(tc.want.v1own)+btoi(tc.want.v1own["cpu"] != "" && tc.want.v1own["cpuacct"] == "") {
				t.Errorf("v1 controllers = %v, want those of %v", keys(m.lay.v1), tc.want.v1own)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func keys(m map[string]*hierarchy) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestDetectWithoutProc(t *testing.T) {
	m, err := Open(Options{Root: t.TempDir(), MountInfo: "/nonexistent/mountinfo", ProcCgroup: "/nonexistent/cgroup"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode() != "none" {
		t.Fatalf("Mode() = %q without /proc, want none", m.Mode())
	}
}

func TestMountInfoEscapes(t *testing.T) {
	ms := parseMountInfo([]byte(`41 31 0:38 / /sys/fs/my\040cgroup rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate` + "\n"))
	if len(ms) != 1 || ms[0].point != "/sys/fs/my cgroup" || ms[0].fstype != "cgroup2" {
		t.Fatalf("parsed %+v", ms)
	}
}

func TestServiceErrorsNameWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		build    func(t *testing.T) *fakeSystem
		disabled bool
		r        config.Resource
		want     []string
	}{
		{"v2 without the memory controller", func(t *testing.T) *fakeSystem {
			return fakeV2(t, "/app", "cpu pids")
		}, false, config.Resource{Memory: 100 << 20}, []string{
			"memory limit needs the memory controller, which is not available in ", "/app/cgroup.controllers",
		}},
		{"v1 without the pids hierarchy", func(t *testing.T) *fakeSystem {
			return fakeV1(t, "pids")
		}, false, config.Resource{PidsMax: 20}, []string{
			"pids limit needs the pids controller, which is not mounted under ",
		}},
		{"no cgroups at all", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.procCg = "0::/\n"
			return f
		}, false, config.Resource{CPU: 0.5}, []string{
			"cpu limit needs the cpu controller, which is not mounted under ", "(no cgroup filesystem is mounted there)",
		}},
		{"cgroups disabled", func(t *testing.T) *fakeSystem {
			return fakeV1(t)
		}, true, config.Resource{Memory: 1 << 20}, []string{
			"memory limit needs the memory controller, which cannot be used: cgroups are disabled (--no-cgroups)",
		}},
		{"cpu below the kernel's minimum", func(t *testing.T) *fakeSystem {
			return fakeV1(t)
		}, false, config.Resource{CPU: 0.001}, []string{"cpu limit 0.001 is below the kernel's minimum of 0.01"}},
		{"two limits missing", func(t *testing.T) *fakeSystem {
			return fakeV2(t, "/", "cpu")
		}, false, config.Resource{Memory: 1 << 20, PidsMax: 3}, []string{
			"memory limit needs the memory controller", "; pids limit needs the pids controller",
		}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			f := tc.build(t)
			m := f.open(t, false)
			if tc.disabled {
				m.opts.Disabled = true
				m.lay = &layout{v1: map[string]*hierarchy{}}
			}
			g, err := m.Service("db.toml", tc.r)
			if err == nil {
				t.Fatal("Service succeeded, want an error")
			}
			if g != nil {
				t.Error("Service returned a group with its error without IgnoreErrors")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIgnoreErrorsStartsWithTheLimitsThatWork(t *testing.T) {
	f := fakeV1(t, "pids")
	f.file(t, "memory/user.slice/horust/db.toml/memory.limit_in_bytes", "")
	m := f.open(t, true)
	g, err := m.Service("db.toml", config.Resource{Memory: 50 << 20, PidsMax: 20})
	if err == nil || !strings.Contains(err.Error(), "pids limit needs the pids controller") {
		t.Fatalf("error = %v, want the missing pids controller", err)
	}
	if g == nil || !g.Tracks() {
		t.Fatal("no usable group with IgnoreErrors")
	}
	if got := f.read(t, "memory/user.slice/horust/db.toml/memory.limit_in_bytes"); got != "52428800" {
		t.Errorf("memory.limit_in_bytes = %q", got)
	}
}

func TestServiceWithoutLimitsNeverFails(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		build    func(t *testing.T) *fakeSystem
		tracks   bool
	}{
		{"no cgroups", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.procCg = "0::/\n"
			return f
		}, false},
		{"read-only v1", func(t *testing.T) *fakeSystem {
			f := newFake(t)
			f.mount("/", "freezer", "cgroup", "ro,freezer")
			f.procCg = "6:freezer:/\n"
			return f
		}, false},
		{"writable v2", func(t *testing.T) *fakeSystem {
			return fakeV2(t, "/", "")
		}, true},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			m := tc.build(t).open(t, false)
			g, err := m.Service("web", config.Resource{})
			if err != nil {
				t.Fatalf("Service: %v", err)
			}
			if g.Tracks() != tc.tracks {
				t.Fatalf("Tracks() = %v, want %v", g.Tracks(), tc.tracks)
			}
			if tc.tracks {
				return // a fake directory has no kernel behind it
			}
			if err := g.Kill(); err != nil {
				t.Errorf("Kill of an empty group: %v", err)
			}
			if err := g.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("Signal of an empty group: %v", err)
			}
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestReadOnlyCgroupfsIsNamed(t *testing.T) {
	f := newFake(t)
	f.mount("/", "memory", "cgroup", "ro,memory")
	f.procCg = "4:memory:/\n"
	_, err := f.open(t, false).Service("db", config.Resource{Memory: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "memory limit: "+filepath.Join(f.root, "memory")+" is mounted read-only") {
		t.Fatalf("error = %v", err)
	}
}

func TestV2LimitsAreWritten(t *testing.T) {
	f := fakeV2(t, "/app", "cpu memory pids")
	// The fake kernel: the service's files exist before Service reuses
	// the directory.
	svc := "app/horust/db.toml/"
	for _, n := range []string{"cpu.max", "memory.max", "pids.max", "cgroup.procs"} {
		f.file(t, svc+n, "max")
	}
	f.file(t, "app/horust/cgroup.subtree_control", "")
	m := f.open(t, false)
	g, err := m.Service("db.toml", config.Resource{CPU: 0.2, Memory: 50 << 20, PidsMax: 20})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu.max": "20000 100000", "memory.max": "52428800", "pids.max": "20",
	} {
		if got := f.read(t, svc+file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := f.read(t, "app/horust/cgroup.subtree_control"); got != "+pids" {
		t.Errorf("last write to the parent's subtree_control = %q, want +pids", got)
	}
	fd, useFD, join := g.StartAttr()
	if !useFD || fd < 0 || len(join) != 0 {
		t.Errorf("StartAttr() = %d, %v, %v; want a cgroup fd and nothing to join", fd, useFD, join)
	}
	// A restart with the limits gone lifts them.
	g2, err := m.Service("db.toml", config.Resource{})
	if err != nil || g2 != g {
		t.Fatalf("reuse: %v, same group %v", err, g2 == g)
	}
	for _, file := range []string{"cpu.max", "memory.max", "pids.max"} {
		if got := f.read(t, svc+file); got != "max" {
			t.Errorf("%s = %q after reuse without limits, want max", file, got)
		}
	}
}

func TestV1LimitsAndJoinFiles(t *testing.T) {
	f := fakeV1(t)
	svc := map[string]string{
		"cpu": "cpu,cpuacct/horust/db.toml", "memory": "memory/user.slice/horust/db.toml",
		"pids": "pids/horust/db.toml",
	}
	f.file(t, svc["cpu"]+"/cpu.cfs_period_us", "")
	f.file(t, svc["cpu"]+"/cpu.cfs_quota_us", "")
	f.file(t, svc["memory"]+"/memory.limit_in_bytes", "")
	f.file(t, svc["pids"]+"/pids.max", "")
	m := f.open(t, false)
	g, err := m.Service("db.toml", config.Resource{CPU: 1.5, Memory: 100 << 20, PidsMax: 64})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		svc["cpu"] + "/cpu.cfs_period_us":        "100000",
		svc["cpu"] + "/cpu.cfs_quota_us":         "150000",
		svc["memory"] + "/memory.limit_in_bytes": "104857600",
		svc["pids"] + "/pids.max":                "64",
	} {
		if got := f.read(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	fd, useFD, join := g.StartAttr()
	if useFD || fd >= 0 {
		t.Errorf("a cgroup fd on pure v1: %d", fd)
	}
	var want []string
	for _, d := range []string{svc["cpu"], svc["memory"], svc["pids"], "freezer/horust/db.toml"} {
		want = append(want, filepath.Join(f.root, d, "cgroup.procs"))
	}
	slices.Sort(join)
	slices.Sort(want)
	if !slices.Equal(join, want) {
		t.Errorf("joinProcs = %v, want %v", join, want)
	}
	if g.unit != filepath.Join(f.root, "freezer/horust/db.toml") {
		t.Errorf("kill unit = %s, want the freezer cgroup", g.unit)
	}
	// Without limits a pure v1 service joins the freezer (its kill unit)
	// and cpuacct (accounting) only.
	g2, err := m.Service("web", config.Resource{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, join = g2.StartAttr()
	want = []string{filepath.Join(f.root, "cpu,cpuacct/horust/web/cgroup.procs"), filepath.Join(f.root, "freezer/horust/web/cgroup.procs")}
	slices.Sort(join)
	if !slices.Equal(join, want) {
		t.Errorf("joinProcs without limits = %v, want %v", join, want)
	}
}

func TestExecArgvRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		procs    []string
		cred     *syscall.Credential
		argv     []string
	}{
		{"no credentials", []string{"/a/cgroup.procs", "/b c/cgroup.procs"}, nil, []string{"sh", "-c", "echo"}},
		{"user with groups", []string{"/a/cgroup.procs"}, &syscall.Credential{Uid: 1000, Gid: 100, Groups: []uint32{4, 27}}, []string{"app"}},
		{"user with no groups", nil, &syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{}}, []string{"app"}},
		{"user keeping groups", nil, &syscall.Credential{Uid: 1, Gid: 2, NoSetGroups: true}, []string{"app"}},
		{"argv that looks like options", []string{"/a"}, nil, []string{"x", "--", "procs=/etc", "uid=0"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			self, args := execArgv(tc.procs, "/bin/prog", tc.argv, tc.cred)
			if self != "/proc/self/exe" || args[1] != ExecArg {
				t.Fatalf("execArgv = %s %v", self, args)
			}
			s, err := parseExecStep(args[2:])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.procs, tc.procs) || s.path != "/bin/prog" || !slices.Equal(s.argv, tc.argv) {
				t.Errorf("parsed %+v", s)
			}
			if (s.cred == nil) != (tc.cred == nil) {
				t.Fatalf("cred = %+v, want %+v", s.cred, tc.cred)
			}
			if c := tc.cred; c != nil {
				if s.cred.Uid != c.Uid || s.cred.Gid != c.Gid || s.cred.NoSetGroups != c.NoSetGroups ||
					(!c.NoSetGroups && !slices.Equal(s.cred.Groups, c.Groups)) {
					t.Errorf("cred = %+v, want %+v", s.cred, c)
				}
			}
		})
	}
	for _, bad := range [][]string{
		{"procs=/a"}, {"--", "/bin/x"}, {"bogus", "--", "/x", "x"}, {"uid=1", "--", "/x", "x"},
		{"uid=x", "gid=1", "--", "/x", "x"}, {"groups=1", "--", "/x", "x"},
	} {
		if _, err := parseExecStep(bad); err == nil {
			t.Errorf("parseExecStep(%q) succeeded", bad)
		}
	}
}

// On v2, horust leaves its own cgroup for a leaf before it enables any
// controller, threaded ones (pids, cpu) included: the kernel accepts those
// while horust is still there and makes its cgroup a thread root, under
// which every later write fails. The real root, exempt from the rule, is
// not left.
func TestV2MovesToItsLeafBeforeEnablingAnyController(t *testing.T) {
	for _, c := range []struct {
		name     string
		root     bool
		resource config.Resource
		ctrl     string
	}{
		{"pids in a container's cgroup", false, config.Resource{PidsMax: 20}, "pids"},
		{"cpu in a container's cgroup", false, config.Resource{CPU: 0.2}, "cpu"},
		{"memory in a container's cgroup", false, config.Resource{Memory: 50 << 20}, "memory"},
		{"pids in the real root", true, config.Resource{PidsMax: 20}, "pids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := fakeV2(t, "/ctr", "cpu memory pids")
			if !c.root {
				f.file(t, "ctr/cgroup.type", "domain\n")
			}
			f.file(t, "ctr/horust/.supervisor/cgroup.procs", "")
			f.file(t, "ctr/horust/cgroup.subtree_control", "")
			for _, n := range []string{"cpu.max", "memory.max", "pids.max"} {
				f.file(t, "ctr/horust/db.toml/"+n, "max")
			}
			m := f.open(t, false)
			if _, err := m.Service("db.toml", c.resource); err != nil {
				t.Fatal(err)
			}
			got := f.read(t, "ctr/horust/.supervisor/cgroup.procs")
			if want := map[bool]string{false: strconv.Itoa(os.Getpid()), true: ""}[c.root]; got != want {
				t.Errorf("the leaf's cgroup.procs = %q, want %q", got, want)
			}
			if got := f.read(t, "ctr/cgroup.subtree_control"); got != "+"+c.ctrl {
				t.Errorf("own subtree_control = %q, want +%s", got, c.ctrl)
			}
			if !c.root && !slices.Equal(m.enabled, []string{c.ctrl}) {
				t.Errorf("enabled = %v, want [%s] (to disable at exit)", m.enabled, c.ctrl)
			}
		})
	}
}

// A read-only bind mount over a writable cgroupfs (as a container engine
// makes it) hides the writable one: only the mount on top counts.
func TestTheMountOnTopCounts(t *testing.T) {
	f := fakeV2(t, "/ctr", "memory")
	f.mount("/", "", "cgroup2", "ro,nsdelegate")
	_, err := f.open(t, false).Service("db", config.Resource{Memory: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "memory limit: "+f.root+" is mounted read-only") {
		t.Fatalf("error = %v", err)
	}
}

// A stale parent that someone else removed meanwhile counts as removed.
func TestRemoveStaleOfATreeAlreadyGone(t *testing.T) {
	if err := removeStale(filepath.Join(t.TempDir(), "horust-1-0123456789abcdef"), false); err != nil {
		t.Fatalf("removeStale of a tree already gone: %v", err)
	}
}
