package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/health"
	"github.com/horust-go/horust/internal/proc"
)

// probeState is the health checking of a service's current run. A round
// runs every configured check: the network and file checks in one leaf
// goroutine (Prober), the command check and an https check (horust-probe) as
// children of horust that the loop starts and reaps like any other. The
// round is healthy when all pass.
type probeState struct {
	active   bool      // the run is being checked
	next     time.Time // start of the next round; zero while one is in flight
	round    uint64    // current round; results of older rounds are ignored
	start    time.Time // start of the current round
	inFlight int       // parts of the round still running
	failure  error     // first failure of the current round
	// notRun is why a check of the current round could not be run by
	// horust itself (out of fds or memory): the round then has no result.
	notRun       error
	notRunLogged bool // notRun was logged for this run
	child        [2]childCheck
}

// checkKind is which check runs as a child process of horust.
type checkKind uint8

const (
	cmdCheck   checkKind = iota // the command check
	httpsCheck                  // an https:// http-endpoint, checked by horust-probe
)

// probeProgram is the program of https checks, one of horust's own: it is
// looked for beside horust's executable, then in PATH (docs/design.md,
// "https checks run in horust-probe").
const probeProgram = "horust-probe"

// probeGrace is how long after the check's timeout horust kills
// horust-probe: the program enforces the timeout itself, and its message
// says what timed out (the TLS handshake, the body).
const probeGrace = 500 * time.Millisecond

// childCheck is a check that runs as a child process of horust. The loop
// starts it, kills it at its timeout and reaps it.
type childCheck struct {
	proc     proc.Process // nil when none is running
	due      time.Time    // its timeout (then killRetry after each SIGKILL); zero when done
	late     bool         // it was killed at its timeout
	startErr bool         // it could not be started in this run (logged once)
	// An https check's result is its exit and the line it wrote to
	// stderr; whichever comes first waits for the other.
	exited    bool
	ws        syscall.WaitStatus
	gotStderr bool
	stderr    string
}

// deadline is the probe's next timer deadline, zero for none.
func (p *probeState) deadline() time.Time {
	if !p.active {
		return time.Time{}
	}
	if p.inFlight == 0 {
		return p.next
	}
	var at time.Time
	for _, c := range p.child {
		if !c.due.IsZero() && (at.IsZero() || c.due.Before(at)) {
			at = c.due
		}
	}
	return at
}

// checkRef identifies the round a child check belongs to.
type checkRef struct {
	svc   int
	gen   uint64
	round uint64
	kind  checkKind
}

// msgProbe is the result of the network and file checks of a round.
type msgProbe struct {
	svc   int
	gen   uint64
	round uint64
	err   error
}

// msgDrained says that the output of a run is all copied.
type msgDrained struct {
	svc int
	gen uint64
}

// msgOutputIdle says that the output of a run, which was being written to a
// slow destination, is all written up to what the pipe held.
type msgOutputIdle struct {
	svc int
	gen uint64
}

// startChecks starts health checking for a new run: the first round at
// once, when the service has checks.
func (l *Loop) startChecks(s *service, now time.Time) {
	l.stopChecks(s)
	if !s.cfg.Healthiness.HasChecks() {
		return
	}
	s.probe = probeState{active: true, next: now, round: s.probe.round}
	l.startRound(s, now)
}

// stopChecks ends health checking of the current run; a child check still
// running is killed (its exit is reaped and ignored).
func (l *Loop) stopChecks(s *service) {
	for _, c := range s.probe.child {
		if c.proc != nil {
			_ = c.proc.Signal(syscall.SIGKILL)
		}
	}
	s.probe = probeState{round: s.probe.round + 1, notRunLogged: s.probe.notRunLogged}
}

func (l *Loop) probeTimer(i int, now time.Time) {
	s := l.svcs[i]
	p := &s.probe
	if !p.active {
		return
	}
	if p.inFlight > 0 {
		for k := range p.child {
			c := &p.child[k]
			if c.due.IsZero() || c.due.After(now) {
				continue
			}
			if c.proc == nil {
				// It exited, and its stderr is still open (a process it
				// left holds it): its result is what its exit says.
				l.childDone(s, checkKind(k), now)
				continue
			}
			// Sent again until the check's exit is seen, as for a service.
			c.due = now.Add(killRetry)
			c.late = true
			if err := c.proc.Signal(syscall.SIGKILL); err != nil {
				l.log.Debug("killing a timed-out health check failed; retried", "service", s.cfg.Name, "err", err)
			}
		}
		return
	}
	if !p.next.IsZero() && !p.next.After(now) {
		l.startRound(s, now)
	}
}

// startRound starts one round of checks. Checks run from the start of a run
// (actStartChecks) until it is stopped or its main process exits
// (actStopChecks): step says when.
func (l *Loop) startRound(s *service, now time.Time) {
	p := &s.probe
	h := s.cfg.Healthiness
	p.round++
	p.start, p.next, p.failure, p.notRun, p.inFlight = now, time.Time{}, nil, nil, 0
	inProcess := h
	https := strings.HasPrefix(h.HTTPEndpoint, "https://")
	if https {
		inProcess.HTTPEndpoint = "" // horust-probe checks it
	}
	if inProcess.HTTPEndpoint != "" || h.TCPEndpoint != "" || h.FilePath != "" {
		p.inFlight++
		if l.opt.Prober == nil {
			p.inFlight--
			p.failure = errors.New("no prober for http, tcp and file checks")
		} else {
			i, gen, round := s.idx, s.gen, p.round
			l.opt.Prober.Go(l.ctx, inProcess, func(err error) {
				l.send(msgProbe{svc: i, gen: gen, round: round, err: err})
			})
		}
	}
	if h.Command != "" {
		l.startChild(s, cmdCheck, &config.Service{
			Name:             s.cfg.Name + " (health check)",
			Command:          h.Command,
			Stdout:           "/dev/null",
			Stderr:           "/dev/null",
			WorkingDirectory: "",
			Environment:      config.Environment{KeepEnv: true},
		}, proc.StartOptions{Check: true}, now.Add(h.Timeout))
	}
	if https {
		ref := checkRef{svc: s.idx, gen: s.gen, round: p.round, kind: httpsCheck}
		l.startChild(s, httpsCheck, &config.Service{
			Name: s.cfg.Name + " (https check)",
			Argv: []string{probeProgram, "--timeout", h.Timeout.String(), h.HTTPEndpoint},
		}, proc.StartOptions{Check: true, Own: true, CheckStderr: func(line string) {
			l.send(msgCheckStderr{ref: ref, line: line})
		}}, now.Add(h.Timeout+probeGrace))
	}
	if p.inFlight == 0 {
		l.roundDone(s, now)
	}
}

// startChild starts the child check k of the current round, to be killed at
// due.
func (l *Loop) startChild(s *service, k checkKind, chk *config.Service, o proc.StartOptions, due time.Time) {
	p := &s.probe
	c := &p.child[k]
	cp, err := l.opt.OS.Start(chk, o)
	switch {
	case err != nil && health.CouldNotRun(err):
		p.notRun = fmt.Errorf("%s: %w", checkName(s, k), err)
	case err != nil:
		// A configuration problem, not a service that is slow: say it at
		// the default log level, once per run.
		if !c.startErr {
			c.startErr = true
			if k == cmdCheck {
				l.log.Error("health-check command cannot be started; the service's checks fail until it can", "service", s.cfg.Name, "command", chk.Command, "err", err)
			} else {
				l.log.Error("horust-probe, which checks https endpoints, cannot be started; the service's checks fail until it can", "service", s.cfg.Name, "err", err)
			}
		}
		if p.failure == nil {
			p.failure = fmt.Errorf("%s: %w", checkName(s, k), err)
		}
	default:
		p.inFlight++
		*c = childCheck{proc: cp, due: due, startErr: c.startErr}
		l.checks[cp.Pid()] = checkRef{svc: s.idx, gen: s.gen, round: p.round, kind: k}
	}
}

// checkName names the child check k in its messages.
func checkName(s *service, k checkKind) string {
	if k == cmdCheck {
		return "command check"
	}
	return "http-endpoint " + s.cfg.Healthiness.HTTPEndpoint
}

func (l *Loop) onProbe(m msgProbe, now time.Time) {
	s := l.svcs[m.svc]
	p := &s.probe
	if m.gen != s.gen || m.round != p.round || !p.active {
		return
	}
	p.inFlight--
	l.noteResult(p, m.err)
	if p.inFlight == 0 {
		l.roundDone(s, now)
	}
}

// current returns the child check ref is about, nil when ref is of an
// earlier round or run, or the check is already done.
func (l *Loop) current(ref checkRef) *childCheck {
	s := l.svcs[ref.svc]
	p := &s.probe
	c := &p.child[ref.kind]
	if ref.gen != s.gen || ref.round != p.round || !p.active || (c.proc == nil && !c.exited) {
		return nil
	}
	return c
}

func (l *Loop) onCheckExit(ref checkRef, ws syscall.WaitStatus, now time.Time) {
	c := l.current(ref)
	if c == nil || c.proc == nil {
		return
	}
	c.proc.Exited(ws)
	if c.proc.Alive() { // what a check leaves behind is not worth a grace period
		_ = c.proc.Signal(syscall.SIGKILL)
	}
	c.proc, c.exited, c.ws = nil, true, ws
	if ref.kind == httpsCheck && !c.gotStderr {
		// Its stderr closes at its exit; a process it left may hold it:
		// its result waits at most this long for the line.
		c.due = now.Add(killRetry)
		return
	}
	l.childDone(l.svcs[ref.svc], ref.kind, now)
}

// msgCheckStderr is the line an https check (horust-probe) wrote to its
// stderr, sent when that closed.
type msgCheckStderr struct {
	ref  checkRef
	line string
}

func (l *Loop) onCheckStderr(m msgCheckStderr, now time.Time) {
	c := l.current(m.ref)
	if c == nil || c.gotStderr {
		return
	}
	c.gotStderr, c.stderr = true, m.line
	if c.exited {
		l.childDone(l.svcs[m.ref.svc], m.ref.kind, now)
	}
}

// childDone ends the child check k of the current round with what its exit
// (and, for an https check, its stderr) says.
func (l *Loop) childDone(s *service, k checkKind, now time.Time) {
	p := &s.probe
	c := &p.child[k]
	name, timeout := checkName(s, k), s.cfg.Healthiness.Timeout
	ws, line := c.ws, c.stderr
	var err error
	switch code := proc.ExitCode(ws); {
	case c.late && k == cmdCheck:
		err = fmt.Errorf("command check timed out after %s", timeout)
	case c.late:
		err = fmt.Errorf("%s: timed out after %s", name, timeout)
	case code == 0:
	case k == cmdCheck:
		err = fmt.Errorf("command check exited with code %d", code)
	case code == probeCouldNotRun:
		err = fmt.Errorf("%s: %w: %s", name, health.ErrCouldNotRun, line)
	case line != "":
		err = fmt.Errorf("%s: %s", name, line)
	case ws.Signaled():
		err = fmt.Errorf("%s: %s killed by signal %s", name, probeProgram, config.SignalName(ws.Signal()))
	default:
		err = fmt.Errorf("%s: %s exited with code %d", name, probeProgram, code)
	}
	*c = childCheck{startErr: c.startErr}
	p.inFlight--
	l.noteResult(p, err)
	if p.inFlight == 0 {
		l.roundDone(s, now)
	}
}

// probeCouldNotRun is horust-probe's exit code when it could not run the
// check (out of file descriptors or memory): not the service's failure.
const probeCouldNotRun = 3

// noteResult keeps the result of one part of the round: the first failure,
// or that horust could not run the check.
func (l *Loop) noteResult(p *probeState, err error) {
	switch {
	case err == nil:
	case health.CouldNotRun(err):
		p.notRun = err
	case p.failure == nil:
		p.failure = err
	}
}

// roundDone feeds a round's result to step (EvRoundPassed, EvRoundFailed)
// and schedules the next round.
func (l *Loop) roundDone(s *service, now time.Time) {
	p := &s.probe
	p.next = p.start.Add(s.cfg.Healthiness.Interval)
	if p.next.Before(now) {
		p.next = now
	}
	if p.failure == nil && p.notRun != nil {
		// Horust could not run a check: that says nothing about the
		// service, so the round has no result (docs/design.md, resource
		// exhaustion). Said once per service until a round runs again.
		if !p.notRunLogged {
			p.notRunLogged = true
			l.log.Warn("health check could not be run by horust; not counted against the service", "service", s.cfg.Name, "err", p.notRun)
		}
		return
	}
	p.notRunLogged = false
	if p.failure == nil {
		l.apply(s.idx, input{ev: EvRoundPassed}, now)
		return
	}
	if s.Checks != checksFailed || s.State == Running {
		level := slog.LevelWarn
		if s.State == Started && errors.Is(p.failure, fs.ErrNotExist) {
			// A file-path check's file not made yet is how a starting
			// service looks; start-timeout, if any, reports the start that
			// never gets there.
			level = slog.LevelDebug
		}
		l.log.Log(l.ctx, level, "health check failed", "service", s.cfg.Name, "state", s.State.String(), "err", p.failure)
	}
	l.apply(s.idx, input{ev: EvRoundFailed}, now)
}

// Notify hands a message of the notify socket to the loop. It is called
// from the notify socket's goroutine.
func (l *Loop) Notify(m health.NotifyMessage) {
	l.send(msgNotify{m: m})
}

// msgNotify is a message of the notify socket.
type msgNotify struct {
	m health.NotifyMessage
}

func (l *Loop) onNotify(n msgNotify, now time.Time) {
	for _, s := range l.svcs {
		if !s.cfg.Healthiness.Notify || !s.live() {
			continue
		}
		if !n.m.From(s.PID) {
			continue
		}
		if n.m.Status != "" {
			s.notifyStatus = n.m.Status
		}
		if n.m.Ready && !s.Ready {
			l.log.Info("service sent READY=1", "service", s.cfg.Name, "pid", n.m.PID)
			l.apply(s.idx, input{ev: EvReady}, now)
		}
		return
	}
	l.log.Debug("notify message from a process that is no service's: ignored", "pid", n.m.PID)
}
