package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/server"
	"github.com/horust-go/horust/internal/status"
)

// Loop implements server.Backend: every method is one request to the loop
// with a buffered reply, so a client that goes away never blocks the loop.
var _ server.Backend = (*Loop)(nil)

type reqKind uint8

const (
	reqList reqKind = iota
	reqGet
	reqStart
	reqStop
	reqRestart
	reqSignal
	reqShutdown
	reqWait
	reqReload
	reqConfig        // the configuration's generation and last reload
	reqServiceConfig // one service's configuration (for the logs endpoint)
)

type request struct {
	kind   reqKind
	name   string
	names  []string
	sig    syscall.Signal
	cond   control.WaitFor
	ctx    context.Context
	reload *reloadInput
	reply  chan reply // buffered: the loop never blocks on it
}

type reply struct {
	list   []status.ServiceStatus
	plan   control.ReloadReply
	config control.ConfigStatus
	svc    *config.Service // reqServiceConfig
	err    error
}

func (l *Loop) ask(ctx context.Context, r request) ([]status.ServiceStatus, error) {
	rep, err := l.exchange(ctx, r)
	return rep.list, err
}

// exchange sends r to the loop and waits for its reply, for the loop to
// return or for ctx.
func (l *Loop) exchange(ctx context.Context, r request) (reply, error) {
	r.ctx = ctx
	r.reply = make(chan reply, 1)
	select {
	case l.inbox <- r:
	case <-l.done:
		return reply{}, control.ErrExiting
	case <-ctx.Done():
		return reply{}, l.gone(ctx)
	}
	select {
	case rep := <-r.reply:
		return rep, rep.err
	case <-l.done:
	case <-ctx.Done():
	}
	// The loop may have answered just before it returned or ctx ended (a
	// wait answered in the loop's last iteration, as horust exits): an
	// answer wins.
	select {
	case rep := <-r.reply:
		return rep, rep.err
	default:
	}
	return reply{}, l.gone(ctx)
}

// gone is why a request got no answer: ErrExiting once the loop has
// returned, even if ctx ended too (the control server cancels its requests
// when horust exits, which is after the loop returned), else ctx's error.
func (l *Loop) gone(ctx context.Context) error {
	select {
	case <-l.done:
		return control.ErrExiting
	default:
		return ctx.Err()
	}
}

func (l *Loop) one(ctx context.Context, r request) (status.ServiceStatus, error) {
	list, err := l.ask(ctx, r)
	if err != nil {
		return status.ServiceStatus{}, err
	}
	if len(list) != 1 {
		return status.ServiceStatus{}, errors.New("no status in the reply")
	}
	return list[0], nil
}

// List implements server.Backend.
func (l *Loop) List(ctx context.Context) ([]status.ServiceStatus, error) {
	return l.ask(ctx, request{kind: reqList})
}

// Get implements server.Backend.
func (l *Loop) Get(ctx context.Context, name string) (status.ServiceStatus, error) {
	return l.one(ctx, request{kind: reqGet, name: name})
}

// Start implements server.Backend.
func (l *Loop) Start(ctx context.Context, name string) (status.ServiceStatus, error) {
	return l.one(ctx, request{kind: reqStart, name: name})
}

// Stop implements server.Backend.
func (l *Loop) Stop(ctx context.Context, name string) (status.ServiceStatus, error) {
	return l.one(ctx, request{kind: reqStop, name: name})
}

// Restart implements server.Backend.
func (l *Loop) Restart(ctx context.Context, name string) (status.ServiceStatus, error) {
	return l.one(ctx, request{kind: reqRestart, name: name})
}

// Signal implements server.Backend.
func (l *Loop) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	_, err := l.ask(ctx, request{kind: reqSignal, name: name, sig: sig})
	return err
}

// Shutdown implements server.Backend.
func (l *Loop) Shutdown(ctx context.Context) error {
	_, err := l.ask(ctx, request{kind: reqShutdown})
	return err
}

// Wait implements server.Backend.
func (l *Loop) Wait(ctx context.Context, names []string, cond control.WaitFor) ([]status.ServiceStatus, error) {
	list, err := l.ask(ctx, request{kind: reqWait, names: names, cond: cond})
	if errors.Is(err, control.ErrExiting) && cond == control.WaitFinished {
		// The loop returned before it saw the wait (a wait sent as the
		// last service ends): every service has ended then, so a wait
		// for their end is answered with how they ended.
		if final, ok := l.finalStatus(names); ok {
			return final, nil
		}
	}
	return list, err
}

// finalStatus is the status of the named services as Run returned; ok is
// false before Run has returned or for a name the loop did not have.
func (l *Loop) finalStatus(names []string) ([]status.ServiceStatus, bool) {
	select {
	case <-l.done:
	default:
		return nil, false
	}
	list := make([]status.ServiceStatus, len(names))
	for i, n := range names {
		st, ok := l.final[n]
		if !ok {
			return nil, false
		}
		list[i] = st
	}
	return list, true
}

// ServiceConfig returns the configuration of the named service (or an error
// wrapping control.ErrNotFound), as the loop uses it now. The logs endpoint
// asks it where the service's output goes; the caller reads it and does not
// change it.
func (l *Loop) ServiceConfig(ctx context.Context, name string) (*config.Service, error) {
	rep, err := l.exchange(ctx, request{kind: reqServiceConfig, name: name})
	return rep.svc, err
}

// message is what leaf goroutines send the loop: a closed set of types
// (the msg* types and request), each handled by the loop in its own method.
type message interface {
	handle(l *Loop, now time.Time)
}

func (m msgDrained) handle(l *Loop, now time.Time) {
	if m.gen != l.svcs[m.svc].gen {
		return
	}
	l.checkLeftovers(m.svc, now)
	l.apply(m.svc, input{ev: EvDrained}, now)
}

func (m msgOutputIdle) handle(l *Loop, now time.Time) {
	if m.gen == l.svcs[m.svc].gen {
		l.apply(m.svc, input{ev: EvOutputIdle}, now)
	}
}

func (m msgProbe) handle(l *Loop, now time.Time)       { l.onProbe(m, now) }
func (m msgCheckStderr) handle(l *Loop, now time.Time) { l.onCheckStderr(m, now) }
func (m msgNotify) handle(l *Loop, now time.Time)      { l.onNotify(m, now) }
func (r request) handle(l *Loop, now time.Time)        { l.onRequest(r, now) }

func (l *Loop) onRequest(r request, now time.Time) {
	answer := func(list []status.ServiceStatus, err error) { r.reply <- reply{list: list, err: err} }
	switch r.kind {
	case reqList:
		list := make([]status.ServiceStatus, 0, len(l.svcs))
		for i, s := range l.svcs {
			if !s.gone {
				list = append(list, l.status(i, now))
			}
		}
		answer(list, nil)
		return
	case reqReload:
		l.onReload(r, now)
		return
	case reqConfig:
		r.reply <- reply{config: l.configStatus()}
		return
	}
	if r.kind == reqShutdown {
		l.log.Warn("shutdown requested through the control socket")
		l.beginShutdown(graceful, now)
		answer(nil, nil)
		return
	}
	if r.kind == reqWait {
		w := &waiter{req: r}
		for _, n := range r.names {
			i, ok := l.byName[n]
			if !ok {
				answer(nil, notFound(n))
				return
			}
			w.svcs = append(w.svcs, i)
		}
		l.waiters = append(l.waiters, w)
		return // answered by answerWaiters
	}
	i, ok := l.byName[r.name]
	if !ok {
		answer(nil, notFound(r.name))
		return
	}
	s := l.svcs[i]
	switch r.kind {
	case reqServiceConfig:
		r.reply <- reply{svc: s.cfg}
		return
	case reqStart, reqRestart:
		ev, verb := EvStartReq, "start"
		if r.kind == reqRestart {
			ev, verb = EvRestartReq, "restart"
		}
		if l.shutdown != notShuttingDown {
			answer(nil, fmt.Errorf("cannot %s '%s': %w", verb, s.cfg.Name, control.ErrShuttingDown))
			return
		}
		l.log.Info("requested through the control socket", "service", s.cfg.Name, "event", ev.String())
		l.apply(i, input{ev: ev}, now)
		l.advance(now)
	case reqStop:
		l.log.Info("stop requested through the control socket", "service", s.cfg.Name)
		l.apply(i, input{ev: EvStop, why: "stopped through the control socket"}, now)
	case reqSignal:
		if !s.live() {
			answer(nil, fmt.Errorf("cannot signal '%s': %w (%s)", s.cfg.Name, control.ErrNotRunning, s.State.API()))
			return
		}
		if err := s.proc.Signal(r.sig); err != nil {
			answer(nil, fmt.Errorf("signal '%s': %w", s.cfg.Name, err))
			return
		}
	}
	answer([]status.ServiceStatus{l.status(i, now)}, nil)
}

// notFound is the error for a name that no service has: "no such service 'x'".
func notFound(name string) error {
	return fmt.Errorf("%w '%s'", control.ErrNotFound, name)
}

// status is what the API shows of one service.
func (l *Loop) status(i int, now time.Time) status.ServiceStatus {
	s := l.svcs[i]
	st := status.ServiceStatus{
		Name:           s.cfg.Name,
		State:          s.State,
		Oneshot:        s.cfg.Oneshot,
		PID:            s.PID,
		Restarts:       s.Restarts,
		HealthFailures: s.HealthFailsTotal,
		Reason:         s.Reason,
	}
	if s.State == Starting && !s.Due.IsZero() {
		st.NextStart = s.Due
	}
	if st.QuickExits = s.QuickExits; s.QuickExits >= 2 && !st.NextStart.IsZero() {
		st.Reason = fmt.Sprintf("crash loop: %d quick exits in a row, next start in %s", s.QuickExits, st.NextStart.Sub(now).Round(100*time.Millisecond))
	}
	if s.Exit.Valid {
		code := s.Exit.Code
		st.LastExitCode = &code
		if s.Exit.Signal != 0 {
			st.LastSignal = signalName(s.Exit.Signal)
		}
	}
	if s.State.Alive() && !s.StartedAt.IsZero() {
		st.StartedAt = s.StartedAt
		st.UptimeSeconds = now.Sub(s.StartedAt).Seconds()
	}
	if s.cfg.Healthiness.HasChecks() {
		switch {
		case !s.State.Alive():
		case s.Checks == checksPassed:
			st.Health = "healthy"
		case s.Checks == checksFailed:
			st.Health = "unhealthy"
		default:
			st.Health = "unknown"
		}
	}
	if s.cfg.Healthiness.Notify {
		st.Notify = &status.NotifyStatus{Ready: s.Ready, Status: s.notifyStatus}
	}
	if l.opt.OutputStats != nil {
		st.OutputCopied, st.OutputDropped = l.opt.OutputStats(s.cfg.Name)
	}
	return st
}

// waiter is a pending horustctl wait.
type waiter struct {
	req  request
	svcs []int
}

// answerWaiters answers the waits whose condition is met (or can no longer
// be) and forgets those whose client went away.
func (l *Loop) answerWaiters(now time.Time) {
	if len(l.waiters) == 0 {
		return
	}
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if w.req.ctx.Err() != nil {
			continue
		}
		met, err := true, error(nil)
		for _, i := range w.svcs {
			s := l.svcs[i]
			switch w.req.cond {
			case control.WaitFinished:
				met = met && s.State.Terminal()
			default: // running
				switch {
				case s.State.Up(s.cfg.Oneshot):
				case s.State == FinishedFailed:
					err = fmt.Errorf("%w: '%s' is FINISHEDFAILED", control.ErrUnreachable, s.cfg.Name)
				case l.shutdown != notShuttingDown:
					err = fmt.Errorf("%w: horust is shutting down", control.ErrUnreachable)
				default:
					met = false
				}
			}
		}
		if err == nil && !met {
			kept = append(kept, w)
			continue
		}
		list := make([]status.ServiceStatus, len(w.svcs))
		for k, i := range w.svcs {
			list[k] = l.status(i, now)
		}
		w.req.reply <- reply{list: list, err: err}
	}
	clear(l.waiters[len(kept):])
	l.waiters = kept
}

// failWaiters answers the waits still pending when the loop returns with
// an error that wraps control.ErrExiting (the API's 503).
func (l *Loop) failWaiters(err error) {
	if !errors.Is(err, control.ErrExiting) {
		err = fmt.Errorf("%w: %v", control.ErrExiting, err)
	}
	for _, w := range l.waiters {
		w.req.reply <- reply{err: err}
	}
	l.waiters = nil
}
