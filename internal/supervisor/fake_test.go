package supervisor

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/proc"
)

// fakeOS is the small OS boundary of the loop tests: processes are
// goroutines of the synctest bubble that "exit" by queueing a wait status
// and raising SIGCHLD. Everything else in the loop is real.
type fakeOS struct {
	t       testing.TB
	child   chan os.Signal // SIGCHLD, coalesced as the kernel does
	stop    chan os.Signal // TERM, INT
	other   chan os.Signal // everything else
	mu      sync.Mutex
	nextPid int
	exited  []fakeExit
	log     []string // "start NAME", "signal NAME TERM", "release NAME"
	startAt map[string][]time.Duration
	t0      time.Time
	// behave says what a started process of a service does; nil: runs
	// until signalled, dies of any signal.
	behave map[string]func(p *fakeProc)
	// failStart makes Start of a service fail.
	failStart map[string]error
	// failSignal makes the next n Signal calls to a service's runs fail
	// with EMFILE, as when horust is out of file descriptors.
	failSignal map[string]int
	// last is the latest run of each service.
	last map[string]*fakeProc
	// stderr is the line a check started with CheckStderr writes (an
	// https check), sent when it exits; holdStderr keeps its stderr open
	// after the exit (a process it left holds it), so nothing is sent.
	stderr     map[string]string
	holdStderr map[string]bool
	// started is the last StartOptions and Argv of each service.
	started map[string]fakeStart
}

type fakeStart struct {
	argv []string
	o    proc.StartOptions
}

type fakeExit struct {
	pid int
	ws  syscall.WaitStatus
}

type fakeProc struct {
	os   *fakeOS
	name string
	pid  int
	mu   sync.Mutex
	dead bool
	// leftover models what a run leaves in its group after the main process
	// exits: 0 nothing, 1 a child that dies of the termination signal, 2 a
	// child that only SIGKILL ends, 3 a child that not even SIGKILL ends (one
	// that escaped the run's group).
	leftover int
	gone     chan struct{} // closed when the process exited
	sigs     chan syscall.Signal
	stderr   func(string) // StartOptions.CheckStderr
}

func newFakeOS(t testing.TB) *fakeOS {
	return &fakeOS{
		t: t, child: make(chan os.Signal, 1), stop: make(chan os.Signal, 1), other: make(chan os.Signal, 1), nextPid: 100, startAt: map[string][]time.Duration{},
		t0: time.Now(), behave: map[string]func(*fakeProc){}, failStart: map[string]error{}, failSignal: map[string]int{},
		last: map[string]*fakeProc{}, stderr: map[string]string{}, holdStderr: map[string]bool{}, started: map[string]fakeStart{},
	}
}

// signals is what the loop listens on.
func (f *fakeOS) signals() Signals {
	return Signals{Child: f.child, Stop: f.stop, Other: f.other}
}

func exitStatus(code int) syscall.WaitStatus           { return syscall.WaitStatus(code << 8) }
func signalStatus(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }

func (f *fakeOS) record(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf(format, a...))
}

func (f *fakeOS) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fakeOS) starts(name string) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.startAt[name]...)
}

func (f *fakeOS) Start(svc *config.Service, o proc.StartOptions) (proc.Process, error) {
	name := svc.Name
	f.mu.Lock()
	err := f.failStart[name]
	f.mu.Unlock()
	if err != nil {
		f.record("startfail %s", name)
		return nil, err
	}
	f.mu.Lock()
	f.nextPid++
	p := &fakeProc{os: f, name: name, pid: f.nextPid, sigs: make(chan syscall.Signal, 8), gone: make(chan struct{}), stderr: o.CheckStderr}
	f.started[name] = fakeStart{argv: svc.Argv, o: o}
	f.startAt[name] = append(f.startAt[name], time.Since(f.t0))
	f.log = append(f.log, "start "+name)
	f.last[name] = p
	b := f.behave[name]
	f.mu.Unlock()
	if o.Drained != nil {
		o.Drained()
	}
	if b == nil {
		b = runUntilSignalled
	}
	go b(p)
	return p, nil
}

// lastProc is the latest run of a service.
func (f *fakeOS) lastProc(name string) *fakeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[name]
}

func (f *fakeOS) Reap() (int, syscall.WaitStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.exited) == 0 {
		return 0, 0, false
	}
	e := f.exited[0]
	f.exited = f.exited[1:]
	return e.pid, e.ws, true
}

func (f *fakeOS) Release(svc *config.Service) { f.record("release %s", svc.Name) }

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.os.mu.Lock()
	fail := p.os.failSignal[p.name] > 0
	if fail {
		p.os.failSignal[p.name]--
	}
	p.os.mu.Unlock()
	if fail {
		p.os.record("signalfail %s %s", p.name, config.SignalName(sig))
		return syscall.EMFILE
	}
	p.os.record("signal %s %s", p.name, config.SignalName(sig))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		if p.leftover == 2 && sig == syscall.SIGKILL || p.leftover == 1 {
			// The orphan dies; its reaping raises SIGCHLD.
			p.leftover = 0
			select {
			case p.os.child <- syscall.SIGCHLD:
			default:
			}
		}
		return nil
	}
	// The whole group gets the signal: a child that dies of it dies now.
	if sig == syscall.SIGKILL && p.leftover != 3 || p.leftover == 1 {
		p.leftover = 0
	}
	if sig == syscall.SIGKILL {
		p.exitLocked(signalStatus(syscall.SIGKILL))
		return nil
	}
	select {
	case p.sigs <- sig:
	default:
	}
	return nil
}

func (p *fakeProc) Exited(syscall.WaitStatus) string { return "" }

// Alive: fake runs leave nothing behind.
func (p *fakeProc) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead && p.leftover != 0
}

// leaves makes a behaviour leave a child behind (see fakeProc.leftover).
func leaves(mode int, b func(*fakeProc)) func(*fakeProc) {
	return func(p *fakeProc) {
		p.mu.Lock()
		p.leftover = mode
		p.mu.Unlock()
		b(p)
	}
}

func (p *fakeProc) WhenOutputIdle(func()) bool { return false }

// exit makes the process exit with ws (once).
func (p *fakeProc) exit(ws syscall.WaitStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exitLocked(ws)
}

func (p *fakeProc) exitLocked(ws syscall.WaitStatus) {
	if p.dead {
		return
	}
	p.dead = true
	close(p.gone)
	p.os.mu.Lock()
	p.os.exited = append(p.os.exited, fakeExit{p.pid, ws})
	line, hold := p.os.stderr[p.name], p.os.holdStderr[p.name]
	p.os.mu.Unlock()
	if p.stderr != nil && !hold {
		// From another goroutine, as the real pipe reader: it races with
		// the SIGCHLD below, as the real one does.
		go p.stderr(line)
	}
	// SIGCHLD coalesces, as the kernel's does: one pending is enough.
	select {
	case p.os.child <- syscall.SIGCHLD:
	default:
	}
}

// Behaviours.

func runUntilSignalled(p *fakeProc) {
	select {
	case sig := <-p.sigs:
		p.exit(signalStatus(sig))
	case <-p.gone:
	}
}

func exitAfter(d time.Duration, code int) func(*fakeProc) {
	return func(p *fakeProc) {
		select {
		case <-time.After(d):
			p.exit(exitStatus(code))
		case sig := <-p.sigs:
			p.exit(signalStatus(sig))
		case <-p.gone:
		}
	}
}

func ignoreTerm(p *fakeProc) {
	<-p.gone // only SIGKILL (handled in Signal) ends it
}

// trapTerm exits with code after d when it gets TERM.
func trapTerm(d time.Duration, code int) func(*fakeProc) {
	return func(p *fakeProc) {
		select {
		case <-p.sigs:
			time.Sleep(d)
			p.exit(exitStatus(code))
		case <-p.gone:
		}
	}
}

// svc builds a service with the defaults the config package applies.
func svc(name string, edit ...func(*config.Service)) *config.Service {
	s := &config.Service{
		Name:        name,
		Command:     "/bin/true",
		Stdout:      "STDOUT",
		Stderr:      "STDERR",
		Restart:     config.Restart{Strategy: config.RestartNever},
		Healthiness: config.Healthiness{MaxFailed: 3, Interval: time.Second, Timeout: time.Second},
		Failure:     config.Failure{SuccessfulExitCodes: []int{0}, Strategy: config.FailureIgnore},
		Termination: config.Termination{Signal: syscall.SIGTERM, Wait: 5 * time.Second},
	}
	for _, e := range edit {
		e(s)
	}
	return s
}
