package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/proc"
	"github.com/horust-go/horust/internal/status"
)

// Prober runs the network and file checks of a service in a leaf goroutine
// and calls done with the result (nil: healthy). health.Prober is the real
// one. An https:// http-endpoint is not given to it: the loop runs
// horust-probe for it, as a child check.
type Prober interface {
	Go(ctx context.Context, h config.Healthiness, done func(error))
}

// Options configure a Loop.
type Options struct {
	OS       proc.OS
	Log      *slog.Logger
	Services []*config.Service // in start order (config.Load returns them so)
	Prober   Prober            // nil: services with http/tcp/file checks never pass them
	// PrepareCheckFile deletes a file-path check's file before a start; nil
	// does nothing.
	PrepareCheckFile func(path string) error
	// NotifySocket is the NOTIFY_SOCKET value given to services with
	// notify = true ("" when there is no notify socket).
	NotifySocket string
	// OneShot is horust -- CMD: the first TERM or INT is passed on to the
	// command as it is, and the command's exit code is horust's.
	OneShot bool
	// Foreground starts the one-shot command in the terminal's foreground.
	Foreground bool
	// Forward lists the signals passed on to every running service.
	Forward []os.Signal
	// OutputStats, when not nil, gives a service's output counters (bytes
	// copied and dropped by horust) for status queries.
	OutputStats func(name string) (copied, dropped uint64)
	// Settled, when not nil, is called once, the first time the loop has
	// nothing to do right away (everything startable is started).
	Settled func()
	// Global is horust.toml as loaded at start.
	Global config.Global
	// Load loads and validates the configuration again, from the paths
	// and with the templating of the start, for a reload (SIGHUP,
	// horustctl reload, --watch); nil in one-shot mode. It is called off
	// the loop.
	Load func() (Configuration, error)
}

// shutdownMode is the lifecycle of horust.
type shutdownMode uint8

const (
	notShuttingDown shutdownMode = iota
	graceful
	forceful
)

// Loop is the supervisor: the single owner of all service state. Create it
// with New, run it with Run; its Backend methods may be called from any
// goroutine.
type Loop struct {
	opt    Options
	log    *slog.Logger
	svcs   []*service
	byName map[string]int
	pids   map[int]int      // main pid → service
	checks map[int]checkRef // health-check command pid → its round

	inbox chan message
	done  chan struct{} // closed when Run returns
	ctx   context.Context
	stop  context.CancelFunc

	shutdown   shutdownMode
	stopSignal syscall.Signal // one-shot: the signal that asked horust to stop
	timer      *time.Timer
	timerAt    time.Time
	waiters    []*waiter
	started    time.Time
	// final is every service's status as Run returned, by name; it is
	// read only once done is closed.
	final map[string]status.ServiceStatus

	cfgState  reloadState
	reloading chan struct{} // holds a token while a reload is loaded and applied
}

// service is one service: its configuration, the step state and what the
// loop keeps beside it.
type service struct {
	idx int
	cfg *config.Service
	record
	proc  proc.Process // the current run, until it is over (also while it is ending)
	gen   uint64       // incremented at every start; stale messages carry an older one
	probe probeState
	// notifyStatus is the current run's last STATUS= on the notify socket.
	notifyStatus string
	spawnErr     error
	// signalFailed: a signal to the current run failed (logged once).
	signalFailed bool
	reloadSlot

	deps          []int // start-after
	shutdownAfter []int
	dependents    []int // services whose start-after names this one
	dieWith       []int // services whose die-if-failed names this one
}

// New builds a loop for the services. Names in start-after, shutdown-after
// and die-if-failed must have been validated (config.Load does).
func New(opt Options) *Loop {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Loop{
		opt:    opt,
		log:    opt.Log,
		byName: make(map[string]int, len(opt.Services)),
		pids:   make(map[int]int, len(opt.Services)),
		checks: make(map[int]checkRef),
		inbox:  make(chan message, 64),
		done:   make(chan struct{}),
		ctx:    ctx,
		stop:   cancel,

		cfgState:  reloadState{generation: 1, loadedAt: time.Now(), global: opt.Global},
		reloading: make(chan struct{}, 1),
	}
	for i, c := range opt.Services {
		l.svcs = append(l.svcs, &service{idx: i, cfg: c})
		l.byName[c.Name] = i
	}
	l.link()
	return l
}

// Signals are the channels the loop hears the kernel's signals on. Each
// kind has a channel of its own because os/signal drops a signal when its
// channel is full: a flood of SIGCHLD from services restarting in a loop
// must never crowd out the SIGTERM that stops horust.
type Signals struct {
	// Child carries SIGCHLD. One pending wake-up is enough: every wake-up
	// reaps until nothing is left, so a capacity of 1 loses nothing.
	Child <-chan os.Signal
	// Stop carries TERM and INT. A pending stop is handled before any
	// other event.
	Stop <-chan os.Signal
	// Other carries the forwarded signals.
	Other <-chan os.Signal
}

// Run supervises until every service is Finished or FinishedFailed.
func (l *Loop) Run(sigs Signals) {
	defer close(l.done)
	defer l.stop()
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	l.started = time.Now()
	// Children may exist before the first start (horust as PID 1 in an
	// image whose entrypoint forked): collect them first.
	l.reapAll(time.Now())
	for {
		now := time.Now()
		// Waits are answered before advance forks the services that an
		// event made startable, and again after it.
		l.answerWaiters(now)
		l.reloadStep(now)
		l.advance(now)
		l.answerWaiters(now)
		if l.finished() {
			break
		}
		l.armTimer(now)
		if settled := l.opt.Settled; settled != nil {
			l.opt.Settled = nil
			settled()
		}
		// A stop waiting beside other events goes first: select picks at
		// random among ready cases, and a busy loop must not delay it.
		select {
		case sig := <-sigs.Stop:
			l.onSignal(sig, time.Now())
			continue
		default:
		}
		select {
		case sig := <-sigs.Stop:
			l.onSignal(sig, time.Now())
		case <-sigs.Child:
			l.reapAll(time.Now())
		case sig := <-sigs.Other:
			l.onSignal(sig, time.Now())
		case m := <-l.inbox:
			m.handle(l, time.Now())
		case <-l.timer.C:
			l.timerAt = time.Time{}
			l.onTimer(time.Now())
		}
	}
	l.timer.Stop()
	for pid := range l.checks {
		_ = proc.SignalGroup(pid, syscall.SIGKILL)
	}
	now := time.Now()
	l.final = make(map[string]status.ServiceStatus, len(l.svcs))
	for i, s := range l.svcs {
		if !s.gone {
			l.final[s.cfg.Name] = l.status(i, now)
		}
	}
	l.failWaiters(errors.New("horust exited"))
}

// finished reports whether horust is done: every service is Finished or
// FinishedFailed.
func (l *Loop) finished() bool {
	for _, s := range l.svcs {
		if !s.State.Terminal() {
			return false
		}
	}
	return true
}

// send delivers a message to the loop from a leaf goroutine. It gives up
// when the loop has returned.
func (l *Loop) send(m message) bool {
	select {
	case l.inbox <- m:
		return true
	case <-l.done:
		return false
	}
}

func (l *Loop) onSignal(sig os.Signal, now time.Time) {
	s, _ := sig.(syscall.Signal)
	switch s {
	case syscall.SIGTERM, syscall.SIGINT:
		if l.shutdown == notShuttingDown {
			l.log.Warn("signal received: shutting down gracefully", "signal", config.SignalName(s))
			if l.opt.OneShot {
				l.stopSignal = s
			}
			l.beginShutdown(graceful, now)
		} else {
			l.log.Warn("second signal received: killing every service", "signal", config.SignalName(s))
			l.beginShutdown(forceful, now)
		}
	case syscall.SIGHUP:
		if !l.opt.OneShot {
			// In service mode SIGHUP reloads the configuration
			// (docs/configuration.md, "Reload"); forwarded, it killed
			// every service that does not handle it.
			l.Trigger("SIGHUP")
			return
		}
		l.forward(sig)
	default:
		l.forward(sig)
	}
}

// forward passes a signal on to every running service, when it is one of
// Options.Forward.
func (l *Loop) forward(sig os.Signal) {
	if !slices.Contains(l.opt.Forward, sig) {
		return
	}
	s, _ := sig.(syscall.Signal)
	for _, sv := range l.svcs {
		if sv.live() {
			if err := sv.proc.Signal(s); err != nil {
				l.log.Error("forwarding signal failed", "service", sv.cfg.Name, "signal", config.SignalName(s), "err", err)
			}
		}
	}
}

// beginShutdown starts (or makes forceful) the shutdown. advance does the
// ordering: Initial and Starting services finish at once, running ones are
// stopped once their shutdown-after services are done.
func (l *Loop) beginShutdown(mode shutdownMode, now time.Time) {
	if mode <= l.shutdown {
		return
	}
	l.shutdown = mode
	if mode == forceful {
		for i, s := range l.svcs {
			if s.State.Alive() {
				l.apply(i, input{ev: EvForceKill}, now)
			}
		}
	}
}

// reapAll collects every exited child.
func (l *Loop) reapAll(now time.Time) {
	for {
		pid, ws, ok := l.opt.OS.Reap()
		if !ok {
			break
		}
		if i, ok := l.pids[pid]; ok {
			delete(l.pids, pid)
			l.onExit(i, ws, now)
		} else if ref, ok := l.checks[pid]; ok {
			delete(l.checks, pid)
			l.onCheckExit(ref, ws, now)
		}
		// Anything else is an orphan that horust adopted: reaped, done.
		// It may have been the last process of a run that is over.
	}
	for i := range l.svcs {
		l.checkLeftovers(i, now)
	}
}

// live reports whether the service's current run has a main process.
func (s *service) live() bool { return s.proc != nil && !s.End.Seen }

// onExit feeds the exit of a service's main process to step, saying
// whether processes it started are still there. The run is over, for step,
// only once its output is copied and nothing it started is left: a shell
// wrapper that dies first must not cut short the graceful stop of the
// program it started.
func (l *Loop) onExit(i int, ws syscall.WaitStatus, now time.Time) {
	s := l.svcs[i]
	e := exitInfo{Valid: true, PID: s.PID, Code: proc.ExitCode(ws), Why: s.proc.Exited(ws)}
	if ws.Signaled() {
		e.Signal = ws.Signal()
	}
	ev := EvMainExit
	if s.proc.Alive() {
		ev = EvMainExitLeft
	}
	l.apply(i, input{ev: ev, exit: e}, now)
}

// checkLeftovers tells step when the last process that an ending run left
// is gone. The loop asks after every reap (the last one may have been an
// orphan horust adopted) and when the output is drained.
func (l *Loop) checkLeftovers(i int, now time.Time) {
	if s := l.svcs[i]; s.End.Left && !s.proc.Alive() {
		l.apply(i, input{ev: EvGroupEmpty}, now)
	}
}

func (l *Loop) onTimer(now time.Time) {
	for i, s := range l.svcs {
		if !s.Due.IsZero() && !s.Due.After(now) {
			l.apply(i, input{ev: EvDue}, now)
		}
		l.probeTimer(i, now)
	}
}

// armTimer sets the one timer to the earliest deadline.
func (l *Loop) armTimer(now time.Time) {
	var at time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	for _, s := range l.svcs {
		earlier(s.Due)
		earlier(s.probe.deadline())
	}
	if at.Equal(l.timerAt) {
		return
	}
	l.timerAt = at
	if at.IsZero() {
		l.timer.Stop()
		return
	}
	l.timer.Reset(max(at.Sub(now), 0))
}

// apply runs step for one service and performs its actions.
func (l *Loop) apply(i int, in input, now time.Time) {
	s := l.svcs[i]
	from := s.State
	var buf [8]action
	r, acts := step(s.cfg, s.record, in, now, l.shutdown != notShuttingDown, buf[:0])
	s.record = r
	if r.State != from {
		l.log.Debug("state changed", "service", s.cfg.Name, "event", in.ev.String(), "from", from.String(), "state", r.State.String())
	}
	for _, a := range acts {
		l.perform(i, a, now)
	}
}

func (l *Loop) perform(i int, a action, now time.Time) {
	s := l.svcs[i]
	switch a {
	case actStart:
		l.start(i, now)
	case actTermSignal:
		l.signal(s, l.termSignal(s))
	case actSIGKILL:
		l.signal(s, syscall.SIGKILL)
	case actFailureStrategy:
		l.onFailed(i, now)
	case actRelease:
		l.stopChecks(s)
		l.opt.OS.Release(s.cfg)
		if s.State == FinishedFailed && !(l.opt.OneShot && s.Exit.Valid) {
			attrs := []any{"service", s.cfg.Name, "reason", s.Reason}
			if s.Exit.Valid { // a start that failed has no exit code
				attrs = append(attrs, "exit_code", s.Exit.Code)
			}
			l.log.Error("service finished failed", attrs...)
		}
	case actStartChecks:
		l.startChecks(s, now)
	case actStopChecks:
		l.stopChecks(s)
	case actStopLeftovers:
		l.log.Info("service exited; stopping what it left running", "service", s.cfg.Name, "pid", s.PID)
		_ = s.proc.Signal(l.termSignal(s))
	case actKillLeftovers:
		l.log.Warn("processes the service left did not stop in time: killing them", "service", s.cfg.Name)
		_ = s.proc.Signal(syscall.SIGKILL)
	case actWaitOutput:
		gen := s.gen
		if !s.proc.WhenOutputIdle(func() { l.send(msgOutputIdle{svc: i, gen: gen}) }) {
			l.apply(i, input{ev: EvGiveUp}, now)
		}
	case actLogGiveUp:
		l.log.Warn("the service's exit is complete although its output is not drained or its processes are not all gone; something outside the service holds them", "service", s.cfg.Name)
	case actLogExit, actLogFailure, actLogCrash:
		l.logExit(s, a)
	case actRunOver:
		s.proc = nil
	case actReplace:
		l.replace(i)
	case actCrashLoop:
		why := s.Reason
		if why == "" && s.Exit.Valid {
			why = s.Exit.String() // a quick run that exited successfully
		}
		l.log.Warn("service is in a crash loop: its runs end within min-uptime; restarts wait 100ms, doubling up to max-backoff, until a run lasts min-uptime",
			"service", s.cfg.Name, "min_uptime", s.cfg.Restart.MinUptime.String(), "max_backoff", s.cfg.Restart.MaxBackoff.String(), "reason", why)
	}
}

// logExit says how a run ended: "service exited", or "service failed" as a
// warning, or at debug level within a crash loop that was already reported.
func (l *Loop) logExit(s *service, a action) {
	e := s.Exit
	attrs := []any{"service", s.cfg.Name, "pid", e.PID, "exit_code", e.Code}
	if e.Signal != 0 {
		attrs = append(attrs, "signal", config.SignalName(e.Signal))
	}
	if e.Why != "" {
		attrs = append(attrs, "reason", e.Why)
	}
	switch a {
	case actLogCrash:
		l.log.Debug("service failed", attrs...)
	case actLogFailure:
		l.log.Warn("service failed", attrs...)
	default:
		l.log.Info("service exited", attrs...)
	}
}

// termSignal is the signal that stops a service: its termination signal,
// or in one-shot mode the TERM or INT that asked horust to stop.
func (l *Loop) termSignal(s *service) syscall.Signal {
	if l.opt.OneShot && l.stopSignal != 0 {
		return l.stopSignal
	}
	return s.cfg.Termination.Signal
}

// signal sends sig to the run. A failure is not final: the run's deadline
// stays armed, and SIGKILL is sent (again) when it passes, so a stop
// completes once signalling works again. The first failure of a run is
// logged with its cause; repeats are logged at debug level.
func (l *Loop) signal(s *service, sig syscall.Signal) {
	if s.proc == nil {
		return
	}
	l.log.Info("signalling service", "service", s.cfg.Name, "pid", s.PID, "signal", config.SignalName(sig))
	if err := s.proc.Signal(sig); err != nil {
		level := slog.LevelError
		if s.signalFailed {
			level = slog.LevelDebug
		}
		s.signalFailed = true
		l.log.Log(l.ctx, level, "signal failed; retried at the service's next deadline", "service", s.cfg.Name, "pid", s.PID, "signal", config.SignalName(sig), "err", err)
	}
}

// start forks the service now and feeds the outcome to step.
func (l *Loop) start(i int, now time.Time) {
	s := l.svcs[i]
	s.gen++
	gen := s.gen
	s.notifyStatus, s.spawnErr, s.signalFailed = "", nil, false
	if h := s.cfg.Healthiness; h.FilePath != "" && l.opt.PrepareCheckFile != nil {
		if err := l.opt.PrepareCheckFile(h.FilePath); err != nil {
			l.log.Error("cannot delete the file-path check's file before the start", "service", s.cfg.Name, "err", err)
		}
	}
	// Drained may be called while Start still runs (nothing to copy, or a
	// copier that hit EOF at once); the loop cannot receive its own message
	// then, so that case is noted here instead.
	var phase atomic.Int32 // 0: in Start, 1: Start returned, 2: drained during Start
	opt := proc.StartOptions{
		Drained: func() {
			if phase.CompareAndSwap(0, 2) {
				return
			}
			l.send(msgDrained{svc: i, gen: gen})
		},
		Foreground: l.opt.Foreground,
	}
	if s.cfg.Healthiness.Notify && l.opt.NotifySocket != "" {
		opt.Env = []string{"NOTIFY_SOCKET=" + l.opt.NotifySocket}
	}
	p, err := l.opt.OS.Start(s.cfg, opt)
	drainedInStart := !phase.CompareAndSwap(0, 1)
	if err != nil {
		s.spawnErr = err
		l.log.Error("failed spawning the process", "service", s.cfg.Name, "err", err)
		l.apply(i, input{ev: EvSpawnFailed, why: couldNotStart(err)}, now)
		return
	}
	s.proc = p
	l.pids[p.Pid()] = i
	l.log.Info("service started", "service", s.cfg.Name, "pid", p.Pid())
	l.apply(i, input{ev: EvSpawned, pid: p.Pid()}, now)
	if drainedInStart {
		l.apply(i, input{ev: EvDrained}, now)
	}
}

// couldNotStart is the reason of a start that failed: "could not start
// /x/prog: no such file or directory", "could not start: invalid command".
func couldNotStart(err error) string {
	if msg := err.Error(); strings.HasPrefix(msg, "start ") {
		return "could not " + msg
	}
	return "could not start: " + err.Error()
}

// onFailed applies the failure strategy of a service that entered Failed,
// and die-if-failed of the services that name it.
func (l *Loop) onFailed(i int, now time.Time) {
	s := l.svcs[i]
	switch s.cfg.Failure.Strategy {
	case config.FailureShutdown:
		l.log.Warn("service failed with failure strategy shutdown: shutting down", "service", s.cfg.Name)
		l.beginShutdown(graceful, now)
	case config.FailureKillDependents:
		for _, j := range s.dependents {
			l.apply(j, input{ev: EvKill, intent: intentKill, why: fmt.Sprintf("dependency '%s' failed (kill-dependents)", s.cfg.Name)}, now)
		}
	}
	for _, j := range s.dieWith {
		l.apply(j, input{ev: EvKill, intent: intentKill, why: fmt.Sprintf("'%s' failed (die-if-failed)", s.cfg.Name)}, now)
	}
}

// advance moves every service as far as it can go without waiting:
// starting services whose dependencies are up, failing those whose
// dependencies failed for good, and, while shutting down, stopping services
// in shutdown-after order. Services are in start order, so one pass
// usually does it; it repeats until nothing changes.
func (l *Loop) advance(now time.Time) {
	for changed := true; changed; {
		changed = false
		for i, s := range l.svcs {
			// A start that failed at once leaves the service Initial
			// again, with one more attempt made: that is a change too, or
			// the retry would wait for an unrelated event.
			before, intentBefore, genBefore := s.State, s.Intent, s.gen
			l.advanceOne(i, now)
			if s.State != before || s.Intent != intentBefore || s.gen != genBefore {
				changed = true
			}
		}
	}
}

func (l *Loop) advanceOne(i int, now time.Time) {
	s := l.svcs[i]
	if l.shutdown == notShuttingDown {
		if s.State != Initial {
			return
		}
		ready := true
		for _, j := range s.deps {
			switch d := l.svcs[j]; {
			case d.State.Up(d.cfg.Oneshot):
			case d.State == FinishedFailed:
				l.apply(i, input{ev: EvDepFailed, why: fmt.Sprintf("dependency '%s' failed", d.cfg.Name)}, now)
				return
			default:
				ready = false
			}
		}
		if ready {
			l.apply(i, input{ev: EvDepsReady}, now)
		}
		return
	}
	switch s.State {
	case Initial, Starting:
		l.apply(i, input{ev: EvStop}, now)
	case Started, Running:
		for _, j := range s.shutdownAfter {
			if !l.svcs[j].State.Terminal() {
				return
			}
		}
		l.apply(i, input{ev: EvStop}, now)
	case InKilling:
		if s.Intent != intentStop {
			l.apply(i, input{ev: EvStop}, now)
		}
	}
}

// ExitCode is horust's exit code once Run returned (docs/design.md, exit
// codes): in
// one-shot mode the command's (128+N for signal N; 127 when the program was
// not found, 126 when it could not be executed); otherwise 0, or 101 when
// some service ended FinishedFailed and failedIs101 (the command line's
// flag) or unsuccessful-exit-finished-failed of the current horust.toml is
// set.
func (l *Loop) ExitCode(failedIs101 bool) int {
	if l.opt.OneShot && len(l.svcs) == 1 {
		s := l.svcs[0]
		switch {
		case s.Exit.Valid:
			return s.Exit.Code
		case errors.Is(s.spawnErr, syscall.ENOENT) || errors.Is(s.spawnErr, proc.ErrNotFound):
			return 127
		case errors.Is(s.spawnErr, syscall.EACCES):
			return 126
		case s.spawnErr != nil:
			return 1
		}
		return 0
	}
	if failedIs101 || l.cfgState.global.UnsuccessfulExitFinishedFailed {
		for _, s := range l.svcs {
			if s.State == FinishedFailed && !s.gone {
				l.log.Error("some processes have failed")
				return 101
			}
		}
	}
	return 0
}
