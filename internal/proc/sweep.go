package proc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sweep ends every process horust is still responsible for once every
// service finished: as PID 1, everything in the pid namespace
// (kill(-1, SIGTERM), then SIGKILL after grace); as a subreaper, its
// remaining children (adopted orphans) and their groups. It reaps as they
// exit, waking on SIGCHLD from sigs, and returns as soon as no child is left.
// Only the supervisor loop's goroutine may call it, after the loop returned.
func Sweep(sigs <-chan os.Signal, grace time.Duration) {
	if drained() {
		return
	}
	pid1 := os.Getpid() == 1
	signalAll := func(sig syscall.Signal) {
		if pid1 {
			_ = unix.Kill(-1, sig)
			return
		}
		for _, c := range children() {
			_ = unix.Kill(-c, sig)
			_ = unix.Kill(c, sig)
		}
	}
	signalAll(syscall.SIGTERM)
	if waitDrained(sigs, grace) {
		return
	}
	signalAll(syscall.SIGKILL)
	waitDrained(sigs, time.Second)
}

// waitDrained reaps until no child is left or d passes.
func waitDrained(sigs <-chan os.Signal, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if drained() {
			return true
		}
		select {
		case <-sigs:
		case <-t.C:
			return drained()
		}
	}
}

// drained reaps every exited child and reports whether none is left.
func drained() bool {
	for {
		if pid, _, none := reap(); pid <= 0 {
			return none
		}
	}
}

// children lists horust's live children from /proc (a one-off scan at exit).
func children() []int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == self {
				out = append(out, pid)
			}
		}
	}
	return out
}
