// Package control is what horust's control API server and its client
// (horustctl) share: the request and reply bodies, the wait conditions, the
// errors and their codes on the wire, signal names, where the control
// socket lives and the credentials of a socket's peer. The server is
// control/server, the client control/client, the /metrics exposition
// control/metrics; the statuses they carry are package status.
package control

import (
	"encoding/json"
	"errors"

	"github.com/horust-go/horust/internal/status"
)

// WaitFor is the condition horustctl wait waits for.
type WaitFor string

// The conditions of WaitFor.
const (
	WaitRunning  WaitFor = "running"  // up as for start-after: RUNNING or FINISHED, a job only FINISHED
	WaitFinished WaitFor = "finished" // FINISHED or FINISHEDFAILED
)

// Met reports whether st meets the condition: for running, that the
// service is ready (status.ServiceStatus.Ready); for finished, that it is
// done for good.
func (c WaitFor) Met(st status.ServiceStatus) bool {
	if c == WaitFinished {
		return st.State.Terminal()
	}
	return st.Ready()
}

// Errors the supervisor (server.Backend) returns; the server maps them to
// status codes and codes, and the client's errors wrap them again
// (client.APIError). A Backend may wrap them with context
// (fmt.Errorf("service %q: %w", name, ErrNotFound)): the server matches
// them with errors.Is and sends the whole message to the client.
var (
	ErrNotFound     = errors.New("no such service")                // 404
	ErrShuttingDown = errors.New("horust is shutting down")        // 409
	ErrUnreachable  = errors.New("the condition can never be met") // 409, e.g. waiting for running on FINISHEDFAILED
	ErrNotRunning   = errors.New("service is not running")         // 409, e.g. a signal to a service with no process
	ErrExiting      = errors.New("horust is exiting")              // 503: the supervisor loop has returned
)

// ErrorReply is the body of every error answer.
type ErrorReply struct {
	Error string `json:"error"`
	// Code names the kind of error for programs: not_found, bad_request,
	// too_large, method_not_allowed, no_endpoint, shutting_down,
	// unreachable, not_running, not_kept, timeout, exiting, invalid_config,
	// no_config, internal.
	Code string `json:"code,omitempty"`
	// Problems, on a reload refused with invalid_config, are the
	// configuration's problems, each with its file, line and key.
	Problems []string `json:"problems,omitempty"`
	// Services, on a wait that timed out, are the statuses of the services
	// that did not meet the condition.
	Services []status.ServiceStatus `json:"services,omitempty"`
}

// ServicesReply is the body of a list and of a successful wait.
type ServicesReply struct {
	Services []status.ServiceStatus `json:"services"`
	// Config, on a list, is the configuration's generation and last reload.
	Config *ConfigStatus `json:"config,omitempty"`
}

// SignalRequest is the body of POST /v1/services/{name}/signal. Signal is a
// name ("HUP", "SIGHUP") or a number, as a JSON string or number.
type SignalRequest struct {
	Signal json.RawMessage `json:"signal"`
}

// SignalReply is the answer to a signal request.
type SignalReply struct {
	Name   string `json:"name"`
	Signal string `json:"signal"`
}

// ShutdownReply is the answer to POST /v1/shutdown.
type ShutdownReply struct {
	Status string `json:"status"`
}

// HealthReply is the body of GET /healthz when horust is alive.
type HealthReply struct {
	Status   string `json:"status"`
	Version  string `json:"version,omitempty"`
	Services int    `json:"services"`
}

// ReadyReply is the body of GET /readyz.
type ReadyReply struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
	// NotReady lists the services that are not ready (status.ServiceStatus.Ready).
	NotReady []status.ServiceStatus `json:"not_ready,omitempty"`
}
