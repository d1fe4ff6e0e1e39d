package logs

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// readSize is the size of one read from a pipe.
	readSize = 256 << 10
	// fullPipe is the default pipe capacity: a read of that much
	// means the pipe was full.
	fullPipe = 64 << 10
)

// readBufs holds read buffers. A copier takes one only while data is ready
// and gives it back before it waits again, so an idle service costs no
// buffer.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// sink is where a copier puts what it reads. write and finish are called
// from the copier goroutine only.
type sink interface {
	// write handles p, which is only valid during the call. It never fails:
	// what cannot be written is dropped and counted.
	write(p []byte)
	// finish writes what is still held (a last line without a newline) and
	// closes the files of the sink.
	finish()
	// abort closes the files of the sink without writing anything.
	abort()
}

// copier copies one pipe into a sink until EOF.
type copier struct {
	r    *os.File // read end, non-blocking, registered with the poller
	sink sink

	// writing is set while the copier writes to its destination (a slow
	// reader of horust's stdout blocks it there); idle, when set, is called
	// once the next time the copier waits for input. Both are read by the
	// supervisor's goroutine (Wiring.WhenIdle).
	writing atomic.Bool
	idle    atomic.Pointer[func()]
	// progress counts the bytes this copier handled, for Outputs.Wait.
	progress *atomic.Uint64

	// State of the current read, kept here so that the callback given to
	// the poller is allocated once.
	readFn func(uintptr) bool
	buf    *[]byte
	n      int
	err    error
}

// newPipe returns a pipe for a child's output: the read end is non-blocking
// (the copier waits in the runtime's poller, holding no thread), the write
// end is blocking (the child's stdout must behave like a normal pipe). Both
// are close-on-exec; the starter passes the write end to the child
// explicitly.
func newPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := pipeCloexec(&p); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// run copies until EOF (every write end closed) or a read error, then
// finishes the sink and closes the read end.
func (c *copier) run() {
	defer c.r.Close()
	defer func() {
		c.writing.Store(true)
		c.sink.finish()
		c.writing.Store(false)
	}()
	rc, err := c.r.SyscallConn()
	if err != nil {
		return
	}
	c.readFn = c.readOnce // allocated once, not per read
	grown := false
	for {
		if !grown && c.n >= fullPipe {
			_ = rc.Control(growPipe)
			grown = true
		}
		err := rc.Read(c.readFn)
		if c.buf != nil {
			if c.n > 0 {
				c.writing.Store(true)
				c.sink.write((*c.buf)[:c.n])
				c.writing.Store(false)
				if c.progress != nil {
					c.progress.Add(uint64(c.n))
				}
			}
			readBufs.Put(c.buf)
			c.buf = nil
		}
		// n == 0 is EOF; a read error on a pipe (EIO is not possible,
		// EBADF would be a bug) ends the copier the same way.
		if err != nil || c.err != nil || c.n <= 0 {
			return
		}
	}
}

// readOnce is the callback of a read from the pipe: it takes a buffer only
// when the pipe has data, and gives it back before waiting.
func (c *copier) readOnce(fd uintptr) bool {
	if c.buf == nil {
		c.buf = readBufs.Get().(*[]byte)
	}
	for {
		c.n, c.err = unix.Read(int(fd), *c.buf)
		if c.err != unix.EINTR {
			break
		}
	}
	if c.err == unix.EAGAIN {
		readBufs.Put(c.buf)
		c.buf = nil
		if f := c.idle.Swap(nil); f != nil {
			(*f)()
		}
		return false
	}
	return true
}
