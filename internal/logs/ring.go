package logs

import (
	"bytes"
	"sync"
)

// RingSize is how many bytes of recent output horust keeps per prefixed
// stream, for horustctl logs (docs/logging.md): the buffer is allocated at
// the stream's first line, so a service that prints nothing costs nothing.
const RingSize = 32 << 10

// ring keeps the most recent whole lines of one prefixed stream, at most
// RingSize bytes, for readers of the logs endpoint. The copier adds lines
// and never waits for a reader: a reader that falls behind is told how much
// it missed.
type ring struct {
	mu    sync.Mutex
	buf   []byte // nil until the first line, then RingSize bytes
	end   uint64 // bytes ever added; byte p lives at buf[p%RingSize]
	first uint64 // where the oldest line held starts
	wake  chan struct{}
}

// add appends whole lines, the last one ending with a newline (the copier
// passes whole lines only). Of more than the ring holds, the last lines
// that fit are kept; a single line longer than the ring keeps its end.
func (r *ring) add(lines []byte) {
	if len(lines) > RingSize {
		tail := lines[len(lines)-RingSize:]
		if i := bytes.IndexByte(tail, '\n'); i >= 0 && i < len(tail)-1 {
			tail = tail[i+1:]
		}
		lines = tail
	}
	n := uint64(len(lines))
	r.mu.Lock()
	if r.buf == nil {
		r.buf = make([]byte, RingSize)
	}
	switch {
	case n == RingSize:
		r.first = r.end
	case r.end+n-r.first > RingSize:
		// Drop whole lines from the front: the oldest line left starts
		// after the first newline at or after what the new line overwrites.
		r.first = r.lineAfter(max(r.first, r.end+n-RingSize-1))
	}
	r.copyIn(lines, r.end)
	r.end += n
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// copyIn writes p (at most RingSize bytes) at position at.
func (r *ring) copyIn(p []byte, at uint64) {
	i := int(at % RingSize)
	n := copy(r.buf[i:], p)
	copy(r.buf, p[n:])
}

// lineAfter returns the position after the first newline at or after p.
// Every line held ends with a newline, so there is one before end.
func (r *ring) lineAfter(p uint64) uint64 {
	for p < r.end {
		i := int(p % RingSize)
		seg := r.buf[i:min(RingSize, i+int(r.end-p))]
		if j := bytes.IndexByte(seg, '\n'); j >= 0 {
			return p + uint64(j) + 1
		}
		p += uint64(len(seg))
	}
	return r.end
}

// copyOut appends the bytes from p to the end to dst.
func (r *ring) copyOut(dst []byte, p uint64) []byte {
	for p < r.end {
		i := int(p % RingSize)
		seg := r.buf[i:min(RingSize, i+int(r.end-p))]
		dst = append(dst, seg...)
		p += uint64(len(seg))
	}
	return dst
}

// tail returns the last n lines held and the position after them.
func (r *ring) tail(n int) ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.end
	for start > r.first && n > 0 {
		// Step over the newline that ends the line, then find the one
		// before it.
		start--
		for start > r.first && r.buf[(start-1)%RingSize] != '\n' {
			start--
		}
		n--
	}
	return r.copyOut(nil, start), r.end
}

// since returns what was added from p on, the position after it, how many
// bytes from p on are no longer held (the reader fell behind), and a
// channel that is closed when more is added.
func (r *ring) since(p uint64) (data []byte, next, missed uint64, wake <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p < r.first {
		missed, p = r.first-p, r.first
	}
	data = r.copyOut(nil, p)
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return data, r.end, missed, r.wake
}

// notifier tells followers of a chunked file that its writer wrote: wait
// returns a channel that the next notify closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// notify wakes the followers; without any, it costs a lock.
func (n *notifier) notify() {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}
