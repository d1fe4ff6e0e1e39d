package cgroup

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spinEnv makes the re-exec step of the test binary start a goroutine that
// never blocks, so that with GOMAXPROCS=1 a slow system call of the step
// loses its P to it.
const spinEnv = "HORUST_CGROUP_TEST_SPIN"

func init() {
	// Inits run on the main thread: these two read and act on its state.
	step := len(os.Args) > 1 && os.Args[1] == ExecArg
	if step && os.Getenv(spinEnv) != "" {
		go func() {
			for {
				_ = time.Now()
			}
		}()
	}
	if !step && os.Getenv(helperEnv) == "pdeath" {
		var sig int32
		_, _, _ = syscall.Syscall(syscall.SYS_PRCTL, unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0)
		fmt.Println(sig)
		os.Exit(0)
	}
}

// TestExecStepKeepsTheParentDeathSignal: the step's first system call, the
// write to cgroup.procs, blocks (here on a FIFO nobody reads yet) while
// another goroutine takes the only P. When it returns, the step must still
// run on the main thread, the only one with the parent-death signal, and
// pass that signal on to the service through exec.
func TestExecStepKeepsTheParentDeathSignal(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "cgroup.procs")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for round := range 8 {
		cmd := exec.Command(exe, ExecArg, "procs="+fifo, "--", exe, exe)
		cmd.Env = append(helperEnviron("pdeath"), "GOMAXPROCS=1", spinEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		// The main thread waits in the open of the FIFO, and another
		// thread runs the spinning goroutine on the only P.
		// Seen twice in a row: a thread of the runtime may run for a moment.
		blocked := func() bool { return inSyscall(pid, pid, unix.SYS_OPENAT) && anotherThreadRuns(pid) }
		deadline := time.Now().Add(10 * time.Second)
		for seen := 0; seen < 2; {
			if blocked() {
				seen++
				continue
			}
			seen = 0
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: the step never blocked in the open of %s with its P taken", round, fifo)
			}
			time.Sleep(time.Millisecond)
		}
		r, err := os.Open(fifo)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(r)
		r.Close()
		got, _ := io.ReadAll(out)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if s := strings.TrimSpace(string(got)); s != strconv.Itoa(int(syscall.SIGKILL)) {
			t.Fatalf("round %d: the service's parent-death signal is %q, want %d", round, s, syscall.SIGKILL)
		}
	}
}

// inSyscall reports whether thread tid of pid is blocked in system call nr.
func inSyscall(pid, tid int, nr int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
	return err == nil && strings.HasPrefix(string(b), strconv.Itoa(nr)+" ")
}

// anotherThreadRuns reports whether a thread of pid other than the main one
// is running.
func anotherThreadRuns(pid int) bool {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		if task.Name() == strconv.Itoa(pid) {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && s[i+2] == 'R' {
			return true
		}
	}
	return false
}

// TestCloneIntoCgroup: the probe says yes on Linux 5.7 or later when no
// seccomp filter is in the way (TestCgroupWithoutClone3 in e2e covers the
// no).
func TestCloneIntoCgroup(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	want := (major > 5 || major == 5 && minor >= 7) && strings.Contains(string(status), "\nSeccomp:\t0\n")
	for range 3 {
		if got := cloneIntoCgroup(); got != want {
			t.Fatalf("cloneIntoCgroup() = %v on Linux %d.%d (seccomp: %v), want %v", got, major, minor, !strings.Contains(string(status), "\nSeccomp:\t0\n"), want)
		}
	}
}
