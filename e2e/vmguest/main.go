//go:build linux

// Command vmguest runs inside the virtual machine of e2e/vm_test.go, on a
// real cgroup v2 kernel (cgroup_no_v1=all). "vmguest run" runs the
// scenarios of docs/cgroups.md against the horust of the initramfs, each in
// a cgroup made the way a container engine makes one (controllers enabled
// in the root, nothing enabled below the container's cgroup), and prints
// one line per scenario on the serial console:
//
//	VMTEST <name> ok|FAIL <detail>
//
// The other subcommands are the programs the services run.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	root     = "/sys/fs/cgroup"
	horust   = "/horust"
	ctl      = "/horustctl"
	self     = "/vmguest"
	deadline = 60 * time.Second
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: vmguest run|alloc|forkloop|spin|daemon|sleep|pid1check")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "run":
		run()
	case "alloc": // MiB: allocate and touch every page
		n, _ := strconv.Atoi(args[0])
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
	case "forkloop": // FILE: start sleepers until the kernel refuses, say why in FILE
		n := 0
		for {
			_, err := syscall.ForkExec(self, []string{self, "sleep"}, &syscall.ProcAttr{})
			if err != nil {
				_ = os.WriteFile(args[0], fmt.Appendf(nil, "%d %v\n", n, err), 0o644)
				break
			}
			n++
		}
		sleep()
	case "spin": // burn CPU until killed
		for n := uint64(1); n != 0; n++ {
		}
	case "daemon": // FILE: double fork out of the session; the daemon writes its pid to FILE
		_, err := syscall.ForkExec("/bin/setsid", []string{"setsid", self, "daemon-middle", args[0]}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			os.Exit(1)
		}
		sleep()
	case "daemon-middle":
		pid, err := syscall.ForkExec(self, []string{self, "sleep"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			os.Exit(1)
		}
		_ = os.WriteFile(args[0], []byte(strconv.Itoa(pid)), 0o644)
	case "sleep":
		sleep()
	case "exit":
	case "remount-ro": // run by nsenter in a horust's mount namespace
		if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "pid1check":
		pid1check()
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
}

func sleep() {
	for {
		time.Sleep(time.Hour)
	}
}

// report prints one result line.
func report(name string, err error, detail string) {
	if err != nil {
		fmt.Printf("VMTEST %s FAIL %v\n", name, strings.ReplaceAll(err.Error(), "\n", " | "))
		return
	}
	fmt.Printf("VMTEST %s ok %s\n", name, detail)
}

func run() {
	for _, s := range []struct {
		name string
		fn   func() (string, error)
	}{
		{"limits", limits},
		{"two-instances", twoInstances},
		{"cgroupns", cgroupNamespace},
		{"readonly", readOnly},
		{"readonly-ignore", readOnlyIgnore},
		{"readonly-cgroupns", readOnlyNamespace},
		{"readonly-under-horust", readOnlyUnderHorust},
		{"bench-100", bench},
		{"clean-tree", cleanTree},
	} {
		if s.name == "bench-100" && os.Getenv("vmbench") == "" {
			report(s.name, nil, "skipped (vmbench=1 on the kernel command line runs it)")
			continue
		}
		t0 := time.Now()
		detail, err := s.fn()
		report(s.name, err, fmt.Sprintf("%s (%.1f s)", detail, time.Since(t0).Seconds()))
		for _, in := range started {
			in.abort()
		}
		started = nil
	}
}

// started are the instances of the running scenario, stopped for good
// (abort) after it, whatever happened.
var started []*instance

// instance is one horust started in a container-like cgroup.
type instance struct {
	name   string
	cg     string // the container's cgroup directory
	dir    string // services and socket folder
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

type opts struct {
	services map[string]string
	args     []string
	shell    string  // run horust through /bin/sh -c with this prefix
	unshare  uintptr // namespaces for the shell
	reuse    bool    // the container cgroup exists already
}

// start makes /sys/fs/cgroup/<name> (nothing enabled in it) and starts
// horust inside it, as a container engine would.
func start(name string, o opts) (*instance, error) {
	in := &instance{name: name, cg: filepath.Join(root, name), dir: filepath.Join("/tmp", name+fmt.Sprint(time.Now().UnixNano())), done: make(chan error, 1)}
	if !o.reuse {
		if err := os.Mkdir(in.cg, 0o755); err != nil {
			return nil, err
		}
	}
	svcDir := filepath.Join(in.dir, "services")
	if err := os.MkdirAll(svcDir, 0o755); err != nil {
		return nil, err
	}
	for n, body := range o.services {
		if err := os.WriteFile(filepath.Join(svcDir, n), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Open(in.cg, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	argv := append([]string{horust, "--services-path", svcDir, "--uds-folder-path", in.dir}, o.args...)
	if o.shell != "" {
		argv = []string{"/bin/sh", "-c", o.shell + " && exec " + strings.Join(argv, " ")}
	}
	in.cmd = exec.Command(argv[0], argv[1:]...)
	in.cmd.Env = []string{"PATH=/bin", "HORUST_LOG=warn"}
	in.cmd.Stderr = &in.stderr
	in.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Unshareflags: o.unshare, Setsid: true}
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start horust in %s: %w", in.cg, err)
	}
	go func() { in.done <- in.cmd.Wait(); close(in.done) }()
	started = append(started, in)
	return in, nil
}

// abort kills what a failed scenario left running and removes the
// container's cgroup, so that the next scenarios start clean.
func (in *instance) abort() {
	_ = in.cmd.Process.Kill()
	<-in.done // closed once horust exited
	_ = os.WriteFile(filepath.Join(in.cg, "cgroup.kill"), []byte("1"), 0)
	var dirs []string
	_ = filepath.WalkDir(in.cg, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		// Killed processes take a moment to leave their cgroup.
		for end := time.Now().Add(5 * time.Second); unix.Rmdir(d) == unix.EBUSY && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// ctl runs horustctl against the instance.
func (in *instance) ctl(args ...string) (string, error) {
	out, err := exec.Command(ctl, append([]string{"-u", in.dir}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("horustctl %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

type status struct {
	State  string `json:"state"`
	PID    int    `json:"pid"`
	Reason string `json:"reason"`
}

func (in *instance) status(name string) (status, error) {
	var st status
	out, err := in.ctl("--json", "status", name)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("status %s: %w: %s", name, err, out)
	}
	return st, nil
}

// waitState waits until a service is in state.
func (in *instance) waitState(name, state string) (status, error) {
	var st status
	err := eventually(name+" "+state, func() bool {
		var err error
		st, err = in.status(name)
		return err == nil && st.State == state
	})
	if err != nil {
		return st, fmt.Errorf("%w (last %+v; horust said: %s)", err, st, in.stderr.String())
	}
	return st, nil
}

// stop sends SIGTERM and waits for horust to exit; then the container's
// cgroup must hold no cgroup and have nothing enabled.
func (in *instance) stop() error {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		if err != nil {
			return fmt.Errorf("horust exited: %v: %s", err, in.stderr.String())
		}
	case <-time.After(deadline):
		_ = in.cmd.Process.Kill()
		return errors.New("horust did not exit after SIGTERM")
	}
	return nil
}

// leftovers lists what is left in the container's cgroup after its horust
// exited: child cgroups and enabled controllers.
func (in *instance) leftovers() []string {
	var left []string
	entries, _ := os.ReadDir(in.cg)
	for _, e := range entries {
		if e.IsDir() {
			left = append(left, e.Name())
		}
	}
	if sc := strings.TrimSpace(read(filepath.Join(in.cg, "cgroup.subtree_control"))); sc != "" {
		left = append(left, "subtree_control: "+sc)
	}
	if t := strings.TrimSpace(read(filepath.Join(in.cg, "cgroup.type"))); t != "domain" {
		left = append(left, "type: "+t)
	}
	return left
}

// finish stops the instance, checks that nothing is left and removes the
// container's cgroup.
func (in *instance) finish() error {
	if err := in.stop(); err != nil {
		return err
	}
	if left := in.leftovers(); len(left) > 0 {
		return fmt.Errorf("left in %s after horust exited: %v", in.cg, left)
	}
	if err := unix.Rmdir(in.cg); err != nil {
		return fmt.Errorf("remove %s: %w", in.cg, err)
	}
	return nil
}

// serviceDir is the v2 cgroup of a service of in (found by its name under
// the instance's parent).
func (in *instance) serviceDir(name string) string {
	m, _ := filepath.Glob(filepath.Join(in.cg, "horust-*", name))
	if len(m) != 1 {
		return filepath.Join(in.cg, "<no single parent>", name)
	}
	return m[0]
}

func eventually(what string, cond func() bool) error {
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("timed out waiting for %s", what)
}

func read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func key(path, k string) int64 {
	for line := range strings.SplitSeq(read(path), "\n") {
		if v, ok := strings.CutPrefix(line, k+" "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

func pidGone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// limits: memory (OOM explained), pids-max, cpu (measured from the
// cgroup's own cpu.stat), several limits on one service, and the cgroup as
// the unit (a double-forked daemon dies with its service), all in one
// horust, as in the report that found the threaded-controller bug.
func limits() (string, error) {
	in, err := start("c-limits", opts{services: map[string]string{
		"oom.toml":      "command = \"/vmguest alloc 100\"\n[resource-limit]\nmemory = \"50 MiB\"\n",
		"forkloop.toml": "command = \"/vmguest forkloop /tmp/pids.out\"\n[resource-limit]\npids-max = 20\n",
		"busy.toml":     "command = \"/vmguest spin\"\n[resource-limit]\ncpu = 0.2\n",
		"multi.toml":    "command = \"/vmguest sleep\"\n[resource-limit]\ncpu = 0.5\nmemory = \"64 MiB\"\npids-max = 50\n",
		"daemon.toml":   "command = \"/vmguest daemon /tmp/daemon.pid\"\n[termination]\nwait = \"1s\"\n",
	}})
	if err != nil {
		return "", err
	}
	var errs []error
	st, err := in.waitState("oom.toml", "FINISHEDFAILED")
	if err == nil && !strings.Contains(st.Reason, "killed: out of memory (limit 50 MiB)") {
		err = fmt.Errorf("oom.toml reason %q", st.Reason)
	}
	errs = append(errs, err)

	var pidsOut string
	err = eventually("pids.out", func() bool { pidsOut = read("/tmp/pids.out"); return pidsOut != "" })
	if err == nil && !strings.Contains(pidsOut, "resource temporarily unavailable") {
		err = fmt.Errorf("the fork loop stopped with %q", pidsOut)
	}
	pdir := in.serviceDir("forkloop.toml")
	if cur := strings.TrimSpace(read(filepath.Join(pdir, "pids.current"))); err == nil && (cur == "" || atoi(cur) > 20) {
		err = fmt.Errorf("pids.current %q under pids-max = 20", cur)
	}
	errs = append(errs, err)

	cdir := in.serviceDir("busy.toml")
	_, err = in.waitState("busy.toml", "RUNNING")
	var share float64
	if err == nil {
		u0, t0 := key(filepath.Join(cdir, "cpu.stat"), "usage_usec"), time.Now()
		time.Sleep(2 * time.Second) // a measurement window, not a synchronisation
		u1, t1 := key(filepath.Join(cdir, "cpu.stat"), "usage_usec"), time.Now()
		share = float64(u1-u0) / float64(t1.Sub(t0).Microseconds())
		if u0 < 0 || share < 0.1 || share > 0.3 || key(filepath.Join(cdir, "cpu.stat"), "nr_throttled") <= 0 {
			err = fmt.Errorf("cpu = 0.2: %.2f of a CPU, cpu.stat %q", share, read(filepath.Join(cdir, "cpu.stat")))
		}
	}
	errs = append(errs, err)

	mdir := in.serviceDir("multi.toml")
	_, err = in.waitState("multi.toml", "RUNNING")
	for f, want := range map[string]string{"cpu.max": "50000 100000", "memory.max": "67108864", "pids.max": "50"} {
		if got := strings.TrimSpace(read(filepath.Join(mdir, f))); err == nil && got != want {
			err = fmt.Errorf("multi.toml %s = %q, want %q", f, got, want)
		}
	}
	errs = append(errs, err)

	// Horust left its own cgroup for a leaf; the container stays a domain.
	hc := read(fmt.Sprintf("/proc/%d/cgroup", in.cmd.Process.Pid))
	if !strings.Contains(hc, "/c-limits/horust-") || !strings.HasSuffix(strings.TrimSpace(hc), "/.supervisor") {
		errs = append(errs, fmt.Errorf("horust is in %q, want its leaf", hc))
	}
	if t := strings.TrimSpace(read(filepath.Join(in.cg, "cgroup.type"))); t != "domain" {
		errs = append(errs, fmt.Errorf("the container's cgroup became %q", t))
	}

	var daemon int
	err = eventually("the daemon's pid", func() bool { daemon = atoi(read("/tmp/daemon.pid")); return daemon > 0 })
	if err == nil {
		if !strings.Contains(read(fmt.Sprintf("/proc/%d/cgroup", daemon)), "/daemon.toml") {
			err = fmt.Errorf("the daemon is in %q", read(fmt.Sprintf("/proc/%d/cgroup", daemon)))
		} else if _, err = in.ctl("stop", "daemon.toml"); err == nil {
			err = eventually("the daemon to die with its service", func() bool { return pidGone(daemon) })
		}
	}
	errs = append(errs, err)
	errs = append(errs, in.finish())
	return fmt.Sprintf("oom explained, fork loop stopped at pids-max, cpu %.2f of a CPU, three limits on one service, daemon killed with its cgroup", share), errors.Join(errs...)
}

// cleanTree: after every scenario, the cgroup tree holds only the
// runner's own cgroup.
func cleanTree() (string, error) {
	var left []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root && p != filepath.Join(root, "runner") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		return "", fmt.Errorf("left in the cgroup tree: %v", left)
	}
	return "only the runner's cgroup", nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

// twoInstances: two horusts in one cgroup, each with a service of the same
// name: separate parents, and stopping one leaves the other's service.
func twoInstances() (string, error) {
	svc := map[string]string{"same.toml": "command = \"/vmguest sleep\"\n"}
	a, err := start("c-pair", opts{services: svc})
	if err != nil {
		return "", err
	}
	b, err := start("c-pair", opts{services: svc, reuse: true})
	if err != nil {
		return "", err
	}
	sa, err := a.waitState("same.toml", "RUNNING")
	if err != nil {
		return "", err
	}
	sb, err := b.waitState("same.toml", "RUNNING")
	if err != nil {
		return "", err
	}
	ca, cb := read(fmt.Sprintf("/proc/%d/cgroup", sa.PID)), read(fmt.Sprintf("/proc/%d/cgroup", sb.PID))
	if ca == cb {
		return "", fmt.Errorf("both services are in %q", ca)
	}
	if err := a.stop(); err != nil {
		return "", err
	}
	if st, err := b.status("same.toml"); err != nil || st.State != "RUNNING" || st.PID != sb.PID || pidGone(sb.PID) {
		return "", fmt.Errorf("stopping one horust touched the other's service: %+v %v", st, err)
	}
	return strings.TrimSpace(ca) + " and " + strings.TrimSpace(cb), b.finish()
}

// cgroupNamespace: horust in a cgroup namespace whose root is its own
// cgroup (Docker's default on v2), cgroupfs mounted from inside it.
func cgroupNamespace() (string, error) {
	in, err := start("c-ns", opts{
		services: map[string]string{
			"mem.toml":   "command = \"/vmguest sleep\"\n[resource-limit]\nmemory = \"32 MiB\"\npids-max = 30\n",
			"plain.toml": "command = \"/vmguest sleep\"\n",
		},
		shell:   "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup",
		unshare: syscall.CLONE_NEWNS | syscall.CLONE_NEWCGROUP,
	})
	if err != nil {
		return "", err
	}
	var errs []error
	for _, n := range []string{"mem.toml", "plain.toml"} {
		_, err := in.waitState(n, "RUNNING")
		errs = append(errs, err)
	}
	if got := strings.TrimSpace(read(filepath.Join(in.serviceDir("mem.toml"), "memory.max"))); got != "33554432" {
		errs = append(errs, fmt.Errorf("memory.max = %q", got))
	}
	if hc := read(fmt.Sprintf("/proc/%d/cgroup", in.cmd.Process.Pid)); !strings.Contains(hc, "/c-ns/horust-") {
		errs = append(errs, fmt.Errorf("horust is in %q, want its leaf under the namespace's root", hc))
	}
	errs = append(errs, in.finish())
	return "limits applied inside the namespace", errors.Join(errs...)
}

// readOnlyCase runs horust with the cgroupfs read-only (Docker's default
// for an unprivileged container): a service without limits runs as a
// process group with no error; one with limits fails clearly, or runs
// with --ignore-resource-errors.
func readOnlyCase(name, shell string, unshare uintptr, ignore bool) (string, error) {
	o := opts{
		services: map[string]string{
			"plain.toml":   "command = \"/vmguest sleep\"\n",
			"limited.toml": "command = \"/vmguest sleep\"\n[resource-limit]\nmemory = \"32 MiB\"\n",
		},
		shell:   shell,
		unshare: unshare,
	}
	if ignore {
		o.args = []string{"--ignore-resource-errors"}
	}
	in, err := start(name, o)
	if err != nil {
		return "", err
	}
	var errs []error
	plain, err := in.waitState("plain.toml", "RUNNING")
	errs = append(errs, err)
	if err == nil {
		if cg := read(fmt.Sprintf("/proc/%d/cgroup", plain.PID)); cg != read(fmt.Sprintf("/proc/%d/cgroup", in.cmd.Process.Pid)) {
			errs = append(errs, fmt.Errorf("plain.toml is in a cgroup of its own: %q", cg))
		}
	}
	var detail string
	if ignore {
		_, err = in.waitState("limited.toml", "RUNNING")
		errs = append(errs, err)
		detail = "limits ignored with a warning"
	} else {
		st, err := in.waitState("limited.toml", "FINISHEDFAILED")
		if err == nil && !(strings.Contains(st.Reason, "memory limit") && strings.Contains(st.Reason, "read-only")) {
			err = fmt.Errorf("limited.toml reason %q", st.Reason)
		}
		errs = append(errs, err)
		detail = st.Reason
	}
	if strings.Contains(in.stderr.String(), "plain.toml") {
		errs = append(errs, fmt.Errorf("horust logged about the service without limits: %s", in.stderr.String()))
	}
	errs = append(errs, in.finish())
	return detail, errors.Join(errs...)
}

const roBind = "mount -o bind /sys/fs/cgroup /sys/fs/cgroup && mount -o remount,bind,ro /sys/fs/cgroup"

func readOnly() (string, error) {
	return readOnlyCase("c-ro", roBind, syscall.CLONE_NEWNS, false)
}

func readOnlyIgnore() (string, error) {
	return readOnlyCase("c-roi", roBind, syscall.CLONE_NEWNS, true)
}

func readOnlyNamespace() (string, error) {
	return readOnlyCase("c-rons", "umount -l /sys/fs/cgroup && mount -t cgroup2 -o ro none /sys/fs/cgroup", syscall.CLONE_NEWNS|syscall.CLONE_NEWCGROUP, false)
}

// readOnlyUnderHorust: an attempt to make the cgroupfs read-only under a
// running horust. The kernel refuses it (EBUSY) while horust holds its
// services' cgroup.kill open for writing, which it does so that a stop
// needs no free descriptor; the services keep being supervised (restarts
// work) and a stop completes and leaves nothing.
func readOnlyUnderHorust() (string, error) {
	svcs := map[string]string{
		"plain.toml":   "command = \"/vmguest sleep\"\n",
		"limited.toml": "command = \"/vmguest sleep\"\n[resource-limit]\nmemory = \"32 MiB\"\n",
	}
	in, err := start("c-late", opts{services: svcs, shell: "mount -o bind /sys/fs/cgroup /sys/fs/cgroup", unshare: syscall.CLONE_NEWNS})
	if err != nil {
		return "", err
	}
	for _, n := range []string{"plain.toml", "limited.toml"} {
		if _, err := in.waitState(n, "RUNNING"); err != nil {
			return "", err
		}
	}
	out, err := exec.Command("/bin/nsenter", "-t", strconv.Itoa(in.cmd.Process.Pid), "-m", self, "remount-ro").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "busy") {
		return "", fmt.Errorf("remount read-only under running services: %v %s, want EBUSY", err, out)
	}
	var errs []error
	for _, n := range []string{"plain.toml", "limited.toml"} {
		before, _ := in.status(n)
		if _, err := in.ctl("restart", n); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, eventually(n+" to run again", func() bool {
			st, err := in.status(n)
			return err == nil && st.State == "RUNNING" && st.PID != before.PID
		}))
	}
	errs = append(errs, in.finish())
	return "remount refused (EBUSY) while services run; restarts and the stop worked", errors.Join(errs...)
}

// bench: the time from horust's start to 100 services RUNNING, with a
// memory limit each and without limits, side by side (best of three).
func bench() (string, error) {
	once := func(i int, limit bool) (time.Duration, error) {
		svcs := map[string]string{}
		var names []string
		for j := range 100 {
			n := fmt.Sprintf("s%03d.toml", j)
			names = append(names, n)
			svcs[n] = "command = \"/vmguest sleep\"\n"
			if limit {
				svcs[n] += "[resource-limit]\nmemory = \"64 MiB\"\n"
			}
		}
		t0 := time.Now()
		in, err := start(fmt.Sprintf("c-bench%d", i), opts{services: svcs})
		if err != nil {
			return 0, err
		}
		err = eventually("100 services", func() bool {
			_, err := in.ctl(append([]string{"wait", "--timeout", "60s"}, names...)...)
			return err == nil
		})
		d := time.Since(t0)
		return d, errors.Join(err, in.finish())
	}
	best := map[bool]time.Duration{}
	for i := range 6 {
		limit := i%2 == 1
		d, err := once(i, limit)
		if err != nil {
			return "", err
		}
		if best[limit] == 0 || d < best[limit] {
			best[limit] = d
		}
	}
	// The floor, without horust: the same program started 100 times, one
	// after the other (to its exit), each in a new cgroup of its own, with
	// and without the memory controller there and memory.max set.
	floor := func(memory bool) (time.Duration, error) {
		dir := filepath.Join(root, "c-floor")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return 0, err
		}
		defer unix.Rmdir(dir)
		if memory {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
				return 0, err
			}
		}
		t0 := time.Now()
		for j := range 100 {
			cg := filepath.Join(dir, strconv.Itoa(j))
			if err := os.Mkdir(cg, 0o755); err != nil {
				return 0, err
			}
			if memory {
				if err := os.WriteFile(filepath.Join(cg, "memory.max"), []byte("67108864"), 0); err != nil {
					return 0, err
				}
			}
			fd, err := unix.Open(cg, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return 0, err
			}
			cmd := exec.Command(self, "exit")
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
			err = cmd.Run()
			unix.Close(fd)
			if err != nil {
				return 0, err
			}
		}
		d := time.Since(t0)
		for j := range 100 {
			_ = unix.Rmdir(filepath.Join(dir, strconv.Itoa(j)))
		}
		return d, nil
	}
	low := map[bool]time.Duration{}
	for i := range 6 {
		memory := i%2 == 1
		d, err := floor(memory)
		if err != nil {
			return "", err
		}
		if low[memory] == 0 || d < low[memory] {
			low[memory] = d
		}
	}
	return fmt.Sprintf("horust: plain=%dms memory-limit=%dms ratio=%.2f; floor (100 starts to exit, no horust): plain=%dms memory=%dms ratio=%.2f",
		best[false].Milliseconds(), best[true].Milliseconds(), float64(best[true])/float64(best[false]),
		low[false].Milliseconds(), low[true].Milliseconds(), float64(low[true])/float64(low[false])), nil
}

// pid1check runs as a service of horust, PID 1 of the VM: it checks that
// its cgroup holds its limits, then exits, and horust with it.
func pid1check() {
	own := strings.TrimSpace(read("/proc/self/cgroup"))
	h := strings.TrimSpace(read("/proc/1/cgroup"))
	dir := filepath.Join(root, strings.TrimPrefix(own, "0::"))
	var err error
	switch {
	case os.Getppid() != 1:
		err = fmt.Errorf("parent %d, want horust as PID 1", os.Getppid())
	case !strings.HasPrefix(own, "0::/pid1/horust-1-") || !strings.HasSuffix(own, "/check.toml"):
		err = fmt.Errorf("in cgroup %q", own)
	case !strings.HasSuffix(h, "/.supervisor"):
		err = fmt.Errorf("horust is in %q, want its leaf", h)
	case strings.TrimSpace(read(filepath.Join(dir, "memory.max"))) != "67108864" || strings.TrimSpace(read(filepath.Join(dir, "pids.max"))) != "64":
		err = fmt.Errorf("limits in %s: memory.max %q pids.max %q", dir, read(filepath.Join(dir, "memory.max")), read(filepath.Join(dir, "pids.max")))
	}
	report("pid1", err, own)
	fmt.Println("VMTEST end")
}
