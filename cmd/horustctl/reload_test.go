package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// Reload answers a fixed plan: every service unchanged but "new" added;
// the problems when set.
func (b *backend) Reload(_ context.Context, dryRun bool) (control.ReloadReply, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.problems != nil {
		return control.ReloadReply{}, &control.InvalidConfigError{Problems: b.problems}
	}
	rep := control.ReloadReply{DryRun: dryRun, Generation: b.config.Generation}
	for _, s := range b.services {
		p := control.ServicePlan{Name: s.Name, Change: control.ChangeUnchanged}
		if s.State == status.Initial {
			p = control.ServicePlan{Name: s.Name, Change: control.ChangeChanged, Keys: []string{"command", "restart.strategy"}}
		}
		rep.Services = append(rep.Services, p)
	}
	rep.Services = append(rep.Services, control.ServicePlan{Name: "new", Change: control.ChangeAdded})
	if !dryRun {
		b.config.Generation++
		b.config.LastReload = &control.ReloadResult{At: time.Now(), Result: "ok", Trigger: "control socket"}
		rep.Generation = b.config.Generation
	}
	return rep, nil
}

func (b *backend) Config(context.Context) (control.ConfigStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.config, nil
}

func TestReload(t *testing.T) {
	b := newBackend(status.ServiceStatus{Name: "a", State: status.Running}, status.ServiceStatus{Name: "b", State: status.Initial})
	b.config.Generation = 1
	path := serve(t, b, shortDir(t), 1)

	r := horustctl(t, "--socket-path", path, "reload", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "dry run: nothing was changed (1 to add, 0 to remove, 1 to restart)") ||
		!strings.Contains(r.stdout, "changed    b    (command, restart.strategy)") || !strings.Contains(r.stdout, "unchanged  a") {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, _ := b.Config(context.Background()); st.Generation != 1 {
		t.Fatal("the dry run reloaded")
	}
	// Before a reload the status table has no reload line.
	if r := horustctl(t, "--socket-path", path, "status"); r.code != 0 || strings.Contains(r.stdout, "reload") {
		t.Fatalf("status before a reload: %d\n%s", r.code, r.stdout)
	}
	r = horustctl(t, "--socket-path", path, "reload")
	if r.code != 0 || !strings.Contains(r.stdout, "reloaded: configuration generation 2 (1 added, 0 removed, 1 restarted)") {
		t.Fatalf("reload: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = horustctl(t, "--socket-path", path, "--json", "reload")
	var rep control.ReloadReply
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.Generation != 3 || len(rep.Services) != 3 {
		t.Fatalf("reload --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := horustctl(t, "--socket-path", path, "status"); r.code != 0 || !strings.Contains(r.stdout, "configuration generation 3; last reload") ||
		!strings.Contains(r.stdout, "(control socket): ok") {
		t.Fatalf("status after a reload: %d\n%s", r.code, r.stdout)
	}

	b.mu.Lock()
	b.problems = []string{"/s/a.toml:3: restart.strategy: bad value", "/s/b.toml:1: command: missing"}
	b.mu.Unlock()
	r = horustctl(t, "--socket-path", path, "reload")
	if r.code != 1 || !strings.Contains(r.stderr, "/s/a.toml:3: restart.strategy: bad value\n/s/b.toml:1: command: missing\n") ||
		!strings.Contains(r.stderr, "nothing was changed") || r.stdout != "" {
		t.Fatalf("invalid: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}
