package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/control"
)

// Configuration is what a reload loads: the services in start order and
// horust.toml.
type Configuration struct {
	Services []*config.Service
	Global   config.Global
}

// reloadState is the loop's record of its configuration and its reloads.
type reloadState struct {
	generation  uint64
	loadedAt    time.Time
	last        *control.ReloadResult
	ok, invalid uint64
	global      config.Global
}

// reloadSlot is what a reload asked of one service and is not done yet.
type reloadSlot struct {
	// next is the service's new definition, taken once the current run
	// is over (actReplace).
	next *config.Service
	// removing: a reload removed the service; it is forgotten once it has
	// stopped. asked: EvRemove was applied (it waits for the services it
	// shuts down after, as a shutdown does).
	removing, asked bool
	// gone: the slot holds no service; an added one may take it. A slot
	// is never taken out of Loop.svcs, so that the indexes that messages
	// carry stay valid (a message's generation tells a stale one).
	gone bool
}

// Reload implements server.Backend: a reload asked through the control
// socket.
func (l *Loop) Reload(ctx context.Context, dryRun bool) (control.ReloadReply, error) {
	return l.reload(ctx, dryRun, "control socket")
}

// Config implements server.Backend.
func (l *Loop) Config(ctx context.Context) (control.ConfigStatus, error) {
	rep, err := l.exchange(ctx, request{kind: reqConfig})
	return rep.config, err
}

// reload loads and validates the configuration on the caller's goroutine
// (never on the loop: loading 1,000 files takes milliseconds), then hands
// the result to the loop, which applies it in one step. Reloads are
// serialized: a second one waits until the loop has applied the first.
func (l *Loop) reload(ctx context.Context, dryRun bool, trigger string) (control.ReloadReply, error) {
	if l.opt.Load == nil {
		return control.ReloadReply{}, fmt.Errorf("%w: horust runs one command (horust -- CMD)", control.ErrNoConfig)
	}
	select {
	case l.reloading <- struct{}{}:
		defer func() { <-l.reloading }()
	case <-ctx.Done():
		return control.ReloadReply{}, ctx.Err()
	case <-l.done:
		return control.ReloadReply{}, control.ErrExiting
	}
	in := &reloadInput{dryRun: dryRun, trigger: trigger}
	cfg, err := l.opt.Load()
	if err != nil {
		in.problems = problemLines(err)
	} else {
		in.cfg = cfg
	}
	if err := ctx.Err(); err != nil {
		// The requester gave up while the files were loading: nothing is
		// applied behind its back.
		return control.ReloadReply{}, fmt.Errorf("reload not applied: %w", err)
	}
	rep, err := l.exchange(ctx, request{kind: reqReload, reload: in})
	return rep.plan, err
}

// reloadInput is a loaded configuration, or its problems, on its way to the
// loop.
type reloadInput struct {
	cfg      Configuration
	problems []string
	dryRun   bool
	trigger  string
}

// problemLines lists a load's problems, one a line.
func problemLines(err error) []string {
	var probs config.Problems
	if errors.As(err, &probs) {
		out := make([]string, len(probs))
		for i, p := range probs {
			out[i] = p.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// Trigger reloads in a leaf goroutine and logs the result: SIGHUP in
// service mode, and --watch, call it.
func (l *Loop) Trigger(trigger string) {
	go func() {
		rep, err := l.reload(l.ctx, false, trigger)
		if err == nil {
			added, removed, changed := rep.Changes()
			l.log.Info("configuration reloaded", "trigger", trigger, "generation", rep.Generation, "added", added, "removed", removed, "changed", changed)
		} else if !errors.Is(err, control.ErrInvalidConfig) { // invalid: the loop logged every problem
			l.log.Warn("configuration not reloaded", "trigger", trigger, "err", err)
		}
	}()
}

// onReload applies (or, for a dry run, only plans) a loaded configuration.
func (l *Loop) onReload(r request, now time.Time) {
	in := r.reload
	answer := func(plan control.ReloadReply, err error) { r.reply <- reply{plan: plan, err: err} }
	if l.shutdown != notShuttingDown {
		answer(control.ReloadReply{}, fmt.Errorf("cannot reload: %w", control.ErrShuttingDown))
		return
	}
	if in.problems != nil {
		if !in.dryRun {
			l.cfgState.invalid++
			l.cfgState.last = &control.ReloadResult{At: now, Result: "invalid", Trigger: in.trigger, Problems: in.problems}
			for _, p := range in.problems {
				l.log.Error("configuration not reloaded: nothing changed", "trigger", in.trigger, "problem", p)
			}
		}
		answer(control.ReloadReply{}, &control.InvalidConfigError{Problems: in.problems})
		return
	}
	plan := l.plan(in.cfg)
	plan.DryRun = in.dryRun
	plan.Generation = l.cfgState.generation
	if in.dryRun {
		answer(plan, nil)
		return
	}
	l.applyPlan(in.cfg, plan, now)
	// Added services whose dependencies are up start now, before the
	// answer: the reply says what the reload did.
	l.advance(now)
	l.cfgState.generation++
	l.cfgState.ok++
	l.cfgState.loadedAt = now
	l.cfgState.global = in.cfg.Global
	l.cfgState.last = &control.ReloadResult{At: now, Result: "ok", Trigger: in.trigger}
	plan.Generation = l.cfgState.generation
	answer(plan, nil)
}

// target is the definition a service is heading for: its new one while a
// change waits for its run to end; nil for one being removed.
func (s *service) target() *config.Service {
	switch {
	case s.removing:
		return nil
	case s.next != nil:
		return s.next
	}
	return s.cfg
}

// plan matches the new services with the current ones by name.
func (l *Loop) plan(cfg Configuration) control.ReloadReply {
	var rep control.ReloadReply
	seen := make(map[string]bool, len(cfg.Services))
	for _, c := range cfg.Services {
		seen[c.Name] = true
		p := control.ServicePlan{Name: c.Name, Change: control.ChangeAdded}
		if i, ok := l.byName[c.Name]; ok {
			if old := l.svcs[i].target(); old != nil {
				p.Keys = config.Diff(old, c)
				p.Change = control.ChangeUnchanged
				if p.Keys != nil {
					p.Change = control.ChangeChanged
				}
			}
		}
		rep.Services = append(rep.Services, p)
	}
	for _, s := range l.svcs {
		if !s.gone && !s.removing && !seen[s.cfg.Name] {
			rep.Services = append(rep.Services, control.ServicePlan{Name: s.cfg.Name, Change: control.ChangeRemoved})
		}
	}
	rep.Global = config.DiffGlobal(l.cfgState.global, cfg.Global)
	return rep
}

// applyPlan carries out a plan: removed services are asked to stop (in
// shutdown-after order, see reloadStep), changed ones to start over with
// their new definition, added ones join as Initial and start in dependency
// order with the others (advance). Unchanged ones are not touched.
func (l *Loop) applyPlan(cfg Configuration, plan control.ReloadReply, now time.Time) {
	byName := make(map[string]*config.Service, len(cfg.Services))
	for _, c := range cfg.Services {
		byName[c.Name] = c
	}
	var replaced []int
	for _, p := range plan.Services {
		switch p.Change {
		case control.ChangeRemoved:
			i := l.byName[p.Name]
			l.svcs[i].removing, l.svcs[i].asked = true, false
			l.log.Info("reload: removing service", "service", p.Name)
		case control.ChangeChanged:
			i := l.byName[p.Name]
			l.svcs[i].next = byName[p.Name]
			replaced = append(replaced, i)
			l.log.Info("reload: service changed; it starts over with its new definition", "service", p.Name, "keys", p.Keys)
		case control.ChangeAdded:
			if i, ok := l.byName[p.Name]; ok { // back while its removal is in progress
				s := l.svcs[i]
				s.removing, s.next = false, byName[p.Name]
				replaced = append(replaced, i)
			} else {
				l.add(byName[p.Name])
			}
			l.log.Info("reload: adding service", "service", p.Name)
		}
	}
	l.link()
	for _, i := range replaced {
		l.apply(i, input{ev: EvReplace}, now)
	}
	l.reloadStep(now)
}

// add takes a free slot (or a new one) for an added service.
func (l *Loop) add(c *config.Service) {
	for i, s := range l.svcs {
		if s.gone {
			// The generation goes on: messages of the slot's last
			// service must stay stale.
			*s = service{idx: i, cfg: c, gen: s.gen}
			l.byName[c.Name] = i
			return
		}
	}
	i := len(l.svcs)
	l.svcs = append(l.svcs, &service{idx: i, cfg: c})
	l.byName[c.Name] = i
}

// link computes the edges between services (start-after, shutdown-after,
// die-if-failed and their reverses) from the definitions they head for.
// A service being removed keeps its shutdown-after edges, which order the
// removals among themselves.
func (l *Loop) link() {
	index := func(names []string) []int {
		var out []int
		for _, n := range names {
			if j, ok := l.byName[n]; ok {
				out = append(out, j)
			}
		}
		return out
	}
	for _, s := range l.svcs {
		s.deps, s.shutdownAfter, s.dependents, s.dieWith = nil, nil, nil, nil
	}
	for i, s := range l.svcs {
		if s.gone {
			continue
		}
		c := s.target()
		if c == nil {
			s.shutdownAfter = index(s.cfg.ShutdownAfter)
			continue
		}
		s.deps = index(c.StartAfter)
		s.shutdownAfter = index(c.ShutdownAfter)
		for _, j := range s.deps {
			l.svcs[j].dependents = append(l.svcs[j].dependents, i)
		}
		for _, j := range index(c.Termination.DieIfFailed) {
			l.svcs[j].dieWith = append(l.svcs[j].dieWith, i)
		}
	}
}

// replace is actReplace: the service takes its new definition, with a
// fresh record (step reset it). What the old definition held between runs
// (its cgroup, with the old limits) is released.
func (l *Loop) replace(i int) {
	s := l.svcs[i]
	if s.next == nil {
		return
	}
	l.opt.OS.Release(s.cfg)
	s.cfg, s.next = s.next, nil
}

// reloadStep moves the removals on: a removed service is asked to stop once
// the removed services it shuts down after are done, and is forgotten once
// it has stopped. A changed service whose run ended for good (a shutdown
// or horustctl stop came first) takes its new definition for its next
// start. The loop calls it before every advance.
func (l *Loop) reloadStep(now time.Time) {
	for i, s := range l.svcs {
		if s.removing && !s.asked && l.removable(s) {
			s.asked = true
			l.apply(i, input{ev: EvRemove, why: "removed by a reload"}, now)
		}
	}
	forgot := false
	for i, s := range l.svcs {
		switch {
		case s.gone || !s.State.Terminal() || s.End.Seen:
		case s.removing:
			l.forget(i)
			forgot = true
		case s.next != nil:
			l.replace(i)
		}
	}
	if forgot {
		l.link()
	}
}

// removable reports whether the removed services that s shuts down after
// are done.
func (l *Loop) removable(s *service) bool {
	for _, j := range s.shutdownAfter {
		if d := l.svcs[j]; d.removing && !d.State.Terminal() {
			return false
		}
	}
	return true
}

// forget frees the slot of a removed service that has stopped. Waits that
// name it are answered: it will never change again. The caller links the
// services again.
func (l *Loop) forget(i int) {
	s := l.svcs[i]
	l.log.Info("reload: service removed", "service", s.cfg.Name)
	delete(l.byName, s.cfg.Name)
	s.gone, s.removing, s.asked = true, false, false
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if slices.Contains(w.svcs, i) {
			w.req.reply <- reply{err: fmt.Errorf("%w: '%s' was removed by a reload", control.ErrUnreachable, s.cfg.Name)}
			continue
		}
		kept = append(kept, w)
	}
	clear(l.waiters[len(kept):])
	l.waiters = kept
}

// configStatus is the answer to Config.
func (l *Loop) configStatus() control.ConfigStatus {
	st := control.ConfigStatus{
		Generation:     l.cfgState.generation,
		LoadedAt:       l.cfgState.loadedAt,
		ReloadsOK:      l.cfgState.ok,
		ReloadsInvalid: l.cfgState.invalid,
	}
	if last := l.cfgState.last; last != nil {
		c := *last
		st.LastReload = &c
	}
	return st
}
