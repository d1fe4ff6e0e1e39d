package e2e

import (
	"bytes"
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
func concurrentStatus(uds string, n int) []string {
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var out bytes.Buffer
			cmd := exec.Command(horustctlBin, "-u", uds, "status")
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

// At its pids limit (as PID 1 of a container with a pids limit), horust
// must neither die nor stop answering: the Go runtime cannot survive a
// thread it fails to create, so horust makes its threads at start, and a
// service that cannot be forked is a failed start, retried with backoff.
func TestPidsLimitHorustKeepsAnsweringAndRetriesForks(t *testing.T) {
	const (
		limit    = 30
		services = 40
		rounds   = 20
		clients  = 20
	)
	procs := pidsCgroup(t, limit)
	files := map[string]string{}
	for i := range services {
		files[fmt.Sprintf("s%02d.toml", i)] = svc("/bin/sleep 3600", "[restart]", `strategy = "always"`, "attempts = 100000", `backoff = "100ms"`)
	}
	h := startHorust(t, runOpts{cgroupProcs: procs, files: files})
	hpid := h.cmd.Process.Pid
	eventually(t, 30*time.Second, "the cgroup to reach its pids limit", func() bool {
		return h.exited() || pidsCurrent(procs) >= limit
	})
	for round := range rounds {
		failed := concurrentStatus(h.uds, clients)
		if h.exited() {
			t.Fatalf("horust died in round %d (%d threads before):\n%s", round, threads(hpid), h.stderr)
		}
		if len(failed) > 0 {
			t.Fatalf("round %d: %d of %d status calls failed, first: %s", round, len(failed), clients, failed[0])
		}
	}
	t.Logf("horust has %d threads; the cgroup holds %d tasks", threads(hpid), pidsCurrent(procs))

	// Fork failures are failed starts with a delay, not a spin: a service
	// that could not start is waiting for its next try.
	if !strings.Contains(h.stderr.String(), "resource temporarily unavailable") {
		t.Fatalf("no failed start logged with EAGAIN:\n%s", h.stderr)
	}
	waiting := 0
	for i := range services {
		st := h.status(fmt.Sprintf("s%02d.toml", i))
		if st.State != "RUNNING" && st.Restarts > 0 {
			waiting++
		}
	}
	if waiting == 0 {
		t.Fatal("no service is waiting to retry its start")
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(30 * time.Second); code != 0 && code != 101 {
		var ee *exec.ExitError
		_ = errors.As(h.exitErr, &ee)
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
	if st := h.status(name); st.State != "FINISHED" || !strings.Contains(readFile(file), "got TERM") {
		t.Fatalf("state %s, the service wrote %q; want FINISHED after it handled TERM", st.State, readFile(file))
	}
}
