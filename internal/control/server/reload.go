package server

import (
	"context"
	"fmt"

	"github.com/horust-go/horust/internal/control"
)

// Reloader is the part of the Backend that reloads the configuration.
type Reloader interface {
	// Reload loads and validates the configuration from the paths horust
	// started with and, unless dryRun, applies it (docs/configuration.md,
	// "Reload"). A configuration with problems changes nothing and returns
	// a *control.InvalidConfigError; during shutdown it returns
	// control.ErrShuttingDown.
	Reload(ctx context.Context, dryRun bool) (control.ReloadReply, error)
	// Config returns the configuration's generation and the last reload.
	Config(ctx context.Context) (control.ConfigStatus, error)
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
		rep.Services = []control.ServicePlan{}
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
