package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/horust-go/horust/internal/config"
)

// ErrNotKept is what Open's error wraps when horust never sees a stream:
// it goes straight to horust's own stdout or stderr (zero copy), or to
// something that is not a regular file.
var ErrNotKept = errors.New("output not kept by horust")

// readBlock is how much of a chunk is read at once, backwards for the last
// lines and forwards when following.
const readBlock = 64 << 10

// Reader reads one output stream of a service back, for horustctl logs:
// Tail sends the last lines, then Follow sends what is written after them.
// A Reader belongs to one goroutine (a request's handler); it reads files
// and the recent lines of prefixed streams, and never holds up the copier
// that writes them.
type Reader struct {
	emit func([]byte) error

	// A file: chunks of path when rotated, else path itself.
	path    string
	rotated bool
	stamped bool
	written *notifier // the copier's news for chunks; nil for a direct file

	// A prefixed stream.
	recent *ring

	// Where Tail stopped and Follow goes on.
	cur    *chunkID // the chunk being read; nil before any
	f      *os.File // the file being read, nil when it does not exist yet
	off    int64
	ringAt uint64
}

// Open returns a Reader of stream ("stdout" or "stderr") of svc, whose
// Tail and Follow call emit with the data (valid during the call only).
// It reads what the copier of that stream keeps: the chunk files, the file
// the service writes itself, or the recent lines of a prefixed stream. A
// stream that follows the other (stderr = "STDOUT") is read where it goes.
// Output horust never sees is an error wrapping ErrNotKept that says how to
// keep it.
func (o *Outputs) Open(svc *config.Service, stream string, emit func([]byte) error) (*Reader, error) {
	p := makePlan(svc)
	key, target, rot := p.outKey, p.outTarget, p.outRot
	if stream == "stderr" && !p.shared {
		key, target, rot = "stderr", p.errTarget, p.errRot
	}
	r := &Reader{emit: emit}
	switch {
	case target == toStdout || target == toStderr:
		if !svc.Prefix && !o.prefixAll {
			return nil, fmt.Errorf("%w: the %s of '%s' goes straight to horust's %s (zero copy) and horust never sees it; "+
				"to read it with horustctl logs, send it to a file (%s = \"/var/log/%s.log\") or set stdout-prefix = true",
				ErrNotKept, stream, svc.Name, target, key, strings.TrimSuffix(svc.Name, ".toml"))
		}
		r.recent = o.ring(svc.Name, key)
	case rot.size > 0 && regularOrMissing(target):
		r.path, r.rotated, r.stamped = target, true, svc.AppendTimestamp
		r.written = o.fileNotifier(target)
	case !regularOrMissing(target):
		return nil, fmt.Errorf("%w: the %s of '%s' goes to %s, which is not a regular file", ErrNotKept, stream, svc.Name, target)
	default:
		r.path = target
	}
	return r, nil
}

// Close closes the file being read.
func (r *Reader) Close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// Tail sends the last n lines of the stream (a last line without its
// newline counts as a line), and leaves the Reader right after them.
func (r *Reader) Tail(n int) error {
	if r.recent != nil {
		data, end := r.recent.tail(n)
		r.ringAt = end
		return r.send(data)
	}
	chunks := []chunkID{{}}
	if r.rotated {
		chunks = scanChunks(r.path, r.stamped)
	}
	return r.tailFiles(chunks, n)
}

// tailFiles sends the last n lines of chunks (oldest first), reading
// backwards from the newest: only the chunks that hold those lines are
// opened, however many there are.
func (r *Reader) tailFiles(chunks []chunkID, n int) error {
	type part struct {
		f          *os.File
		from, size int64
	}
	var parts []part // newest first
	defer func() {
		for _, p := range parts {
			if p.f != r.f {
				p.f.Close()
			}
		}
	}()
	buf := make([]byte, readBlock)
	first := true // the last byte of the stream is not a line's start
	found := n == 0
	for i := len(chunks) - 1; i >= 0 && (!found || r.cur == nil); i-- {
		f, err := os.Open(r.name(chunks[i]))
		if err != nil {
			continue // pruned meanwhile, or not made yet
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		size := st.Size()
		if len(parts) == 0 {
			// Follow goes on where the newest chunk ends now.
			c := chunks[i]
			r.cur, r.f, r.off = &c, f, size
		}
		from := int64(0)
		if found {
			from = size // -n 0: nothing of it, Follow starts at its end
		}
		for off := size; off > 0 && !found; {
			blk := min(off, readBlock)
			off -= blk
			b := buf[:blk]
			if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
				return fmt.Errorf("read %s: %w", f.Name(), err)
			}
			if first {
				first = false
				if b[len(b)-1] == '\n' {
					b = b[:len(b)-1]
				}
			}
			for j := len(b); !found; {
				j = bytes.LastIndexByte(b[:j], '\n')
				if j < 0 {
					break
				}
				if n--; n == 0 {
					found, from = true, off+int64(j)+1
				}
			}
		}
		parts = append(parts, part{f, from, size})
	}
	if r.cur == nil && len(chunks) > 0 && !r.rotated {
		r.cur = &chunks[0] // the file does not exist yet
	}
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if err := r.copyRange(p.f, p.from, p.size); err != nil {
			return err
		}
	}
	return nil
}

// copyRange sends bytes from to end of f.
func (r *Reader) copyRange(f *os.File, from, end int64) error {
	_, err := io.Copy(emitWriter(r.emit), io.NewSectionReader(f, from, end-from))
	return err
}

// emitWriter adapts emit to io.Copy.
type emitWriter func([]byte) error

func (w emitWriter) Write(p []byte) (int, error) {
	if err := w(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r *Reader) send(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	return r.emit(p)
}

// name is the file name of a chunk, or the path of a file not rotated.
func (r *Reader) name(c chunkID) string {
	if !r.rotated {
		return r.path
	}
	return chunkName(r.path, c)
}

// skipped is the line sent to a follower where it missed output.
func skipped(what string) []byte {
	return []byte("[horust: " + what + " skipped: this reader fell behind]\n")
}

// Follow sends what is written after the point where Tail stopped, until
// ctx ends or emit fails. It waits without polling: for chunk files and
// prefixed streams horust writes itself, the copier wakes it; for a file the
// service writes itself, inotify does. It follows a rotation to the next
// chunk once the chunk it reads is complete, so no line is lost or sent
// twice; chunks deleted (stdout-rotate-keep) before it read them are
// skipped, and it says so.
func (r *Reader) Follow(ctx context.Context) error {
	if r.recent != nil {
		return r.followRing(ctx)
	}
	if r.rotated {
		return r.followChunks(ctx, func() <-chan struct{} { return r.written.wait() })
	}
	w, err := watchDir(ctx, filepath.Dir(r.path))
	if err != nil {
		return err
	}
	return r.followChunks(ctx, func() <-chan struct{} { return w })
}

func (r *Reader) followRing(ctx context.Context) error {
	for {
		data, next, missed, wake := r.recent.since(r.ringAt)
		r.ringAt = next
		if missed > 0 {
			if err := r.emit(skipped(fmt.Sprintf("%d bytes", missed))); err != nil {
				return err
			}
		}
		if err := r.send(data); err != nil {
			return err
		}
		if len(data) == 0 {
			select {
			case <-wake:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// followChunks reads the current file to its end, moves to the next chunk
// when there is one, and otherwise waits for news.
func (r *Reader) followChunks(ctx context.Context, news func() <-chan struct{}) error {
	buf := make([]byte, readBlock)
	for {
		wake := news() // before reading: news after the read are not missed
		more, err := r.readOn(buf)
		if err != nil {
			return err
		}
		if more {
			continue
		}
		// The writer closes a chunk before it opens the next one: once the
		// next exists, reading the current one to its end gets all of it.
		if next, gap := r.next(); next != nil {
			for more = true; more; {
				if more, err = r.readOn(buf); err != nil {
					return err
				}
			}
			if gap != "" {
				if err := r.emit(skipped(gap)); err != nil {
					return err
				}
			}
			r.Close()
			r.cur, r.off = next, 0
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// readOn sends what the current file holds past the offset, one block at a
// time; more reports that it sent a full block (there may be more).
func (r *Reader) readOn(buf []byte) (more bool, err error) {
	if r.f == nil {
		if r.cur == nil {
			return false, nil
		}
		f, err := os.Open(r.name(*r.cur))
		if err != nil {
			return false, nil // not made yet (or pruned: next skips it)
		}
		r.f = f
	}
	if !r.rotated {
		// A file the service writes itself may be truncated or replaced
		// (logrotate): then it is read again from its start.
		if st, err := os.Stat(r.path); err == nil {
			if fst, ferr := r.f.Stat(); ferr == nil && (!os.SameFile(st, fst) || fst.Size() < r.off) {
				r.Close()
				r.off = 0
				return true, nil
			}
		}
	}
	n, err := r.f.ReadAt(buf, r.off)
	if n > 0 {
		r.off += int64(n)
		if err := r.emit(buf[:n]); err != nil {
			return false, err
		}
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("read %s: %w", r.f.Name(), err)
	}
	return n == len(buf), nil
}

// next returns the chunk after the current one when it exists, and what was
// skipped to reach it ("" when nothing): the same series' next index, else
// (a restart with the timestamp suffix, or chunks deleted before they were
// read) the oldest chunk newer than the current one.
func (r *Reader) next() (*chunkID, string) {
	if !r.rotated {
		return nil, ""
	}
	if r.cur != nil {
		c := chunkID{stamp: r.cur.stamp, k: r.cur.k + 1}
		if _, err := os.Lstat(chunkName(r.path, c)); err == nil {
			return &c, ""
		}
		// Most wake-ups end here: the link names the current chunk.
		if t, err := os.Readlink(r.path + currentSuffix); err == nil && t == filepath.Base(chunkName(r.path, *r.cur)) {
			return nil, ""
		}
	}
	for _, c := range scanChunks(r.path, r.stamped) {
		if r.cur == nil {
			return &c, ""
		}
		if r.cur.less(c) {
			gap := ""
			if c.stamp == r.cur.stamp && c.k > r.cur.k+1 {
				gap = fmt.Sprintf("%d chunks", c.k-r.cur.k-1)
			}
			return &c, gap
		}
	}
	return nil, ""
}
