package cgroup

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// helperEnv names the helper program the test binary plays in a child.
const helperEnv = "HORUST_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	MaybeExec()
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(m.Run())
}

func runHelper(name string) int {
	switch name {
	case "cgroup":
		// The first thing the program does: where is it?
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Stdout.Write(b)
	case "alloc":
		// 200 MiB, every page touched.
		b := make([]byte, 200<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("allocated")
	case "spin":
		for start := time.Now(); time.Since(start) < 2*time.Second; {
		}
	case "daemon":
		// Double fork out of the session: the middle process starts a new
		// session, forks the daemon, prints its pid and exits.
		exe, _ := os.Executable()
		env := helperEnviron("daemon-middle")
		pid, err := syscall.ForkExec(exe, []string{exe}, &syscall.ProcAttr{
			Env: env, Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setsid: true},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	case "daemon-middle":
		exe, _ := os.Executable()
		env := helperEnviron("sleep")
		pid, err := syscall.ForkExec(exe, []string{exe}, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(pid)
	case "sleep":
		time.Sleep(time.Hour)
	case "stale-horust":
		// A horust that will be killed: its service leaves a daemon in
		// its cgroup, then it prints the daemon's pid and its own
		// cgroup paths, and waits for its SIGKILL.
		m, err := Open(Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		g, err := m.Service("svc.toml", config.Resource{})
		if err != nil || !g.Tracks() {
			fmt.Fprintln(os.Stderr, "no cgroup:", err)
			return 1
		}
		exe, _ := os.Executable()
		attr := &syscall.SysProcAttr{Setsid: true}
		p, a := g.Prepare(attr, exe, []string{exe})
		r, w, _ := os.Pipe()
		pid, err := syscall.ForkExec(p, a, &syscall.ProcAttr{Env: helperEnviron("daemon"), Files: []uintptr{0, w.Fd(), 2}, Sys: attr})
		w.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		line, _ := bufio.NewReader(r).ReadString('\n')
		fmt.Print(line)
		fmt.Println(strings.Join(g.Paths(), " "))
		time.Sleep(time.Hour)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", strings.TrimSpace(name))
		return 2
	}
	return 0
}

// helperEnviron is this process's environment with the helper set to name
// (replaced, not added: the first of two entries would win).
func helperEnviron(name string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, helperEnv+"=") && !strings.HasPrefix(e, "GORACE=") {
			env = append(env, e)
		}
	}
	// The race runtime waits a second at exit unless told not to.
	return append(env, helperEnv+"="+name, "GORACE=atexit_sleep_ms=0")
}
