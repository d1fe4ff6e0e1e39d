package config

import (
	"syscall"
	"time"
)

// Service is one service, decoded from its file with every default applied.
// The field comments name the TOML key each field comes from.
type Service struct {
	Name string // name; defaults to the file name with its extension ("db.toml")
	File string // path of the file it was loaded from; "" in one-shot mode

	Command string // command (required, split by shell rules at start)
	// Argv, when set (one-shot mode with several arguments), is the exact
	// argv to run; Command is then only its display form.
	Argv             []string
	User             User   // user
	WorkingDirectory string // working-directory; default: horust's cwd at load time

	Stdout string // stdout: "STDOUT" (default), "STDERR" or a file path
	Stderr string // stderr: "STDERR" (default), "STDOUT" or a file path

	StdoutRotateSize uint64 // stdout-rotate-size in bytes; 0 = no rotation
	StdoutRotateKeep int    // stdout-rotate-keep: old chunks kept; 0 = keep all (new)
	StderrRotateSize uint64 // stderr-rotate-size (new)
	StderrRotateKeep int    // stderr-rotate-keep (new)
	// AppendTimestamp is stdout-should-append-timestamp-to-filename: rotated
	// chunk names get ".<unix seconds>" (only when rotating).
	AppendTimestamp bool
	Prefix          bool // stdout-prefix: "<name> | " before every line on horust's stdout/stderr (new)
	Timestamps      bool // stdout-timestamps: an RFC 3339 time before every prefixed line (new)

	// Oneshot (oneshot, new) marks a job: it counts as up for start-after
	// only once it has exited successfully, and every unsuccessful exit is
	// a failed start (docs/design.md, jobs).
	Oneshot bool

	StartDelay    time.Duration // start-delay, before every start
	StartAfter    []string      // start-after
	ShutdownAfter []string      // shutdown-after
	SignalRewrite string        // signal-rewrite: accepted and ignored, as in the original

	Restart     Restart     // [restart]
	Healthiness Healthiness // [healthiness]
	Failure     Failure     // [failure]
	Environment Environment // [environment]
	Termination Termination // [termination]
	Resource    Resource    // [resource-limit] or [resource]
}

// User is the user a service runs as.
type User struct {
	Set    bool   // false: the uid horust runs as
	IsName bool   // the TOML value was a string: always a user name, even "1000"
	Name   string // when IsName
	UID    uint32 // when !IsName
}

// RestartStrategy is [restart] strategy.
type RestartStrategy string

// The restart strategies.
const (
	RestartNever     RestartStrategy = "never"
	RestartOnFailure RestartStrategy = "on-failure"
	RestartAlways    RestartStrategy = "always"
)

// Restart is the [restart] table.
type Restart struct {
	Strategy RestartStrategy // default never
	Backoff  time.Duration   // default 0s
	Attempts uint32          // default 0
	// MinUptime (min-uptime, new, default 10s): a run shorter than this is
	// quick; quick runs in a row are a crash loop, whose restarts are
	// delayed. 0 turns the guard off (docs/design.md, crash loops).
	MinUptime time.Duration
	// MaxBackoff (max-backoff, new, default 10s) caps the crash-loop delay.
	MaxBackoff time.Duration
}

// Healthiness is the [healthiness] table.
type Healthiness struct {
	HTTPEndpoint string // http-endpoint
	FilePath     string // file-path
	Command      string // command
	TCPEndpoint  string // tcp-endpoint (new): host:port
	MaxFailed    int32  // max-failed, default 3; values below 1 act as 1
	// Interval (new, default 1s) is the time between the starts of two rounds of checks.
	Interval time.Duration
	// Timeout (new, default 1s) bounds each check.
	Timeout time.Duration
	// StartTimeout (new, 0 = none): not healthy by then after a start is a failed start.
	StartTimeout time.Duration
	Notify       bool // notify (new): Running needs READY=1 on NOTIFY_SOCKET
}

// HasChecks reports whether any check is configured (notify is not a check).
func (h Healthiness) HasChecks() bool {
	return h.HTTPEndpoint != "" || h.FilePath != "" || h.Command != "" || h.TCPEndpoint != ""
}

// FailureStrategy is [failure] strategy.
type FailureStrategy string

// The failure strategies.
const (
	FailureIgnore         FailureStrategy = "ignore"
	FailureKillDependents FailureStrategy = "kill-dependents"
	FailureShutdown       FailureStrategy = "shutdown"
)

// Failure is the [failure] table.
type Failure struct {
	SuccessfulExitCodes []int           // successful-exit-code, default [0]
	Strategy            FailureStrategy // strategy, default ignore
}

// Environment is the [environment] table.
type Environment struct {
	KeepEnv    bool              // keep-env, default false
	ReExport   []string          // re-export
	Additional map[string]string // additional
}

// Termination is the [termination] table.
type Termination struct {
	Signal      syscall.Signal // signal, default TERM
	Wait        time.Duration  // wait, default 5s
	DieIfFailed []string       // die-if-failed
}

// MinCPU is the smallest CPU limit the kernel takes: a CFS quota of 1 ms
// every 100 ms. A smaller one would fail every start, so it is a
// configuration error.
const MinCPU = 0.01

// Resource is the [resource-limit] (or [resource]) table. Zero means unset.
type Resource struct {
	CPU     float64 // cpu as a fraction of CPUs (cpu-percent / 100)
	Memory  uint64  // memory in bytes
	PidsMax int64   // pids-max
}

// Any reports whether any limit is set.
func (r Resource) Any() bool { return r.CPU > 0 || r.Memory > 0 || r.PidsMax > 0 }

// Global is the global horust.toml.
type Global struct {
	UnsuccessfulExitFinishedFailed bool
}
