// Package status is what the supervisor reports about a service and what
// the control API sends on the wire: the lifecycle State with its names,
// the ServiceStatus of one service, and the one definition of "ready"
// that start-after, horustctl wait, /readyz and the status table share.
package status

import (
	"fmt"
	"time"
)

// State is the lifecycle state of a service, with the original's names.
type State uint8

// The states. Success and Failed are transient: the loop moves on from them
// in the same step (to Initial for a restart, or to Finished /
// FinishedFailed).
const (
	Initial        State = iota // waiting for its start-after dependencies
	Starting                    // waiting out start-delay + backoff, or forking
	Started                     // has a pid, not yet healthy
	Running                     // started and healthy
	InKilling                   // asked to stop; waiting for the exit
	Success                     // exited successfully (transient)
	Failed                      // exited unsuccessfully or could not start (transient)
	Finished                    // done for good
	FinishedFailed              // failed for good
	// NumStates is the number of states: they are 0 to NumStates-1, in
	// the order of a service's life.
	NumStates
)

// names are the states' names as the original spells them; the API and
// horustctl show them in capitals (apiNames).
var (
	names    = [NumStates]string{"Initial", "Starting", "Started", "Running", "InKilling", "Success", "Failed", "Finished", "FinishedFailed"}
	apiNames = [NumStates]string{"INITIAL", "STARTING", "STARTED", "RUNNING", "INKILLING", "SUCCESS", "FAILED", "FINISHED", "FINISHEDFAILED"}
)

func (s State) String() string {
	if s < NumStates {
		return names[s]
	}
	return "State(?)"
}

// API is the state's name as the control API and horustctl show it
// (RUNNING, FINISHEDFAILED, ...).
func (s State) API() string {
	if s < NumStates {
		return apiNames[s]
	}
	return "STATE(?)"
}

// Parse reads a state's API name (RUNNING).
func Parse(name string) (State, error) {
	for s, n := range apiNames {
		if n == name {
			return State(s), nil
		}
	}
	return 0, fmt.Errorf("unknown service state %q", name)
}

// MarshalText writes the API name: a State is a JSON string such as "RUNNING".
func (s State) MarshalText() ([]byte, error) {
	if s >= NumStates {
		return nil, fmt.Errorf("no service state %d", uint8(s))
	}
	return []byte(apiNames[s]), nil
}

// UnmarshalText reads the API name.
func (s *State) UnmarshalText(b []byte) error {
	st, err := Parse(string(b))
	if err == nil {
		*s = st
	}
	return err
}

// Terminal reports whether the service is done for good.
func (s State) Terminal() bool { return s == Finished || s == FinishedFailed }

// Alive reports whether the service has a process.
func (s State) Alive() bool { return s == Started || s == Running || s == InKilling }

// Up reports whether a service in state s counts as up for the services
// that start after it, for horustctl wait --for running and for /readyz:
// a job (oneshot) once it has finished successfully, any other service
// once it is Running or Finished.
func (s State) Up(oneshot bool) bool {
	return s == Finished || s == Running && !oneshot
}

// ServiceStatus is what the API reports about one service.
type ServiceStatus struct {
	Name  string `json:"name"`
	State State  `json:"state"` // its API name: INITIAL, STARTING, ..., FINISHEDFAILED
	// Oneshot is set for a job (oneshot = true): it is up once Finished,
	// not while it runs (see Ready).
	Oneshot bool `json:"oneshot,omitempty"`
	PID     int  `json:"pid,omitempty"`
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

// Ready reports whether the service is up (State.Up): what /readyz asks of
// every service and horustctl wait --for running of the named ones.
func (st ServiceStatus) Ready() bool { return st.State.Up(st.Oneshot) }

// NotifyStatus is the sd_notify state of a service.
type NotifyStatus struct {
	Ready  bool   `json:"ready"`
	Status string `json:"status,omitempty"` // last STATUS=...
}
