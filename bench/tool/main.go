// Command hbench runs horust's side-by-side benchmarks: every scenario for
// every supervisor that can express it, several repetitions, and writes raw
// result lines, a markdown report and a PNG plot.
//
//	hbench run     -out DIR            run the matrix (knobs from the environment, see knobs.go)
//	hbench report  -out DIR -md FILE   medians, ratios and targets from DIR/raw.txt into FILE
//
// Helpers it runs as child processes of itself:
//
//	hbench restart-floor -dur D -- ARGV   fork/exec/wait ARGV in a loop (the restart floor)
//	hbench oneshot-loop -n N -- ARGV      run ARGV N times, print the median wall time
//	hbench oneshot-rounds -n N CMD...     run each CMD once per round, N rounds: medians and ratios
//	hbench minit -- ARGV                  the smallest PID 1: start ARGV, reap everything
//	hbench writer -bytes N ...            write N bytes of 100-byte lines (log throughput)
//
// It makes itself a child subreaper, so whatever a supervisor leaves behind
// comes back to it; it kills what it started by pid, never by name.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usageExit()
	}
	sub, args := os.Args[1], os.Args[2:]
	var err error
	switch sub {
	case "run":
		err = cmdRun(args)
	case "report":
		err = cmdReport(args)
	case "restart-floor":
		err = cmdRestartFloor(args)
	case "oneshot-loop":
		err = cmdOneshotLoop(args)
	case "oneshot-rounds":
		err = cmdOneshotRounds(args)
	case "minit":
		err = cmdMinit(args)
	case "writer":
		err = cmdWriter(args)
	default:
		usageExit()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hbench %s: %v\n", sub, err)
		os.Exit(1)
	}
}

func usageExit() {
	fmt.Fprintln(os.Stderr, "usage: hbench run|report|restart-floor|oneshot-loop|oneshot-rounds|minit|writer [flags]")
	os.Exit(2)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

// ---------------------------------------------------------------- children

// exit is how a direct child ended and when it was reaped.
type exit struct {
	at     time.Time
	status syscall.WaitStatus
}

// reaper reaps every child of hbench (orphans re-parented to it included)
// and hands exits of the pids someone waits for to them. Exits of other
// pids are dropped: keeping them would hand a stale status to a later child
// that gets the same pid (pids wrap quickly during the restart storm).
// spawn holds mu across the fork and the registration, so an exit reaped
// in between waits for the waiter to exist.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan exit
}

var rp *reaper

// startReaper makes hbench a child subreaper and reaps in the background.
func startReaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	rp = &reaper{waiters: map[int]chan exit{}}
	sigc := make(chan os.Signal, 64)
	signal.Notify(sigc, syscall.SIGCHLD)
	go func() {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, 0, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				select {
				case <-sigc:
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			e := exit{at: time.Now(), status: ws}
			rp.mu.Lock()
			if ch, ok := rp.waiters[pid]; ok {
				ch <- e
				delete(rp.waiters, pid)
			}
			rp.mu.Unlock()
		}
	}()
}

// child is a process hbench started.
type child struct {
	pid   int
	start time.Time
	mono  uint64 // CLOCK_MONOTONIC ns just before the fork
	done  chan exit
	exit  *exit
}

// spawnOpts are where a child's output goes and its working directory.
type spawnOpts struct {
	stdout, stderr string // files (truncated); "" = /dev/null
	appendOut      bool   // open stdout with O_APPEND
	dir            string
	env            []string
}

func openOut(path string, appendMode bool) (*os.File, error) {
	if path == "" {
		path = os.DevNull
	}
	fl := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appendMode {
		fl |= os.O_APPEND
	}
	return os.OpenFile(path, fl, 0o644)
}

// lookPath resolves argv[0] like a shell would.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH", name)
}

// spawn fork/execs argv (stdin /dev/null) and registers for its exit.
func spawn(argv []string, o spawnOpts) (*child, error) {
	path, err := lookPath(argv[0])
	if err != nil {
		return nil, err
	}
	so, err := openOut(o.stdout, o.appendOut)
	if err != nil {
		return nil, err
	}
	defer so.Close()
	se, err := openOut(o.stderr, false)
	if err != nil {
		return nil, err
	}
	defer se.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	env := o.env
	if env == nil {
		env = os.Environ()
	}
	attr := &syscall.ProcAttr{Dir: o.dir, Env: env, Files: []uintptr{null.Fd(), so.Fd(), se.Fd()}, Sys: &syscall.SysProcAttr{Setpgid: true}}
	c := &child{done: make(chan exit, 1)}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	c.start, c.mono = time.Now(), monoNS()
	c.pid, err = syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	rp.waiters[c.pid] = c.done
	return c, nil
}

// exited reports whether the child has exited (and remembers how).
func (c *child) exited() bool {
	if c.exit != nil {
		return true
	}
	select {
	case e := <-c.done:
		c.exit = &e
		return true
	default:
		return false
	}
}

// wait waits up to d for the child to exit.
func (c *child) wait(d time.Duration) bool {
	if c.exit != nil {
		return true
	}
	select {
	case e := <-c.done:
		c.exit = &e
		return true
	case <-time.After(d):
		return false
	}
}

// stop asks the child to stop with sig, waits up to grace, then SIGKILLs
// everything left below hbench, by pid, until nothing is left.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	if !c.exited() {
		_ = syscall.Kill(c.pid, sig)
		c.wait(grace)
	}
	killAll(10 * time.Second)
}

// killAll SIGKILLs every process below hbench until none is left.
func killAll(limit time.Duration) {
	self := os.Getpid()
	deadline := time.Now().Add(limit)
	for {
		ps := subtree(scanProcs(), self, false)
		live := 0
		for _, p := range ps {
			if p.state != 'Z' {
				live++
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
		if len(ps) == 0 {
			return
		}
		if time.Now().After(deadline) {
			logf("warning: %d processes (%d live) still below hbench after %v", len(ps), live, limit)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitServices polls until want live processes named comm are below root.
func waitServices(c *child, comm string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := countLive(subtree(scanProcs(), c.pid, false), comm)
		if n >= want {
			return nil
		}
		if c.exited() {
			return fmt.Errorf("supervisor exited (%v) with %d/%d services up", c.exit.status, n, want)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d/%d services up after %v", n, want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
