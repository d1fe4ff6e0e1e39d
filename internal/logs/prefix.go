package logs

import (
	"bytes"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

const (
	// maxLine is the longest line content written behind one prefix; a
	// longer line is split into pieces of maxLine bytes, each on its own
	// prefixed line.
	maxLine = 64 << 10
	// flushAt is the batch size: prefixed lines are written when the batch
	// exceeds it, and at the end of each read.
	flushAt = 512 << 10
	// stampLayout is RFC 3339 in UTC with milliseconds, fixed width.
	stampLayout = "2006-01-02T15:04:05.000Z07:00"
)

// lineBufs holds batch buffers for prefixed lines; like read buffers, a
// copier holds one only while it handles a read.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+maxLine+1024); return &b }}

// prefixSink writes each line to horust's stdout or stderr as
// "<name> | <line>", or "<time> <name> | <line>" with timestamps.
type prefixSink struct {
	out    *Outputs
	conn   syscall.RawConn // out's stdout or stderr; nil drops everything
	dest   string          // "STDOUT" or "STDERR", for the log
	stream string          // the key the stream came from, for the log
	tag    []byte          // "<name> | "
	stamps bool
	acct   *account
	log    *slog.Logger
	recent *ring // the last lines, for horustctl logs; may be nil

	carry []byte // the start of a line whose end has not been read yet
	hdr   []byte // the prefix of the current batch: time and tag
	batch *[]byte
}

func newPrefixSink(out *Outputs, toStderr bool, stream, name string, stamps bool, acct *account, log *slog.Logger) *prefixSink {
	s := &prefixSink{out: out, conn: out.outConn, dest: "STDOUT", stream: stream, tag: []byte(name + " | "),
		stamps: stamps, acct: acct, log: log}
	if toStderr {
		s.conn, s.dest = out.errConn, "STDERR"
	}
	return s
}

// header sets the prefix of the lines of this batch: every line of one read
// gets the time of that read.
func (s *prefixSink) header() {
	s.hdr = s.hdr[:0]
	if s.stamps {
		s.hdr = time.Now().UTC().AppendFormat(s.hdr, stampLayout)
		s.hdr = append(s.hdr, ' ')
	}
	s.hdr = append(s.hdr, s.tag...)
}

// line adds one line (a and b joined, without its newline) to the batch.
func (s *prefixSink) line(a, b []byte) {
	buf := append(*s.batch, s.hdr...)
	buf = append(buf, a...)
	buf = append(buf, b...)
	*s.batch = append(buf, '\n')
	s.keep((*s.batch)[len(*s.batch)-len(a)-len(b)-1:])
	if len(*s.batch) >= flushAt {
		s.flush()
	}
}

// keep adds whole lines, each with its newline, to the recent lines.
func (s *prefixSink) keep(lines []byte) {
	if s.recent != nil && len(lines) > 0 {
		s.recent.add(lines)
	}
}

// flush writes the batch with one write under the Outputs' lock.
func (s *prefixSink) flush() {
	p := *s.batch
	if len(p) == 0 {
		return
	}
	n, err := s.out.writeLines(s.conn, p)
	s.acct.copied.Add(uint64(n))
	if err != nil {
		s.acct.drop(s.log, s.stream, s.dest, len(p)-n, err)
	}
	*s.batch = p[:0]
}

func (s *prefixSink) write(p []byte) {
	s.batch = lineBufs.Get().(*[]byte)
	s.header()
	if len(s.carry) > 0 {
		p = s.joinCarry(p)
	}
	// The hot loop: whole lines of at most maxLine bytes. The lines taken
	// as they are (run) go to the recent lines in one piece.
	run := p
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 || i > maxLine {
			s.keep(run[:len(run)-len(p)])
			if i < 0 && len(p) <= maxLine {
				s.carry = append(s.carry, p...)
				run, p = nil, nil
				break
			}
			// More than maxLine bytes without a newline: one piece.
			s.line(p[:maxLine], nil)
			p = p[maxLine:]
			run = p
			continue
		}
		buf := append(*s.batch, s.hdr...)
		*s.batch = append(buf, p[:i+1]...)
		p = p[i+1:]
		if len(*s.batch) >= flushAt {
			s.flush()
		}
	}
	s.keep(run[:len(run)-len(p)])
	s.flush()
	lineBufs.Put(s.batch)
	s.batch = nil
}

// joinCarry completes or extends the held start of a line with the head of
// p and returns the rest of p.
func (s *prefixSink) joinCarry(p []byte) []byte {
	for len(s.carry) > 0 && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		room := maxLine - len(s.carry)
		switch {
		case i >= 0 && i <= room: // the line ends here
			s.line(s.carry, p[:i])
			p = p[i+1:]
			s.dropCarry()
		case i < 0 && len(p) <= room: // still no end
			s.carry = append(s.carry, p...)
			p = nil
		default: // more than maxLine bytes: one piece
			s.line(s.carry, p[:room])
			p = p[room:]
			s.dropCarry()
		}
	}
	return p
}

// dropCarry empties the carry, and frees it when it grew large.
func (s *prefixSink) dropCarry() {
	if cap(s.carry) > 4<<10 {
		s.carry = nil
	} else {
		s.carry = s.carry[:0]
	}
}

func (s *prefixSink) finish() {
	if len(s.carry) == 0 {
		return
	}
	s.batch = lineBufs.Get().(*[]byte)
	s.header()
	s.line(s.carry, nil)
	s.flush()
	lineBufs.Put(s.batch)
	s.batch = nil
	s.carry = nil
}

func (s *prefixSink) abort() {}
