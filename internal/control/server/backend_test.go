package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// memBackend is an in-memory Backend that exists only to exercise the HTTP
// layer: it keeps statuses in a map and changes them as told.
type memBackend struct {
	mu        sync.Mutex
	services  []status.ServiceStatus
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
	config    control.ConfigStatus
	dryRuns   int
}

func newMemBackend(services ...status.ServiceStatus) *memBackend {
	return &memBackend{services: services, changed: make(chan struct{}),
		config: control.ConfigStatus{Generation: 1, LoadedAt: time.Unix(1700000000, 0)}}
}

// svc is a service in state with a pid when it is alive.
func svc(name string, state status.State) status.ServiceStatus {
	st := status.ServiceStatus{Name: name, State: state}
	if state.Alive() {
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
func (b *memBackend) update(name string, f func(*status.ServiceStatus)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.services, func(s status.ServiceStatus) bool { return s.Name == name })
	if i < 0 {
		return notFound(name)
	}
	f(&b.services[i])
	close(b.changed)
	b.changed = make(chan struct{})
	return nil
}

func (b *memBackend) setState(name string, state status.State) {
	_ = b.update(name, func(s *status.ServiceStatus) {
		s.State = state
		if state == status.Running {
			s.PID = 4242
		} else {
			s.PID = 0
		}
	})
}

func (b *memBackend) List(ctx context.Context) ([]status.ServiceStatus, error) {
	if err := b.gate(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.services), nil
}

func (b *memBackend) Get(ctx context.Context, name string) (status.ServiceStatus, error) {
	if err := b.gate(ctx); err != nil {
		return status.ServiceStatus{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.services {
		if s.Name == name {
			return s, nil
		}
	}
	return status.ServiceStatus{}, notFound(name)
}

// notFound is control.ErrNotFound as the supervisor wraps it.
func notFound(name string) error { return fmt.Errorf("%w '%s'", control.ErrNotFound, name) }

func (b *memBackend) change(ctx context.Context, name string, f func(*status.ServiceStatus)) (status.ServiceStatus, error) {
	if err := b.gate(ctx); err != nil {
		return status.ServiceStatus{}, err
	}
	b.mu.Lock()
	shutting := b.shutting
	b.mu.Unlock()
	if shutting {
		return status.ServiceStatus{}, control.ErrShuttingDown
	}
	if err := b.update(name, f); err != nil {
		return status.ServiceStatus{}, err
	}
	return b.Get(ctx, name)
}

func (b *memBackend) Start(ctx context.Context, name string) (status.ServiceStatus, error) {
	return b.change(ctx, name, func(s *status.ServiceStatus) {
		if s.State == status.Finished || s.State == status.FinishedFailed {
			s.Restarts++
			s.State, s.PID = status.Starting, 0
		}
	})
}

func (b *memBackend) Stop(ctx context.Context, name string) (status.ServiceStatus, error) {
	return b.change(ctx, name, func(s *status.ServiceStatus) { s.State = status.InKilling })
}

func (b *memBackend) Restart(ctx context.Context, name string) (status.ServiceStatus, error) {
	return b.change(ctx, name, func(s *status.ServiceStatus) {
		s.Restarts++
		s.State, s.PID = status.Running, 4243
	})
}

func (b *memBackend) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	st, err := b.Get(ctx, name)
	if err != nil {
		return err
	}
	if st.PID == 0 {
		return fmt.Errorf("service '%s' is %s: %w", name, st.State.API(), control.ErrNotRunning)
	}
	b.mu.Lock()
	b.signals = append(b.signals, name+":"+control.SignalName(sig))
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
		return control.ErrShuttingDown
	}
	b.shutting = true
	return nil
}

func (b *memBackend) Wait(ctx context.Context, names []string, cond control.WaitFor) ([]status.ServiceStatus, error) {
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
		var out []status.ServiceStatus
		var err error
		for _, n := range names {
			i := slices.IndexFunc(b.services, func(s status.ServiceStatus) bool { return s.Name == n })
			if i < 0 {
				err = notFound(n)
				break
			}
			st := b.services[i]
			if cond == control.WaitRunning && st.State == status.FinishedFailed {
				err = fmt.Errorf("service '%s' is FINISHEDFAILED: %w", n, control.ErrUnreachable)
				break
			}
			if cond.Met(st) {
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

func (b *memBackend) Reload(ctx context.Context, dryRun bool) (control.ReloadReply, error) {
	if err := b.gate(ctx); err != nil {
		return control.ReloadReply{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shutting {
		return control.ReloadReply{}, control.ErrShuttingDown
	}
	if b.reloadErr != nil {
		b.config.ReloadsInvalid++
		return control.ReloadReply{}, b.reloadErr
	}
	rep := control.ReloadReply{DryRun: dryRun, Generation: b.config.Generation}
	for _, s := range b.services {
		rep.Services = append(rep.Services, control.ServicePlan{Name: s.Name, Change: control.ChangeUnchanged})
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

func (b *memBackend) Config(ctx context.Context) (control.ConfigStatus, error) {
	if err := b.gate(ctx); err != nil {
		return control.ConfigStatus{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.config, nil
}
