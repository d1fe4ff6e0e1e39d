//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// pidsV1 is where the cgroup v1 pids controller is mounted on most systems.
const pidsV1 = "/sys/fs/cgroup/pids"

// pidsCgroup makes a v1 pids cgroup with pids.max = max for the test and
// returns its cgroup.procs; it skips without root or a writable v1 pids
// controller. At cleanup (after horust's, which is registered later), what
// is left in it is killed and the cgroup removed.
func pidsCgroup(t *testing.T, max int) string {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat(filepath.Join(pidsV1, "pids.max")); err != nil {
		// The root of the hierarchy has no pids.max: check the mount.
		if _, err := os.Stat(filepath.Join(pidsV1, "cgroup.procs")); err != nil {
			t.Skipf("no cgroup v1 pids controller at %s", pidsV1)
		}
	}
	dir := filepath.Join(pidsV1, fmt.Sprintf("horust-e2e-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a pids cgroup: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(max)), 0o644); err != nil {
		os.Remove(dir)
		t.Skipf("cannot set pids.max: %v", err)
	}
	t.Cleanup(func() { removeCgroupTree(t, dir) })
	return filepath.Join(dir, "cgroup.procs")
}

// removeCgroupTree kills every process in the cgroup dir and its children
// and removes them, deepest first.
func removeCgroupTree(t *testing.T, dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	for _, d := range dirs {
		eventually(t, 10*time.Second, "an empty cgroup "+d, func() bool {
			pids := strings.Fields(readFile(filepath.Join(d, "cgroup.procs")))
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return len(pids) == 0
		})
		if err := os.Remove(d); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	}
}

// pidsCurrent reads the number of tasks in the pids cgroup of procs.
func pidsCurrent(procs string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(filepath.Dir(procs), "pids.current"))))
	return n
}

// threads returns the number of threads of a process.
func threads(pid int) int {
	for _, l := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// concurrentStatus runs n `horustctl status` at once and returns the
// failures.
func concurrentStatus(ctl []string, uds string, n int) []string {
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var out bytes.Buffer
			cmd := ctlCommand(ctl, "-u", uds, "status")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%v: %s", err, out.String()))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// ctlCommand is horustctl with args, run through the command prefix as
// (a setpriv that makes it horust's user: horustctl trusts only a socket of
// root or its own user).
func ctlCommand(as []string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), as...), horustctlBin), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// joinCgroup is a runOpts.wrap that puts horust into the cgroup of the
// cgroup.procs file procs before it runs.
func joinCgroup(procs string) []string {
	return []string{"/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, procs}
}

// nprocUser returns a runOpts.wrap that runs horust as a uid of its own
// (no other process has it) with RLIMIT_NPROC = max, and folders that uid
// can use for services and the socket; it skips without root or the
// util-linux tools.
func nprocUser(t *testing.T, max int) (wrap, ctlAs []string, services, uds string) {
	t.Helper()
	requireRoot(t)
	for _, tool := range []string{"prlimit", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (util-linux)", tool)
		}
	}
	uid := strconv.Itoa(40000 + os.Getpid()%20000)
	dir, err := os.MkdirTemp("", "horust-nproc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	services, uds = filepath.Join(dir, "services"), filepath.Join(dir, "uds")
	for _, d := range []string{dir, services, uds} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// horustctl runs as the same uid without the limit: RLIMIT_NPROC is
	// checked against the forking process's own limit.
	as := []string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--"}
	return append([]string{"prlimit", fmt.Sprintf("--nproc=%d:%d", max, max)}, as...), as, services, uds
}

// At its pids limit (as PID 1 of a container with a pids limit), horust
// must neither die nor stop answering: the Go runtime cannot survive a
// thread it fails to create, so horust makes its threads at start, and a
// service that cannot be forked is a failed start, retried with backoff.
// The limit is a v1 pids cgroup around horust, or RLIMIT_NPROC of a uid of
// its own (the case CI can run).
func TestPidsLimitHorustKeepsAnsweringAndRetriesForks(t *testing.T) {
	const (
		limit    = 30
		services = 40
		rounds   = 20
		clients  = 20
	)
	files := map[string]string{}
	for i := range services {
		files[fmt.Sprintf("s%02d.toml", i)] = svc("/bin/sleep 3600", "[restart]", `strategy = "always"`, "attempts = 100000", `backoff = "100ms"`)
	}
	t.Run("pids cgroup", func(t *testing.T) {
		procs := pidsCgroup(t, limit)
		h := startHorust(t, runOpts{wrap: joinCgroup(procs), files: files})
		atLimit := func() bool { return pidsCurrent(procs) >= limit }
		keepsAnswering(t, h, nil, atLimit, rounds, clients, services)
	})
	t.Run("RLIMIT_NPROC", func(t *testing.T) {
		wrap, ctlAs, dir, uds := nprocUser(t, limit)
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		h := startHorust(t, runOpts{wrap: wrap, noArgs: true, args: []string{"--services-path", dir, "--uds-folder-path", uds}})
		h.uds = uds
		// At the limit once some service's fork failed.
		atLimit := func() bool { return strings.Contains(h.stderr.String(), "resource temporarily unavailable") }
		keepsAnswering(t, h, ctlAs, atLimit, rounds, clients, services)
	})
}

// keepsAnswering waits until horust is at its limit, then checks that
// rounds of concurrent status calls are all answered, that services that
// could not be forked wait for their next try, and that horust stops well.
// horustctl runs through the command prefix ctlAs.
func keepsAnswering(t *testing.T, h *horust, ctlAs []string, atLimit func() bool, rounds, clients, services int) {
	t.Helper()
	hpid := h.cmd.Process.Pid
	eventually(t, 30*time.Second, "horust to reach its limit", func() bool { return h.exited() || atLimit() })
	for round := range rounds {
		failed := concurrentStatus(ctlAs, h.uds, clients)
		if h.exited() {
			t.Fatalf("horust died in round %d:\n%s", round, h.stderr)
		}
		if len(failed) > 0 {
			t.Fatalf("round %d: %d of %d status calls failed, first: %s", round, len(failed), clients, failed[0])
		}
	}
	t.Logf("horust has %d threads", threads(hpid))

	// Fork failures are failed starts with a delay, not a spin: a service
	// that could not start is waiting for its next try.
	if !strings.Contains(h.stderr.String(), "resource temporarily unavailable") {
		t.Fatalf("no failed start logged with EAGAIN:\n%s", h.stderr)
	}
	out, err := ctlCommand(ctlAs, "-u", h.uds, "--json", "status").Output()
	var reply control.ServicesReply
	if err == nil {
		err = json.Unmarshal(out, &reply)
	}
	if err != nil || len(reply.Services) != services {
		t.Fatalf("horustctl --json status: %v, %d services:\n%s", err, len(reply.Services), out)
	}
	waiting := 0
	for _, st := range reply.Services {
		if st.State != status.Running && st.Restarts > 0 {
			waiting++
		}
	}
	if waiting == 0 {
		t.Fatal("no service is waiting to retry its start")
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(30 * time.Second); code != 0 && code != 101 {
		t.Fatalf("exit code %d:\n%s", code, h.stderr)
	}
}

// procState returns the state letter of a process (R, S, T, Z, ...).
func procState(pid int) string {
	stat := readFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return ""
	}
	return stat[i+2 : i+3]
}

// A SIGSTOPped service that handles its termination signal stops
// gracefully within its wait: horust continues it after the signal, instead
// of leaving the signal pending until SIGKILL.
func TestStoppedServiceStopsWithinItsWait(t *testing.T) {
	const name = "stopped.toml"
	file := filepath.Join(t.TempDir(), "trap")
	h := startHorust(t, runOpts{files: map[string]string{
		name: svc(role("trap", "TERM", "0", "0s", file), "[termination]", `wait = "60s"`),
		// Keeps horust running once the other is stopped.
		"other.toml": svc(role("sleep")),
	}})
	h.waitState(name, 20*time.Second, "RUNNING")
	pid := readPid(t, file)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the service to be stopped", func() bool { return procState(pid) == "T" })
	if _, stderr, code := h.ctl("stop", name); code != 0 {
		t.Fatalf("horustctl stop: exit %d: %s", code, stderr)
	}
	// Well before the 60 s wait: without SIGCONT only SIGKILL ends it.
	h.waitState(name, 30*time.Second, "FINISHED", "FINISHEDFAILED")
	if st := h.status(name); st.State != status.Finished || !strings.Contains(readFile(file), "got TERM") {
		t.Fatalf("state %s, the service wrote %q; want FINISHED after it handled TERM", st.State, readFile(file))
	}
}

// smallTmpfs mounts a tmpfs of the given size for the test, or skips.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes into path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// A full disk under a rotated output file: the service keeps running, the
// bytes horust cannot write are counted as dropped, and writing resumes by
// itself when space comes back.
func TestOutputDiskFullAndBack(t *testing.T) {
	const name = "writer.toml"
	disk := smallTmpfs(t, "512k")
	h := startHorust(t, runOpts{files: map[string]string{
		name: svc(`/bin/sh -c 'i=0; while :; do i=$$((i+1)); echo "line $$i of the writer"; /bin/sleep 0.005; done'`,
			fmt.Sprintf("stdout = %q", filepath.Join(disk, "out.log")), `stdout-rotate-size = "64KiB"`),
		"other.toml": svc(role("sleep")),
	}})
	h.waitState(name, 20*time.Second, "RUNNING")
	pid := h.status(name).PID
	eventually(t, 20*time.Second, "some output in the file", func() bool { return h.status(name).OutputCopied > 1000 })

	fill(t, filepath.Join(disk, "filler"))
	eventually(t, 30*time.Second, "output to be dropped", func() bool { return h.status(name).OutputDropped > 1000 })
	full := h.status(name)
	if full.State != status.Running || full.PID != pid {
		t.Fatalf("on a full disk the service is %s (pid %d, was %d)", full.State, full.PID, pid)
	}

	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "writing to resume", func() bool { return h.status(name).OutputCopied > full.OutputCopied+4096 })
	back := h.status(name)
	if back.State != status.Running || back.PID != pid {
		t.Fatalf("after the disk had room again the service is %s (pid %d, was %d)", back.State, back.PID, pid)
	}
	t.Logf("full: %d copied, %d dropped; back: %d copied, %d dropped", full.OutputCopied, full.OutputDropped, back.OutputCopied, back.OutputDropped)
	if !strings.Contains(h.stderr.String(), "service output dropped") {
		t.Fatalf("the drop is not logged:\n%s", h.stderr)
	}
}

// Configuration input that is not a regular file stops horust at once with
// the path named: a FIFO does not block it, /dev/zero is not read.
func TestConfigInputThatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "f.toml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    runOpts
		want string
	}{
		{"a FIFO beside a service file", runOpts{files: map[string]string{"a.toml": svc(role("sleep"))}, args: []string{"--services-path", dir}},
			fifo + ": cannot read: it is a FIFO"},
		{"--config-path /dev/zero", runOpts{files: map[string]string{"a.toml": svc(role("sleep"))}, args: []string{"--config-path", "/dev/zero"}},
			"/dev/zero: cannot read: it is a character device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHorust(t, tt.o)
			if code := h.wait(20 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(h.stderr.String(), tt.want) {
				t.Fatalf("stderr %q, want %q", h.stderr, tt.want)
			}
		})
	}
}
