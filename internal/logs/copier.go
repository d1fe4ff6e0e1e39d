package logs

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	// readSize is the size of one read from a pipe.
	readSize = 256 << 10
	// pipeSize is the capacity asked for every pipe (F_SETPIPE_SZ), so a
	// fast writer fills a big buffer between two wake-ups of its copier.
	// Best effort: the kernel refuses more than /proc/sys/fs/pipe-max-size,
	// or more than the user's pipe budget when horust is not privileged.
	pipeSize = 1 << 20
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
}

// newPipe returns a pipe for a child's output: the read end is non-blocking
// (the copier waits in the runtime's poller, holding no thread), the write
// end is blocking (the child's stdout must behave like a normal pipe). Both
// are close-on-exec; the starter passes the write end to the child
// explicitly.
func newPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	// A refusal only leaves the default capacity (64 KiB).
	_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, pipeSize)
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
	defer c.sink.finish()
	rc, err := c.r.SyscallConn()
	if err != nil {
		return
	}
	for {
		var buf *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			if buf == nil {
				buf = readBufs.Get().(*[]byte)
			}
			for {
				n, rerr = unix.Read(int(fd), *buf)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				readBufs.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if buf != nil && n > 0 {
			c.sink.write((*buf)[:n])
		}
		if buf != nil {
			readBufs.Put(buf)
		}
		// n == 0 is EOF; a read error on a pipe (EIO is not possible,
		// EBADF would be a bug) ends the copier the same way.
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}
