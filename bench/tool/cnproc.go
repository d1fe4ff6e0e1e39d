package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel's process events connector (CONFIG_PROC_EVENTS): every fork,
// exec and exit on the machine, with a CLOCK_MONOTONIC time stamp in ns taken
// in the kernel when it happens. It lets the benchmark time a crash and the
// restart that follows without touching the service or the supervisor.

const (
	cnIdxProc        = 1
	cnValProc        = 1
	procCnMcastListn = 1
	procCnMcastIgnr  = 2

	evFork = 0x00000001
	evExec = 0x00000002
	evExit = 0x80000000
)

// pev is one process event. For a fork, pid/tgid are the child's and
// ppid/ptgid the parent's; for an exit, ppid/ptgid are the parent's.
type pev struct {
	what             uint32
	ts               uint64
	pid, tgid        int
	ppid, ptgid      int
	exitCode, exitSg int
}

// recorder collects every fork, exec and exit event until stop.
type recorder struct {
	fd      int
	mu      sync.Mutex
	evs     []pev
	stopped atomic.Bool
	lost    atomic.Int64
	done    chan struct{}
}

// monoNS is CLOCK_MONOTONIC in ns, the clock of the events' time stamps.
func monoNS() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

func cnMessage(op uint32) []byte {
	b := make([]byte, 16+20+4)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], unix.NLMSG_DONE)
	binary.NativeEndian.PutUint32(b[16:], cnIdxProc)
	binary.NativeEndian.PutUint32(b[20:], cnValProc)
	binary.NativeEndian.PutUint16(b[32:], 4)
	binary.NativeEndian.PutUint32(b[36:], op)
	return b
}

// startRecorder subscribes to the process events connector (root only).
func startRecorder() (*recorder, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("netlink connector socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	tv := unix.Timeval{Usec: 100_000}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind proc connector: %w", err)
	}
	if err := unix.Sendto(fd, cnMessage(procCnMcastListn), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to proc events: %w", err)
	}
	r := &recorder{fd: fd, done: make(chan struct{})}
	go r.loop()
	return r, nil
}

func (r *recorder) loop() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	for !r.stopped.Load() {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				r.lost.Add(1)
			}
			continue // EAGAIN on the 100 ms timeout, EINTR
		}
		for off := 0; off+16 <= n; {
			ml := int(binary.NativeEndian.Uint32(buf[off:]))
			if ml < 16 || off+ml > n {
				break
			}
			r.parse(buf[off : off+ml])
			off += (ml + 3) &^ 3
		}
	}
}

func (r *recorder) parse(m []byte) {
	const base = 16 + 20 // nlmsghdr + cn_msg
	if len(m) < base+16+8 {
		return
	}
	e := pev{what: binary.NativeEndian.Uint32(m[base:]), ts: binary.NativeEndian.Uint64(m[base+8:])}
	u := m[base+16:]
	i32 := func(k int) int {
		if 4*k+4 > len(u) {
			return 0
		}
		return int(int32(binary.NativeEndian.Uint32(u[4*k:])))
	}
	switch e.what {
	case evFork:
		e.ppid, e.ptgid, e.pid, e.tgid = i32(0), i32(1), i32(2), i32(3)
	case evExec:
		e.pid, e.tgid = i32(0), i32(1)
	case evExit:
		e.pid, e.tgid, e.exitCode, e.exitSg, e.ppid, e.ptgid = i32(0), i32(1), i32(2), i32(3), i32(4), i32(5)
	default:
		return
	}
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

// stop ends the subscription and returns the events in time order, and
// whether the kernel dropped some (the socket buffer overflowed).
func (r *recorder) stop() ([]pev, bool) {
	// let events already queued in the kernel be read first
	time.Sleep(150 * time.Millisecond)
	_ = unix.Sendto(r.fd, cnMessage(procCnMcastIgnr), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	r.stopped.Store(true)
	<-r.done
	unix.Close(r.fd)
	r.mu.Lock()
	evs := r.evs
	r.evs = nil
	r.mu.Unlock()
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ts < evs[j].ts })
	return evs, r.lost.Load() > 0
}

// run is one process started by a supervisor to run a service.
type runRec struct {
	pid, parent      int
	fork, exec, exit uint64 // ns; exec is the last exec (the service program)
}

// serviceRuns replays events and returns the processes that sit `depth`
// levels below root (depth 1: root's own children; 2: its grandchildren, for
// s6-supervise and runsv), i.e. the service runs, in fork order.
func serviceRuns(evs []pev, root, depth int) []*runRec {
	level := map[int]int{root: 0}
	live := map[int]*runRec{}
	var runs []*runRec
	for _, e := range evs {
		switch e.what {
		case evFork:
			if e.pid != e.tgid { // a thread
				continue
			}
			pl, ok := level[e.ptgid]
			if !ok {
				continue
			}
			level[e.pid] = pl + 1
			if pl+1 == depth {
				r := &runRec{pid: e.pid, parent: e.ptgid, fork: e.ts}
				live[e.pid] = r
				runs = append(runs, r)
			}
		case evExec:
			if r, ok := live[e.tgid]; ok {
				r.exec = e.ts
			}
		case evExit:
			if e.pid != e.tgid {
				continue
			}
			if r, ok := live[e.pid]; ok {
				r.exit = e.ts
				delete(live, e.pid)
			}
			if e.pid != root {
				delete(level, e.pid)
			}
		}
	}
	return runs
}

// exitTime is the time the last thread of tgid exited (0 when not seen).
func exitTime(evs []pev, tgid int) uint64 {
	var t uint64
	for _, e := range evs {
		if e.what == evExit && e.tgid == tgid && e.ts > t {
			t = e.ts
		}
	}
	return t
}
