package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/health"
	"github.com/horust-go/horust/internal/proc"
)

// probeState is the health checking of a service's current run. A round
// runs every configured check: the network and file checks in one leaf
// goroutine (Prober), the command check as a child of horust that the loop
// starts and reaps like any other. The round is healthy when all pass.
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
	cmd          proc.Process
	cmdDue       time.Time // the command check's timeout
	cmdLate      bool      // the command check was killed at its timeout
	cmdErr       bool      // the command check could not be started in this run (logged)
	last         int8      // last round: 0 none yet, 1 healthy, -1 unhealthy
}

// deadline is the probe's next timer deadline, zero for none.
func (p *probeState) deadline() time.Time {
	if !p.active {
		return time.Time{}
	}
	if p.inFlight > 0 {
		return p.cmdDue
	}
	return p.next
}

// checkRef identifies the round a health-check command belongs to.
type checkRef struct {
	svc   int
	gen   uint64
	round uint64
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

// stopChecks ends health checking of the current run; a command check still
// running is killed (its exit is reaped and ignored).
func (l *Loop) stopChecks(s *service) {
	if s.probe.cmd != nil {
		_ = s.probe.cmd.Signal(syscall.SIGKILL)
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
		if p.cmd != nil && !p.cmdDue.IsZero() && !p.cmdDue.After(now) {
			// Sent again until the check's exit is seen, as for a service.
			p.cmdDue = now.Add(killRetry)
			p.cmdLate = true
			if err := p.cmd.Signal(syscall.SIGKILL); err != nil {
				l.log.Debug("killing a timed-out health-check command failed; retried", "service", s.cfg.Name, "err", err)
			}
		}
		return
	}
	if !p.next.IsZero() && !p.next.After(now) {
		l.startRound(s, now)
	}
}

// startRound starts one round of checks. Only a live run that is not being
// stopped is checked.
func (l *Loop) startRound(s *service, now time.Time) {
	p := &s.probe
	if s.State != Started && s.State != Running {
		p.next = time.Time{}
		return
	}
	h := s.cfg.Healthiness
	p.round++
	p.start, p.next, p.failure, p.notRun, p.inFlight, p.cmdLate = now, time.Time{}, nil, nil, 0, false
	if h.HTTPEndpoint != "" || h.TCPEndpoint != "" || h.FilePath != "" {
		p.inFlight++
		if l.opt.Prober == nil {
			p.inFlight--
			p.failure = errors.New("no prober for http, tcp and file checks")
		} else {
			i, gen, round := s.idx, s.gen, p.round
			l.opt.Prober.Go(l.ctx, h, func(err error) {
				l.send(msgProbe{svc: i, gen: gen, round: round, err: err})
			})
		}
	}
	if h.Command != "" {
		chk := &config.Service{
			Name:             s.cfg.Name + " (health check)",
			Command:          h.Command,
			Stdout:           "/dev/null",
			Stderr:           "/dev/null",
			WorkingDirectory: "",
			Environment:      config.Environment{KeepEnv: true},
		}
		c, err := l.opt.OS.Start(chk, proc.StartOptions{Check: true})
		switch {
		case err != nil && health.CouldNotRun(err):
			p.notRun = fmt.Errorf("command check: %w", err)
		case err != nil:
			// A configuration problem, not a service that is slow: say it
			// at the default log level, once per run.
			if !p.cmdErr {
				p.cmdErr = true
				l.log.Error("health-check command cannot be started; the service's checks fail until it can", "service", s.cfg.Name, "command", h.Command, "err", err)
			}
			if p.failure == nil {
				p.failure = fmt.Errorf("command check: %w", err)
			}
		default:
			p.inFlight++
			p.cmd = c
			p.cmdDue = now.Add(h.Timeout)
			l.checks[c.Pid()] = checkRef{svc: s.idx, gen: s.gen, round: p.round}
		}
	}
	if p.inFlight == 0 {
		l.roundDone(s, now)
	}
}

func (l *Loop) onProbe(m msgProbe, now time.Time) {
	s := l.svcs[m.svc]
	p := &s.probe
	if m.gen != s.gen || m.round != p.round || !p.active {
		return
	}
	p.inFlight--
	switch {
	case m.err == nil:
	case health.CouldNotRun(m.err):
		p.notRun = m.err
	case p.failure == nil:
		p.failure = m.err
	}
	if p.inFlight == 0 {
		l.roundDone(s, now)
	}
}

func (l *Loop) onCheckExit(ref checkRef, ws syscall.WaitStatus, now time.Time) {
	s := l.svcs[ref.svc]
	p := &s.probe
	if ref.gen != s.gen || ref.round != p.round || !p.active || p.cmd == nil {
		return
	}
	p.cmd.Exited(ws)
	if p.cmd.Alive() { // what a check leaves behind is not worth a grace period
		_ = p.cmd.Signal(syscall.SIGKILL)
	}
	p.cmd, p.cmdDue = nil, time.Time{}
	p.inFlight--
	if p.failure == nil {
		switch {
		case p.cmdLate:
			p.failure = fmt.Errorf("command check timed out after %s", s.cfg.Healthiness.Timeout)
		case proc.ExitCode(ws) != 0:
			p.failure = fmt.Errorf("command check exited with code %d", proc.ExitCode(ws))
		}
	}
	if p.inFlight == 0 {
		l.roundDone(s, now)
	}
}

// roundDone feeds a round's result to step and schedules the next round.
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
	healthy := p.failure == nil
	if healthy {
		p.last = 1
	} else {
		if p.last != -1 || s.State == Running {
			level := slog.LevelWarn
			if s.State == Started && errors.Is(p.failure, fs.ErrNotExist) {
				// A file-path check's file not made yet is how a starting
				// service looks; start-timeout, if any, reports the start
				// that never gets there.
				level = slog.LevelDebug
			}
			l.log.Log(l.ctx, level, "health check failed", "service", s.cfg.Name, "state", s.State.String(), "err", p.failure)
		}
		p.last = -1
	}
	l.healthResult(s, now)
}

// healthResult turns the current health of a run into an event.
func (l *Loop) healthResult(s *service, now time.Time) {
	switch {
	case s.probe.last == -1:
		l.apply(s.idx, input{ev: EvUnhealthy}, now)
	case s.healthy():
		l.apply(s.idx, input{ev: EvHealthy}, now)
	}
}

// healthy reports whether the current run is healthy: its last round of
// checks passed (when it has checks) and READY=1 arrived (with notify). It
// is the one place that says so.
func (s *service) healthy() bool {
	h := s.cfg.Healthiness
	return (!h.Notify || s.ready) && (!h.HasChecks() || s.probe.last == 1)
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
		if !s.cfg.Healthiness.Notify || s.proc == nil || !s.State.Alive() {
			continue
		}
		if !n.m.From(s.PID) {
			continue
		}
		if n.m.Status != "" {
			s.notifyStatus = n.m.Status
		}
		if n.m.Ready && !s.ready {
			s.ready = true
			l.log.Info("service sent READY=1", "service", s.cfg.Name, "pid", n.m.PID)
			if s.State == Started && s.healthy() {
				l.apply(s.idx, input{ev: EvHealthy}, now)
			}
		}
		return
	}
	l.log.Debug("notify message from a process that is no service's: ignored", "pid", n.m.PID)
}
