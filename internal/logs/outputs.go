package logs

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Outputs is horust's own stdout and stderr, shared by every service that
// writes to them through a copier. Lines from different services never
// interleave inside a line: each batch of whole lines is written with one
// write under one lock, the same lock for stdout and stderr (they are often
// the same terminal or pipe). Outputs also keeps the output counters of every
// service, over all its starts.
type Outputs struct {
	stdout, stderr *os.File
	prefixAll      bool

	outConn, errConn syscall.RawConn // nil when the file is nil

	mu sync.Mutex // held for every write of prefixed lines

	accMu    sync.Mutex
	accounts map[string]*account
	rings    map[ringKey]*ring    // prefixed streams, kept across starts
	written  map[string]*notifier // chunked files by clean path, kept across starts

	copiers  sync.WaitGroup // every copier started by a Wiring
	started  atomic.Bool    // whether any copier was ever started
	progress atomic.Uint64  // bytes handled by copiers, for Wait
}

// Wait waits until every copier has finished (reached EOF and written or
// dropped what it read). It gives up, returning false, when no copier made
// progress for stall: a destination that never takes more, or a pipe held
// open by a process that escaped its service. horust calls it before it
// exits, so that nothing a service wrote is lost.
func (o *Outputs) Wait(stall time.Duration) bool {
	if !o.started.Load() {
		// Nothing to wait for (every output was direct, as in a one-shot
		// run): no goroutine and no timer on the way to exit.
		return true
	}
	done := make(chan struct{})
	go func() {
		o.copiers.Wait()
		close(done)
	}()
	last := o.progress.Load()
	t := time.NewTimer(stall)
	defer t.Stop()
	for {
		select {
		case <-done:
			return true
		case <-t.C:
			now := o.progress.Load()
			if now == last {
				return false
			}
			last = now
			t.Reset(stall)
		}
	}
}

// NewOutputs returns the Outputs for horust's stdout and stderr (usually
// os.Stdout and os.Stderr). prefixAll is the global --log-prefix flag: every
// stream that goes to horust's stdout or stderr is then prefixed with the
// service name. A nil file is allowed: a service sending a direct stream
// there gets nil (the starter's choice), and prefixed lines for it are
// dropped and counted.
func NewOutputs(stdout, stderr *os.File, prefixAll bool) *Outputs {
	o := &Outputs{stdout: stdout, stderr: stderr, prefixAll: prefixAll, accounts: make(map[string]*account),
		rings: make(map[ringKey]*ring), written: make(map[string]*notifier)}
	o.outConn = rawConn(stdout)
	o.errConn = rawConn(stderr)
	return o
}

func rawConn(f *os.File) syscall.RawConn {
	if f == nil {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Stats is the output accounting of one service over all its starts.
type Stats struct {
	// Copied is the number of bytes a copier wrote (rotated chunks and
	// prefixed lines, prefixes included). Direct output is not seen by
	// horust and not counted.
	Copied uint64
	// Dropped is the number of bytes a copier read and could not write
	// (full disk, unwritable or closed destination), prefixes included.
	Dropped uint64
}

// Stats returns the output accounting of the named service; zero values for
// a service that never had a copier.
func (o *Outputs) Stats(service string) Stats {
	o.accMu.Lock()
	a := o.accounts[service]
	o.accMu.Unlock()
	if a == nil {
		return Stats{}
	}
	return Stats{Copied: a.copied.Load(), Dropped: a.dropped.Load()}
}

// account returns the counters of the named service, creating them.
func (o *Outputs) account(service string) *account {
	o.accMu.Lock()
	defer o.accMu.Unlock()
	a := o.accounts[service]
	if a == nil {
		a = &account{service: service}
		o.accounts[service] = a
	}
	return a
}

// ringKey names a prefixed stream: the service and the key ("stdout" or
// "stderr") of the destination its lines go through.
type ringKey struct{ service, key string }

// ring returns the recent lines of a prefixed stream, creating them.
func (o *Outputs) ring(service, key string) *ring {
	o.accMu.Lock()
	defer o.accMu.Unlock()
	k := ringKey{service, key}
	r := o.rings[k]
	if r == nil {
		r = &ring{}
		o.rings[k] = r
	}
	return r
}

// fileNotifier returns what wakes the followers of the chunks of path.
func (o *Outputs) fileNotifier(path string) *notifier {
	o.accMu.Lock()
	defer o.accMu.Unlock()
	path = filepath.Clean(path)
	n := o.written[path]
	if n == nil {
		n = &notifier{}
		o.written[path] = n
	}
	return n
}

// writeLines writes one batch of whole prefixed lines to horust's stdout or
// stderr under the lock.
func (o *Outputs) writeLines(rc syscall.RawConn, p []byte) (int, error) {
	if rc == nil {
		return 0, errNoOutput
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return writeAll(rc, p)
}

var errNoOutput = errors.New("horust has no such output")

// writeAll writes p with raw write calls. It does not go through os.File's
// Write on purpose: for fds 1 and 2, os.File turns EPIPE into the death of
// the whole process by SIGPIPE, and a reader of horust's stdout going away
// must only drop service output. EAGAIN (a child may have set O_NONBLOCK on a
// file description it shares with horust) waits with poll instead of failing.
func writeAll(rc syscall.RawConn, p []byte) (int, error) {
	written := 0
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, e := unix.Write(int(fd), p[written:])
			if n > 0 {
				written += n
			}
			switch {
			case e == unix.EINTR:
			case e == unix.EAGAIN:
				pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
				if _, e := unix.Poll(pfd, -1); e != nil && e != unix.EINTR {
					werr = e
					return true
				}
			case e != nil:
				werr = e
				return true
			case n == 0:
				werr = io.ErrShortWrite
				return true
			}
		}
		return true
	})
	if werr == nil {
		werr = err
	}
	return written, werr
}

// dropLogEvery is how often a service's dropped output is logged at most.
const dropLogEvery = time.Minute

// account is the output accounting of one service, shared by its copiers and
// kept across its starts.
type account struct {
	service string
	copied  atomic.Uint64
	dropped atomic.Uint64

	mu      sync.Mutex
	nextLog time.Time // no log about dropped output before this time
}

// drop counts n bytes that could not be written to path (stream is the key:
// "stdout" or "stderr") and logs it when the last such log of the service is
// more than a minute older than now.
func (a *account) drop(log *slog.Logger, stream, path string, n int, err error) {
	total := a.dropped.Add(uint64(n))
	now := time.Now()
	a.mu.Lock()
	quiet := now.Before(a.nextLog)
	if !quiet {
		a.nextLog = now.Add(dropLogEvery)
	}
	a.mu.Unlock()
	if quiet {
		return
	}
	log.Error("service output dropped: cannot write", "service", a.service, "stream", stream,
		"path", path, "error", err.Error(), "dropped_bytes", total)
}
