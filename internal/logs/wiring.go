package logs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// The special values of the stdout and stderr keys.
const (
	toStdout = "STDOUT"
	toStderr = "STDERR"
)

// Wiring is the output plumbing of one start of one service.
type Wiring struct {
	// Stdout and Stderr are what the child gets as fd 1 and fd 2: horust's
	// own stdout or stderr (as given to NewOutputs, possibly nil), a file
	// opened in append mode, or the write end of a pipe. They are the same
	// *os.File when one stream follows the other. The caller passes them to
	// the child (by Fd) and closes none of them: Started and Abort close
	// those that Setup opened, and horust's own are never closed.
	Stdout, Stderr *os.File

	owned   []*os.File // child's ends opened by Setup, closed by Started or Abort
	copiers []*copier
	out     *Outputs
	done    bool // Started or Abort was called
}

// stream is how one of the child's fds is served.
type stream struct {
	child  *os.File
	owned  bool // child was opened by Setup
	copier *copier
}

// Setup prepares the output of one start of svc: it opens files (append
// mode, created with mode 0644 minus the umask; the parent directory is not
// created), or pipes and chunk files when rotation or prefixing is on.
// Relative paths are relative to horust's working directory. Errors name the
// service, the key and the path (`service "a.toml": stdout: open /x/y.log:
// permission denied`); nothing stays open after an error. Setup is called
// from the goroutine that starts the service, and Started or Abort must
// follow on the same goroutine.
func Setup(svc *config.Service, out *Outputs, log *slog.Logger) (*Wiring, error) {
	if svc == nil || out == nil {
		return nil, errors.New("logs: setup needs a service and the outputs")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := setup{svc: svc, out: out, log: log, stamp: time.Now().Unix()}
	w, err := s.wire()
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", svc.Name, err)
	}
	w.out = out
	return w, nil
}

type setup struct {
	svc    *config.Service
	out    *Outputs
	log    *slog.Logger
	stamp  int64 // the Unix time of this start, for timestamped chunk names
	acct   *account
	opened []stream
}

// targets returns the normalized stdout and stderr values.
func targets(svc *config.Service) (stdout, stderr string) {
	stdout, stderr = svc.Stdout, svc.Stderr
	if stdout == "" {
		stdout = toStdout
	}
	if stderr == "" {
		stderr = toStderr
	}
	return stdout, stderr
}

// rotation is the rotation setting that applies to a file target.
type rotation struct {
	size uint64
	keep int
}

// plan decides where each stream goes: which key describes the shared
// destination, and whether stderr follows stdout (or stdout stderr).
//
//   - stderr = "STDOUT": fd 2 gets whatever fd 1 gets.
//   - stdout = "STDERR": fd 1 gets whatever fd 2 gets.
//   - both at once: both go to horust's stderr (what the original does:
//     stdout is redirected to fd 2 first, then fd 2 to the new fd 1).
//   - the same path for both: one file (or one pipe into the same chunks),
//     with stdout's rotation settings, or stderr's when stdout has none.
type plan struct {
	shared       bool   // one destination for both fds
	outKey       string // the key of stdout's destination ("stdout" or "stderr")
	outTarget    string
	outRot       rotation
	errTarget    string // when !shared
	errRot       rotation
	sameFileRots bool // shared file with two different rotation settings
}

func makePlan(svc *config.Service) plan {
	so, se := targets(svc)
	outRot := rotation{svc.StdoutRotateSize, svc.StdoutRotateKeep}
	errRot := rotation{svc.StderrRotateSize, svc.StderrRotateKeep}
	switch {
	case so == toStderr && se == toStdout:
		return plan{shared: true, outKey: "stdout", outTarget: toStderr}
	case se == toStdout:
		return plan{shared: true, outKey: "stdout", outTarget: so, outRot: outRot}
	case so == toStderr:
		return plan{shared: true, outKey: "stderr", outTarget: se, outRot: errRot}
	case so != toStdout && se != toStderr && filepath.Clean(so) == filepath.Clean(se):
		p := plan{shared: true, outKey: "stdout", outTarget: so, outRot: outRot}
		if outRot.size == 0 {
			p.outRot = errRot
		}
		p.sameFileRots = outRot.size > 0 && errRot.size > 0 && outRot != errRot
		return p
	}
	return plan{outKey: "stdout", outTarget: so, outRot: outRot, errTarget: se, errRot: errRot}
}

func (s *setup) wire() (*Wiring, error) {
	p := makePlan(s.svc)
	out, err := s.stream(p.outKey, p.outTarget, p.outRot)
	if err != nil {
		return nil, err
	}
	w := &Wiring{}
	w.Stdout, w.Stderr = out.child, out.child
	if !p.shared {
		e, err := s.stream("stderr", p.errTarget, p.errRot)
		if err != nil {
			s.release()
			return nil, err
		}
		w.Stderr = e.child
	}
	for _, st := range s.opened {
		if st.owned {
			w.owned = append(w.owned, st.child)
		}
		if st.copier != nil {
			w.copiers = append(w.copiers, st.copier)
		}
	}
	return w, nil
}

// release closes everything opened so far (Setup failed half way).
func (s *setup) release() {
	for _, st := range s.opened {
		releaseStream(st)
	}
	s.opened = nil
}

func releaseStream(st stream) {
	if st.owned {
		st.child.Close()
	}
	if st.copier != nil {
		st.copier.sink.abort()
		st.copier.r.Close()
	}
}

func (s *setup) account() *account {
	if s.acct == nil {
		s.acct = s.out.account(s.svc.Name)
	}
	return s.acct
}

// stream prepares one destination; key is the key that named it.
func (s *setup) stream(key, target string, rot rotation) (stream, error) {
	var st stream
	switch {
	case target == toStdout || target == toStderr:
		toErr := target == toStderr
		if !s.svc.Prefix && !s.out.prefixAll {
			st.child = s.out.stdout
			if toErr {
				st.child = s.out.stderr
			}
			return st, nil
		}
		sk := newPrefixSink(s.out, toErr, key, s.svc.Name, s.svc.Timestamps, s.account(), s.log)
		sk.recent = s.out.ring(s.svc.Name, key)
		r, w, err := newPipe()
		if err != nil {
			return st, fmt.Errorf("%s: %w", key, err)
		}
		st = stream{child: w, owned: true, copier: &copier{r: r, sink: sk}}
	case rot.size > 0 && regularOrMissing(target):
		var stamp int64
		if s.svc.AppendTimestamp {
			stamp = s.stamp
		}
		sk, err := openRotation(target, key, rot.size, rot.keep, stamp, s.account(), s.log)
		if err != nil {
			return st, fmt.Errorf("%s: %w", key, err)
		}
		sk.written = s.out.fileNotifier(target)
		r, w, err := newPipe()
		if err != nil {
			sk.abort()
			return st, fmt.Errorf("%s: %w", key, err)
		}
		st = stream{child: w, owned: true, copier: &copier{r: r, sink: sk}}
	default:
		if rot.size > 0 {
			// A device, fifo or socket (stdout = "/dev/stdout"): chunks
			// next to it make no sense, so the data goes there directly.
			s.log.Warn("rotation ignored: the target is not a regular file", "service", s.svc.Name, "key", key, "path", target)
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_APPEND, fileMode)
		if err != nil {
			return st, fmt.Errorf("%s: %w", key, err)
		}
		st = stream{child: f, owned: true}
	}
	s.opened = append(s.opened, st)
	return st, nil
}

// regularOrMissing reports whether path is a regular file (after symlinks) or
// does not exist yet.
func regularOrMissing(path string) bool {
	info, err := os.Stat(path)
	return err != nil || info.Mode().IsRegular()
}

// Started is called right after a successful fork: it closes the child's
// ends in horust and starts the copiers. onDone (which may be nil) is called
// exactly once, from a copier goroutine (or synchronously when nothing is
// piped), after every copier has reached EOF and written or dropped
// everything it read. EOF comes when every holder of the pipe's write end
// has closed it: the service, and any process it left behind with the same
// stdout. Calls after the first call of Started or Abort do nothing.
func (w *Wiring) Started(onDone func()) {
	if w.done {
		return
	}
	w.done = true
	for _, f := range w.owned {
		f.Close()
	}
	if onDone == nil {
		onDone = func() {}
	}
	if len(w.copiers) == 0 {
		onDone()
		return
	}
	var left atomic.Int32
	left.Store(int32(len(w.copiers)))
	if w.out != nil {
		w.out.started.Store(true)
		w.out.copiers.Add(len(w.copiers))
	}
	for _, c := range w.copiers {
		if w.out != nil {
			c.progress = &w.out.progress
		}
		go func() {
			c.run()
			if left.Add(-1) == 0 {
				onDone()
			}
			if w.out != nil {
				w.out.copiers.Done()
			}
		}()
	}
}

// WhenIdle arranges for fn to be called once, from a copier goroutine, as
// soon as a copier that is now writing to its destination (a slow reader of
// horust's stdout, a slow disk) waits for input again, and reports whether
// it did. It returns false, and registers nothing, when no copier is
// writing: then whatever output is missing has not been read yet, because
// the pipe is empty and something still holds its write end. The
// supervisor uses it to wait for a slow destination as long as it takes,
// but not for a process that escaped the service and keeps its pipe open.
func (w *Wiring) WhenIdle(fn func()) bool {
	for _, c := range w.copiers {
		if !c.writing.Load() {
			continue
		}
		f := &fn
		c.idle.Store(f)
		if c.writing.Load() {
			return true
		}
		// It stopped writing meanwhile: take fn back, unless it already
		// took it (then fn is called).
		if !c.idle.CompareAndSwap(f, nil) {
			return true
		}
	}
	return false
}

// Abort releases everything when the start failed (the fork did not
// happen): files, pipes and chunk files are closed, no copier runs. Calls
// after the first call of Started or Abort do nothing.
func (w *Wiring) Abort() {
	if w.done {
		return
	}
	w.done = true
	for _, f := range w.owned {
		f.Close()
	}
	for _, c := range w.copiers {
		c.sink.abort()
		c.r.Close()
	}
}

// Warnings returns the configuration warnings of svc, to be logged once at
// start-up: settings that have no effect where the output goes.
func Warnings(svc *config.Service) []string {
	so, se := targets(svc)
	isFile := func(t string) bool { return t != toStdout && t != toStderr }
	p := makePlan(svc)
	var ws []string
	rotates := false
	check := func(key, target string, size uint64, keep int, followsOther bool) {
		switch {
		case size > 0 && followsOther:
			other := "stdout"
			if key == "stdout" {
				other = "stderr"
			}
			ws = append(ws, fmt.Sprintf("%s-rotate-size is ignored: %s follows %s", key, key, other))
		case size > 0 && !isFile(target):
			ws = append(ws, fmt.Sprintf("%s-rotate-size is ignored: %s goes to %s, rotation needs a file", key, key, target))
		case size > 0:
			rotates = true
		case keep > 0:
			ws = append(ws, fmt.Sprintf("%s-rotate-keep is ignored without %s-rotate-size", key, key))
		}
	}
	check("stdout", so, svc.StdoutRotateSize, svc.StdoutRotateKeep, so == toStderr && se != toStdout)
	check("stderr", se, svc.StderrRotateSize, svc.StderrRotateKeep, se == toStdout)
	if p.sameFileRots {
		ws = append(ws, "stdout and stderr are the same file: stdout-rotate-size and stdout-rotate-keep apply, stderr-rotate-size and stderr-rotate-keep are ignored")
	}
	if svc.AppendTimestamp && !rotates {
		ws = append(ws, "stdout-should-append-timestamp-to-filename is ignored without rotation")
	}
	if svc.Prefix && isFile(p.outTarget) && (p.shared || isFile(p.errTarget)) {
		ws = append(ws, "stdout-prefix is ignored: no output goes to STDOUT or STDERR")
	}
	return ws
}
