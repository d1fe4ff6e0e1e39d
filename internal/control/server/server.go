// Package server is horust's control API server: the HTTP/1.1 + JSON API
// on the Unix socket (ListenUnix, Serve) and, read-only, the probes on
// --http-addr (ServeProbes). Handlers are leaf goroutines: they hold no
// supervisor state and reach the supervisor only through a Backend. The
// bodies they send are package control's, the statuses package status's.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/metrics"
	"github.com/horust-go/horust/internal/status"
)

// Backend is the supervisor as the control plane sees it. Every method sends
// one request to the supervisor loop and waits for its reply or for ctx.
type Backend interface {
	// List returns every service in start order.
	List(ctx context.Context) ([]status.ServiceStatus, error)
	// Get returns one service, or control.ErrNotFound.
	Get(ctx context.Context, name string) (status.ServiceStatus, error)
	// Start starts a FINISHED or FINISHEDFAILED service again; a service
	// being stopped runs again once the stop is done (no-op otherwise).
	Start(ctx context.Context, name string) (status.ServiceStatus, error)
	// Stop stops a service for good: it ends FINISHED, or FINISHEDFAILED if
	// it had to be killed.
	Stop(ctx context.Context, name string) (status.ServiceStatus, error)
	// Restart stops a running service and starts it again whatever its
	// restart strategy; a finished one is started, and one being stopped
	// runs again once the stop is done. During shutdown both are refused
	// with control.ErrShuttingDown.
	Restart(ctx context.Context, name string) (status.ServiceStatus, error)
	// Signal sends sig to the service's processes.
	Signal(ctx context.Context, name string, sig syscall.Signal) error
	// Shutdown starts a graceful shutdown of horust (as SIGTERM does).
	Shutdown(ctx context.Context) error
	// Wait returns once every named service meets the condition, with their
	// statuses; control.ErrUnreachable when one of them can no longer meet it.
	Wait(ctx context.Context, names []string, cond control.WaitFor) ([]status.ServiceStatus, error)
	Reloader
}

// Options configures the control server of one horust. Only Backend
// is required; every limit has a default.
type Options struct {
	// Backend is the supervisor.
	Backend Backend
	// Log receives the server's own problems; nil discards them.
	Log *slog.Logger
	// Version is horust's version, shown by /healthz and /metrics.
	Version string
	// Logs opens a service's output for GET /v1/services/{name}/logs (on
	// the socket only); nil answers that endpoint 404.
	Logs LogsFunc

	// CallTimeout bounds every Backend call but Wait (default 5s).
	CallTimeout time.Duration
	// MaxBodyBytes bounds a request body (default 64 KiB); more is 413.
	MaxBodyBytes int64
	// MaxWait is the longest timeout a wait request may ask for (default 24h).
	MaxWait time.Duration
	// ReadHeaderTimeout is how long a client has to send its request line
	// and headers before it is disconnected (default 5s).
	ReadHeaderTimeout time.Duration
}

// The defaults of Options and the server's fixed limits.
const (
	defaultCallTimeout       = 5 * time.Second
	defaultMaxBodyBytes      = 64 << 10
	defaultMaxWait           = 24 * time.Hour
	defaultReadHeaderTimeout = 5 * time.Second
	defaultWaitTimeout       = 30 * time.Second

	writeMargin    = 5 * time.Second  // after a wait's own timeout, to write its reply
	idleTimeout    = 60 * time.Second // a keep-alive connection with no request
	maxHeaderBytes = 16 << 10
	probeTimeout   = time.Second     // /healthz and /readyz answer within it
	shutdownGrace  = 2 * time.Second // for replies in flight when the server stops
)

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = defaultCallTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = defaultMaxBodyBytes
	}
	if o.MaxWait <= 0 {
		o.MaxWait = defaultMaxWait
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	return o
}

// server holds the options; handlers are its methods. It keeps no other
// state: every request asks the Backend.
type server struct {
	o Options
}

// Serve serves the full control API (read and write) on l until ctx is
// done. Then it closes l (which removes the socket file of a listener from
// ListenUnix), lets replies in flight finish for a moment and returns nil.
// Requests that are still waiting on the Backend when ctx ends get 503.
// Serve returns an error only when it cannot serve at all (no Backend); no
// failure to accept ends it (see docs/security.md for its limits).
func Serve(ctx context.Context, l net.Listener, o Options) error {
	if o.Backend == nil {
		return errors.New("control server: no backend")
	}
	s := &server{o: o.withDefaults()}
	var rt router
	s.apiRoutes(&rt)
	s.probeRoutes(&rt)
	s.serve(ctx, l, rt, false)
	return nil
}

// ServeProbes serves the read-only endpoints /healthz, /readyz and /metrics
// on l (the --http-addr listener) until ctx is done. Nothing it serves can
// change any state: other paths are 404 and other methods 405.
func ServeProbes(ctx context.Context, l net.Listener, o Options) error {
	if o.Backend == nil {
		return errors.New("probe server: no backend")
	}
	s := &server{o: o.withDefaults()}
	var rt router
	s.probeRoutes(&rt)
	s.serve(ctx, l, rt, true)
	return nil
}

func (s *server) apiRoutes(rt *router) {
	rt.handle("GET", "/v1/services", s.list)
	rt.handle("GET", "/v1/services/{name}", s.get)
	rt.handle("POST", "/v1/services/{name}/start", s.action(Backend.Start))
	rt.handle("POST", "/v1/services/{name}/stop", s.action(Backend.Stop))
	rt.handle("POST", "/v1/services/{name}/restart", s.action(Backend.Restart))
	rt.handle("POST", "/v1/services/{name}/signal", s.signal)
	rt.handle("POST", "/v1/shutdown", s.shutdown)
	rt.handle("GET", "/v1/wait", s.wait)
	rt.handle("POST", "/v1/reload", s.reload)
	rt.handle("GET", "/v1/config", s.config)
	rt.handle("GET", "/v1/services/{name}/logs", s.logs)
}

func (s *server) probeRoutes(rt *router) {
	rt.handle("GET", "/healthz", s.healthz)
	rt.handle("GET", "/readyz", s.readyz)
	rt.handle("GET", "/metrics", s.metrics)
}

// metrics serves GET /metrics in the Prometheus text format.
func (s *server) metrics(w *response, r *request) {
	ctx, cancel := s.callCtx(r)
	defer cancel()
	list, err := s.o.Backend.List(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cfg, err := s.o.Backend.Config(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var b bytes.Buffer
	metrics.Write(&b, s.o.Version, list, cfg)
	w.Header().Set("Content-Type", metrics.ContentType)
	_, _ = w.Write(b.Bytes())
}

// The connection limits of the two listeners (see docs/security.md).
const (
	// maxSocketConns bounds the control socket's connections; more wait in
	// the kernel's queue until one ends.
	maxSocketConns = 128
	// maxProbeConns bounds the --http-addr connections; a new one evicts
	// the oldest that runs no handler.
	maxProbeConns = 64
	// probeIdleTimeout is how long a probe connection may stay open
	// between requests.
	probeIdleTimeout = 5 * time.Second
)

// serve runs the HTTP server for rt on l; probe selects the limits of the
// --http-addr listener.
func (s *server) serve(ctx context.Context, l net.Listener, rt router, probe bool) {
	hs := &httpServer{
		routes:      rt,
		maxBody:     s.o.MaxBodyBytes,
		headTimeout: s.o.ReadHeaderTimeout,
		// The headers, as long again for a body, the Backend call and as
		// long again to write the reply; a wait extends it.
		readTimeout: 2*s.o.ReadHeaderTimeout + 2*s.o.CallTimeout,
		idleTimeout: idleTimeout,
		maxConns:    maxSocketConns,
		log:         s.o.Log,
	}
	if probe {
		hs.idleTimeout, hs.maxConns, hs.evict = probeIdleTimeout, maxProbeConns, true
	}
	hs.run(ctx, l, shutdownGrace)
}

// drainLimit is the largest oversized body the server still reads (and
// throws away) so that its client gets the 413; a larger one is cut off.
const drainLimit = 1 << 20

func (s *server) callCtx(r *request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.o.CallTimeout)
}

func (s *server) list(w *response, r *request) {
	ctx, cancel := s.callCtx(r)
	defer cancel()
	list, err := s.o.Backend.List(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []status.ServiceStatus{}
	}
	cfg, err := s.o.Backend.Config(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, control.ServicesReply{Services: list, Config: &cfg})
}

func (s *server) get(w *response, r *request) {
	name := r.PathValue("name")
	ctx, cancel := s.callCtx(r)
	defer cancel()
	st, err := s.o.Backend.Get(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, st)
}

// action serves start, stop and restart: they take no body and answer with
// the service's status after the request.
func (s *server) action(call func(Backend, context.Context, string) (status.ServiceStatus, error)) handlerFunc {
	return func(w *response, r *request) {
		name := r.PathValue("name")
		ctx, cancel := s.callCtx(r)
		defer cancel()
		st, err := call(s.o.Backend, ctx, name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, 200, st)
	}
}

func (s *server) signal(w *response, r *request) {
	name := r.PathValue("name")
	var req control.SignalRequest
	if !decodeBody(w, r, &req) {
		return
	}
	sig, err := signalFromJSON(req.Signal)
	if err != nil {
		writeError(w, 400, "bad_request", err.Error(), nil)
		return
	}
	ctx, cancel := s.callCtx(r)
	defer cancel()
	if err := s.o.Backend.Signal(ctx, name, sig); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, control.SignalReply{Name: name, Signal: control.SignalName(sig)})
}

func signalFromJSON(raw json.RawMessage) (syscall.Signal, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New(`missing "signal": send {"signal":"HUP"}`)
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("bad signal: %w", err)
		}
	} else {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf("bad signal %s: a name or a number", raw)
		}
		s = strconv.Itoa(n)
	}
	return control.ParseSignal(s)
}

// decodeBody reads one JSON object into v; on failure it answers 400 or 413.
func decodeBody(w *response, r *request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Nothing but white space may follow the object.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
			if terr != nil && !errors.Is(terr, io.EOF) {
				err = terr
			}
		}
	}
	if err == nil {
		return true
	}
	switch {
	case errors.Is(err, io.EOF):
		writeError(w, 400, "bad_request", "empty request body: a JSON object is expected", nil)
	default:
		writeError(w, 400, "bad_request", "bad request body: "+err.Error(), nil)
	}
	return false
}

func (s *server) shutdown(w *response, r *request) {
	ctx, cancel := s.callCtx(r)
	defer cancel()
	err := s.o.Backend.Shutdown(ctx)
	// Asking twice is not an error: horust is shutting down either way.
	if err != nil && !errors.Is(err, control.ErrShuttingDown) {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 202, control.ShutdownReply{Status: "shutting down"})
}

func (s *server) wait(w *response, r *request) {
	q := r.URL.Query()
	for k := range q {
		if k != "service" && k != "for" && k != "timeout" {
			writeError(w, 400, "bad_request",
				fmt.Sprintf("unknown parameter %q: wait takes service, for and timeout", k), nil)
			return
		}
	}
	names := q["service"]
	if len(names) == 0 {
		writeError(w, 400, "bad_request", "wait needs at least one service=NAME", nil)
		return
	}
	cond := control.WaitRunning
	switch f := q.Get("for"); f {
	case "", string(control.WaitRunning):
	case string(control.WaitFinished):
		cond = control.WaitFinished
	default:
		writeError(w, 400, "bad_request",
			fmt.Sprintf("bad for=%q: running or finished", f), nil)
		return
	}
	timeout := defaultWaitTimeout
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > s.o.MaxWait {
			writeError(w, 400, "bad_request",
				fmt.Sprintf("bad timeout=%q: a duration such as 30s, above 0 and at most %s", t, s.o.MaxWait), nil)
			return
		}
		timeout = d
	}
	// A long poll outlives the connection's read and write timeouts; the
	// server would cancel it when the read deadline passes.
	w.extendDeadline(time.Now().Add(timeout + writeMargin))

	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	st, err := s.o.Backend.Wait(ctx, names, cond)
	switch {
	case err == nil:
		writeJSON(w, 200, control.ServicesReply{Services: st})
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		s.waitTimedOut(w, r, names, cond, timeout)
	default:
		s.fail(w, r, err)
	}
}

// waitTimedOut answers 408 with the services that do not meet cond yet.
func (s *server) waitTimedOut(w *response, r *request, names []string, cond control.WaitFor, timeout time.Duration) {
	ctx, cancel := s.callCtx(r)
	defer cancel()
	var late []status.ServiceStatus
	var parts []string
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		st, err := s.o.Backend.Get(ctx, n)
		if err != nil {
			parts = append(parts, fmt.Sprintf("'%s'", n))
			continue
		}
		if !cond.Met(st) {
			late = append(late, st)
			parts = append(parts, fmt.Sprintf("'%s' (%s)", n, st.State.API()))
		}
	}
	msg := fmt.Sprintf("timed out after %s waiting for %s to be %s", timeout, strings.Join(parts, ", "), cond)
	if len(parts) == 0 {
		msg = fmt.Sprintf("timed out after %s waiting for the services to be %s", timeout, cond)
	}
	writeError(w, 408, "timeout", msg, late)
}

func (s *server) healthz(w *response, r *request) {
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	list, err := s.o.Backend.List(ctx)
	if err != nil {
		msg := fmt.Sprintf("horust's loop did not answer within %s: %v", probeTimeout, err)
		writeError(w, 503, "unhealthy", msg, nil)
		return
	}
	writeJSON(w, 200, control.HealthReply{Status: "ok", Version: s.o.Version, Services: len(list)})
}

func (s *server) readyz(w *response, r *request) {
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	list, err := s.o.Backend.List(ctx)
	if err != nil {
		msg := fmt.Sprintf("horust's loop did not answer within %s: %v", probeTimeout, err)
		writeJSON(w, 503, control.ReadyReply{Error: msg})
		return
	}
	var late []status.ServiceStatus
	var parts []string
	for _, st := range list {
		if !st.Ready() {
			late = append(late, st)
			parts = append(parts, fmt.Sprintf("'%s' (%s)", st.Name, st.State.API()))
		}
	}
	if len(late) > 0 {
		msg := fmt.Sprintf("%d of %d services not ready: %s", len(late), len(list), strings.Join(parts, ", "))
		writeJSON(w, 503, control.ReadyReply{Error: msg, NotReady: late})
		return
	}
	writeJSON(w, 200, control.ReadyReply{Ready: true})
}

// fail answers with the status code that err calls for.
func (s *server) fail(w *response, r *request, err error) {
	msg := err.Error()
	switch {
	case errors.Is(err, control.ErrNotFound):
		writeError(w, 404, "not_found", msg, nil)
	case errors.Is(err, control.ErrShuttingDown):
		writeError(w, 409, "shutting_down", msg, nil)
	case errors.Is(err, control.ErrUnreachable):
		writeError(w, 409, "unreachable", msg, nil)
	case errors.Is(err, control.ErrNotRunning):
		writeError(w, 409, "not_running", msg, nil)
	case errors.Is(err, control.ErrExiting):
		writeError(w, 503, "exiting", msg, nil)
	case errors.Is(err, control.ErrNoConfig):
		writeError(w, 409, "no_config", msg, nil)
	case errors.Is(err, control.ErrInvalidConfig):
		rep := control.ErrorReply{Error: control.ErrInvalidConfig.Error(), Code: "invalid_config"}
		if ic, ok := errors.AsType[*control.InvalidConfigError](err); ok {
			rep.Problems = ic.Problems
		}
		writeJSON(w, 422, rep)
	case r.Context().Err() != nil:
		// The server is stopping (horust exits) or the client left.
		writeError(w, 503, "exiting", "horust is exiting", nil)
	case errors.Is(err, context.DeadlineExceeded):
		s.o.Log.Warn("control request timed out", "method", r.Method, "path", r.URL.Path, "timeout", s.o.CallTimeout)
		writeError(w, 504, "timeout",
			fmt.Sprintf("horust did not answer within %s", s.o.CallTimeout), nil)
	default:
		s.o.Log.Warn("control request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, 500, "internal", msg, nil)
	}
}

func writeError(w *response, code int, kind, msg string, services []status.ServiceStatus) {
	writeJSON(w, code, control.ErrorReply{Error: msg, Code: kind, Services: services})
}

func writeJSON(w *response, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = 500
		b = []byte(`{"error":"encoding the reply failed","code":"internal"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
