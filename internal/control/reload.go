package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidConfig is what a reload of a configuration with problems
// returns (422); nothing was changed. The error is an *InvalidConfigError.
var ErrInvalidConfig = errors.New("the configuration is invalid; nothing was changed")

// ErrNoConfig is what a reload gets in one-shot mode (409): there is no
// configuration to reload.
var ErrNoConfig = errors.New("there is no configuration to reload")

// InvalidConfigError lists every problem of a configuration that a reload
// refused, each with its file, line and key ("web.toml:3: restart.strategy:
// ...").
type InvalidConfigError struct {
	Problems []string
}

func (e *InvalidConfigError) Error() string {
	return ErrInvalidConfig.Error() + ":\n" + strings.Join(e.Problems, "\n")
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *InvalidConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// The changes a reload makes to a service (ServicePlan.Change).
const (
	ChangeAdded     = "added"
	ChangeRemoved   = "removed"
	ChangeChanged   = "changed"
	ChangeUnchanged = "unchanged"
)

// ServicePlan is what a reload does to one service.
type ServicePlan struct {
	Name string `json:"name"`
	// Change is added, removed, changed or unchanged.
	Change string `json:"change"`
	// Keys are the keys whose values changed (for changed).
	Keys []string `json:"keys,omitempty"`
}

// ReloadReply is the body of a successful POST /v1/reload: the plan, and
// whether it was carried out.
type ReloadReply struct {
	// DryRun: the plan was only computed; nothing changed.
	DryRun bool `json:"dry_run"`
	// Generation is the configuration's generation after the reload (1 is
	// the one horust started with; a reload that changes nothing counts too).
	Generation uint64        `json:"generation"`
	Services   []ServicePlan `json:"services"`
	// Global lists the keys of horust.toml that changed.
	Global []string `json:"global,omitempty"`
}

// Changes counts the services the plan adds, removes and changes.
func (r ReloadReply) Changes() (added, removed, changed int) {
	for _, p := range r.Services {
		switch p.Change {
		case ChangeAdded:
			added++
		case ChangeRemoved:
			removed++
		case ChangeChanged:
			changed++
		}
	}
	return added, removed, changed
}

// ConfigStatus is the body of GET /v1/config: which configuration horust
// runs and how its reloads went.
type ConfigStatus struct {
	// Generation counts the configurations applied: 1 at start, one more
	// per successful reload.
	Generation uint64 `json:"generation"`
	// LoadedAt is when the current generation was applied.
	LoadedAt time.Time `json:"loaded_at"`
	// LastReload is the last reload that was not a dry run; nil when
	// there was none.
	LastReload *ReloadResult `json:"last_reload,omitempty"`
	// ReloadsOK and ReloadsInvalid count the reloads applied and refused.
	ReloadsOK      uint64 `json:"reloads_ok"`
	ReloadsInvalid uint64 `json:"reloads_invalid"`
}

// ReloadResult is the outcome of one reload.
type ReloadResult struct {
	At time.Time `json:"at"`
	// Result is "ok" or "invalid".
	Result string `json:"result"`
	// Trigger is what asked for it: "SIGHUP", "control socket", "watch".
	Trigger string `json:"trigger"`
	// Problems are the configuration's problems, when invalid.
	Problems []string `json:"problems,omitempty"`
}

// Reloader is the part of the Backend that reloads the configuration.
type Reloader interface {
	// Reload loads and validates the configuration from the paths horust
	// started with and, unless dryRun, applies it (docs/configuration.md,
	// "Reload"). A configuration with problems changes nothing and returns
	// an *InvalidConfigError; during shutdown it returns ErrShuttingDown.
	Reload(ctx context.Context, dryRun bool) (ReloadReply, error)
	// Config returns the configuration's generation and the last reload.
	Config(ctx context.Context) (ConfigStatus, error)
}

// reload serves POST /v1/reload[?dry_run=1]. It is on the control socket
// only, never on --http-addr: it changes what runs.
func (s *server) reload(w *response, r *request) {
	q := r.URL.Query()
	for k := range q {
		if k != "dry_run" {
			writeError(w, 400, "bad_request", fmt.Sprintf("unknown parameter %q: reload takes dry_run", k), nil)
			return
		}
	}
	dry := false
	switch v := q.Get("dry_run"); v {
	case "", "0", "false":
	case "1", "true":
		dry = true
	default:
		writeError(w, 400, "bad_request", fmt.Sprintf("bad dry_run=%q: 1 or 0", v), nil)
		return
	}
	ctx, cancel := s.callCtx(r)
	defer cancel()
	rep, err := s.o.Backend.Reload(ctx, dry)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rep.Services == nil {
		rep.Services = []ServicePlan{}
	}
	writeJSON(w, 200, rep)
}

// config serves GET /v1/config.
func (s *server) config(w *response, r *request) {
	ctx, cancel := s.callCtx(r)
	defer cancel()
	st, err := s.o.Backend.Config(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, st)
}

// Reload asks horust to reload its configuration (POST /v1/reload). A
// configuration with problems is an error that wraps ErrInvalidConfig and
// lists them (see APIError.Problems).
func (c *Client) Reload(ctx context.Context, dryRun bool) (ReloadReply, error) {
	path := "/v1/reload"
	if dryRun {
		path += "?dry_run=1"
	}
	var rep ReloadReply
	err := c.do(ctx, "POST", path, nil, &rep)
	return rep, err
}

// Config returns the configuration's generation and the last reload
// (GET /v1/config).
func (c *Client) Config(ctx context.Context) (ConfigStatus, error) {
	var st ConfigStatus
	err := c.do(ctx, "GET", "/v1/config", nil, &st)
	return st, err
}

// writeConfigMetrics writes the reload counters under the names Prometheus
// and Alertmanager use for their own configuration reloads.
func writeConfigMetrics(e *expo, st ConfigStatus) {
	e.family("horust_config_reloads_total", "counter", "Configuration reloads, by result: ok (applied) or invalid (refused, nothing changed).")
	e.sample("horust_config_reloads_total", float64(st.ReloadsOK), "result", "ok")
	e.sample("horust_config_reloads_total", float64(st.ReloadsInvalid), "result", "invalid")
	e.family("horust_config_generation", "gauge", "Generation of the configuration horust runs: 1 at start, one more per applied reload.")
	e.sample("horust_config_generation", float64(st.Generation))
	e.family("horust_config_last_reload_success_timestamp_seconds", "gauge", "When the current configuration was applied (at start or by the last successful reload), in seconds since the Unix epoch.")
	e.sample("horust_config_last_reload_success_timestamp_seconds", float64(st.LoadedAt.UnixNano())/1e9)
}
