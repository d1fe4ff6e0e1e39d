package main

import (
	"os"
	"runtime"
	"sync"

	"github.com/horust-go/horust/internal/logs"
)

// maxProcs caps GOMAXPROCS (unless the GOMAXPROCS variable sets it): a
// supervisor needs few CPUs at once, and every P may need a thread of its
// own.
const maxProcs = 4

// spareThreads are the threads besides one per P that horust may hold at
// once, each blocked in a system call: the supervisor loop (fork, wait4,
// cgroup files), the signal receiver of os/signal, a write of prefixed
// lines to horust's stdout (one at a time, under a lock), and one for the
// short blocking calls of control handlers and health checks (files in
// /proc, stat). Rotated output adds logs.MaxFileWrites.
const spareThreads = 4

// reserveThreads makes, at start, every OS thread the Go runtime will
// need, so that it never needs a new one later: the runtime cannot survive
// a thread it fails to create ("failed to create new OS thread", a fatal
// error), and a horust at its pids limit (a container's pids.max, its
// services forking up to it) would die of the first one. The runtime never
// ends an idle thread, so threads made once are reused for good.
//
// A goroutine locked to its thread keeps that thread to itself while it
// waits, so n goroutines locked at once force n threads into existence;
// they unlock before they exit (a goroutine that exits locked ends its
// thread) and the threads go idle. See docs/design.md, "Threads".
func reserveThreads() {
	if os.Getenv("GOMAXPROCS") == "" {
		// Setting it also stops the runtime from raising it later, when
		// a CPU limit is raised: the reserve would then be too small.
		runtime.GOMAXPROCS(min(runtime.GOMAXPROCS(0), maxProcs))
	}
	n := runtime.GOMAXPROCS(0) + spareThreads + logs.MaxFileWrites
	var locked sync.WaitGroup
	locked.Add(n)
	release := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			locked.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	locked.Wait()
	close(release)
}
