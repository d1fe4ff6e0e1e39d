// Package control is horust's control plane: the HTTP/1.1 + JSON API served
// on the Unix socket (and, read-only, on --http-addr), and the client that
// horustctl uses. Handlers are leaf goroutines: they hold no supervisor state
// and reach the supervisor only through a Backend.
package control

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// ServiceStatus is what the API reports about one service.
type ServiceStatus struct {
	Name  string `json:"name"`
	State string `json:"state"` // INITIAL, STARTING, STARTED, RUNNING, INKILLING, SUCCESS, FAILED, FINISHED, FINISHEDFAILED
	PID   int    `json:"pid,omitempty"`
	// Restarts counts the starts after the first one.
	Restarts int `json:"restarts"`
	// LastExitCode is the exit code of the last run (128+N for death by signal N).
	LastExitCode *int   `json:"last_exit_code,omitempty"`
	LastSignal   string `json:"last_signal,omitempty"` // "TERM" when the last run died of a signal
	// StartedAt is when the current run started; zero when not alive.
	StartedAt     time.Time `json:"started_at,omitzero"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Health is "healthy", "unhealthy", "unknown" (no result yet) or "" (no checks).
	Health string `json:"health,omitempty"`
	// HealthFailures counts every failed round of checks since horust started.
	HealthFailures int `json:"health_failures"`
	// Notify is set when the service uses notify = true.
	Notify *NotifyStatus `json:"notify,omitempty"`
	// OutputCopied and OutputDropped count the bytes of the service's output
	// that horust copied (rotation, prefixing) and that it had to drop
	// because the destination could not take them (full disk), over all its
	// runs. Direct output is not seen by horust and not counted.
	OutputCopied  uint64 `json:"output_copied_bytes,omitempty"`
	OutputDropped uint64 `json:"output_dropped_bytes,omitempty"`
	// QuickExits counts the runs in a row that ended within min-uptime;
	// from 2 on the service is in a crash loop and its restarts wait.
	QuickExits int `json:"quick_exits,omitempty"`
	// NextStart is when a service waiting to start (start-delay, backoff,
	// crash loop) starts; zero when it is not waiting.
	NextStart time.Time `json:"next_start,omitzero"`
	// Reason says why the service is in its state, when there is something
	// to say ("dependency 'db' failed", "killed: out of memory (limit 100 MiB)").
	Reason string `json:"reason,omitempty"`
}

// NotifyStatus is the sd_notify state of a service.
type NotifyStatus struct {
	Ready  bool   `json:"ready"`
	Status string `json:"status,omitempty"` // last STATUS=...
}

// WaitFor is the condition horustctl wait waits for.
type WaitFor string

// The conditions of WaitFor.
const (
	WaitRunning  WaitFor = "running"  // RUNNING (FINISHED also satisfies it, as for start-after)
	WaitFinished WaitFor = "finished" // FINISHED or FINISHEDFAILED
)

// Errors a Backend returns; the server maps them to status codes. A Backend
// may wrap them with context (fmt.Errorf("service %q: %w", name,
// ErrNotFound)): the server matches them with errors.Is and sends the whole
// message to the client.
var (
	ErrNotFound     = errors.New("no such service")                // 404
	ErrShuttingDown = errors.New("horust is shutting down")        // 409
	ErrUnreachable  = errors.New("the condition can never be met") // 409, e.g. waiting for running on FINISHEDFAILED
	ErrNotRunning   = errors.New("service is not running")         // 409, e.g. a signal to a service with no process
	ErrExiting      = errors.New("horust is exiting")              // 503: the supervisor loop has returned
)

// Backend is the supervisor as the control plane sees it. Every method sends
// one request to the supervisor loop and waits for its reply or for ctx.
type Backend interface {
	// List returns every service in start order.
	List(ctx context.Context) ([]ServiceStatus, error)
	// Get returns one service, or ErrNotFound.
	Get(ctx context.Context, name string) (ServiceStatus, error)
	// Start starts a FINISHED or FINISHEDFAILED service again; a service
	// being stopped runs again once the stop is done (no-op otherwise).
	Start(ctx context.Context, name string) (ServiceStatus, error)
	// Stop stops a service for good: it ends FINISHED, or FINISHEDFAILED if
	// it had to be killed.
	Stop(ctx context.Context, name string) (ServiceStatus, error)
	// Restart stops a running service and starts it again whatever its
	// restart strategy; a finished one is started, and one being stopped
	// runs again once the stop is done. During shutdown both are refused
	// with ErrShuttingDown.
	Restart(ctx context.Context, name string) (ServiceStatus, error)
	// Signal sends sig to the service's processes.
	Signal(ctx context.Context, name string, sig syscall.Signal) error
	// Shutdown starts a graceful shutdown of horust (as SIGTERM does).
	Shutdown(ctx context.Context) error
	// Wait returns once every named service meets the condition, with their
	// statuses; ErrUnreachable when one of them can no longer meet it.
	Wait(ctx context.Context, names []string, cond WaitFor) ([]ServiceStatus, error)
	Reloader
}
