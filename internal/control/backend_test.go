package control

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"
)

// memBackend is an in-memory Backend that exists only to exercise the HTTP
// layer: it keeps statuses in a map and changes them as told.
type memBackend struct {
	mu        sync.Mutex
	services  []ServiceStatus
	changed   chan struct{} // closed and replaced on every change
	signals   []string      // "name:SIG" in the order received
	shutdowns int
	shutting  bool
	waiting   int           // Wait calls in progress
	block     chan struct{} // when set, every call blocks until it is closed or ctx ends
	blocked   int           // calls blocked on block now
	// reloadErr, when set, is what Reload returns; otherwise it returns
	// a plan with every service unchanged and counts the reload.
	reloadErr error
	config    ConfigStatus
	dryRuns   int
}

func newMemBackend(services ...ServiceStatus) *memBackend {
	return &memBackend{services: services, changed: make(chan struct{}),
		config: ConfigStatus{Generation: 1, LoadedAt: time.Unix(1700000000, 0)}}
}

// svc is a service in state with a pid when it is alive.
func svc(name, state string) ServiceStatus {
	st := ServiceStatus{Name: name, State: state}
	if state == "RUNNING" || state == "STARTED" {
		st.PID = 4242
		st.StartedAt = time.Unix(1700000000, 0)
	}
	return st
}

func (b *memBackend) gate(ctx context.Context) error {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block == nil {
		return nil
	}
	b.mu.Lock()
	b.blocked++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.blocked--
		b.mu.Unlock()
	}()
	select {
	case <-block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *memBackend) setBlock(c chan struct{}) {
	b.mu.Lock()
	b.block = c
	b.mu.Unlock()
}

// update changes one service under the lock and wakes the waiters.
func (b *memBackend) update(name string, f func(*ServiceStatus)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.services, func(s ServiceStatus) bool { return s.Name == name })
	if i < 0 {
		return notFound(name)
	}
	f(&b.services[i])
	close(b.changed)
	b.changed = make(chan struct{})
	return nil
}

func (b *memBackend) setState(name, state string) {
	_ = b.update(name, func(s *ServiceStatus) {
		s.State = state
		if state == "RUNNING" {
			s.PID = 4242
		} else {
			s.PID = 0
		}
	})
}

func (b *memBackend) List(ctx context.Context) ([]ServiceStatus, error) {
	if err := b.gate(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.services), nil
}

func (b *memBackend) Get(ctx context.Context, name string) (ServiceStatus, error) {
	if err := b.gate(ctx); err != nil {
		return ServiceStatus{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.services {
		if s.Name == name {
			return s, nil
		}
	}
	return ServiceStatus{}, notFound(name)
}

// notFound is ErrNotFound as the supervisor wraps it.
func notFound(name string) error { return fmt.Errorf("%w '%s'", ErrNotFound, name) }

func (b *memBackend) change(ctx context.Context, name string, f func(*ServiceStatus)) (ServiceStatus, error) {
	if err := b.gate(ctx); err != nil {
		return ServiceStatus{}, err
	}
	b.mu.Lock()
	shutting := b.shutting
	b.mu.Unlock()
	if shutting {
		return ServiceStatus{}, ErrShuttingDown
	}
	if err := b.update(name, f); err != nil {
		return ServiceStatus{}, err
	}
	return b.Get(ctx, name)
}

func (b *memBackend) Start(ctx context.Context, name string) (ServiceStatus, error) {
	return b.change(ctx, name, func(s *ServiceStatus) {
		if s.State == "FINISHED" || s.State == "FINISHEDFAILED" {
			s.Restarts++
			s.State, s.PID = "STARTING", 0
		}
	})
}

func (b *memBackend) Stop(ctx context.Context, name string) (ServiceStatus, error) {
	return b.change(ctx, name, func(s *ServiceStatus) { s.State = "INKILLING" })
}

func (b *memBackend) Restart(ctx context.Context, name string) (ServiceStatus, error) {
	return b.change(ctx, name, func(s *ServiceStatus) {
		s.Restarts++
		s.State, s.PID = "RUNNING", 4243
	})
}

func (b *memBackend) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	st, err := b.Get(ctx, name)
	if err != nil {
		return err
	}
	if st.PID == 0 {
		return fmt.Errorf("service '%s' is %s: %w", name, st.State, ErrNotRunning)
	}
	b.mu.Lock()
	b.signals = append(b.signals, name+":"+SignalName(sig))
	b.mu.Unlock()
	return nil
}

func (b *memBackend) Shutdown(ctx context.Context) error {
	if err := b.gate(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shutdowns++
	if b.shutting {
		return ErrShuttingDown
	}
	b.shutting = true
	return nil
}

func (b *memBackend) Wait(ctx context.Context, names []string, cond WaitFor) ([]ServiceStatus, error) {
	b.mu.Lock()
	b.waiting++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
	}()
	for {
		b.mu.Lock()
		changed := b.changed
		var out []ServiceStatus
		var err error
		for _, n := range names {
			i := slices.IndexFunc(b.services, func(s ServiceStatus) bool { return s.Name == n })
			if i < 0 {
				err = notFound(n)
				break
			}
			st := b.services[i]
			if cond == WaitRunning && st.State == "FINISHEDFAILED" {
				err = fmt.Errorf("service '%s' is FINISHEDFAILED: %w", n, ErrUnreachable)
				break
			}
			if meets(st.State, cond) {
				out = append(out, st)
			}
		}
		b.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if len(out) == len(names) {
			return out, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *memBackend) snapshot() (signals []string, shutdowns, waiting int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.signals), b.shutdowns, b.waiting
}

func (b *memBackend) blockedCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked
}

func (b *memBackend) Reload(ctx context.Context, dryRun bool) (ReloadReply, error) {
	if err := b.gate(ctx); err != nil {
		return ReloadReply{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shutting {
		return ReloadReply{}, ErrShuttingDown
	}
	if b.reloadErr != nil {
		b.config.ReloadsInvalid++
		return ReloadReply{}, b.reloadErr
	}
	rep := ReloadReply{DryRun: dryRun, Generation: b.config.Generation}
	for _, s := range b.services {
		rep.Services = append(rep.Services, ServicePlan{Name: s.Name, Change: ChangeUnchanged})
	}
	if dryRun {
		b.dryRuns++
		return rep, nil
	}
	b.config.Generation++
	b.config.ReloadsOK++
	b.config.LoadedAt = time.Unix(1700000100, 0)
	rep.Generation = b.config.Generation
	return rep, nil
}

func (b *memBackend) Config(ctx context.Context) (ConfigStatus, error) {
	if err := b.gate(ctx); err != nil {
		return ConfigStatus{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.config, nil
}
