package proc

import (
	"syscall"

	"github.com/horust-go/horust/internal/config"
)

// OS is what the supervisor loop needs from the operating system: start,
// reap, and (through Process) signal. System is the real one; the loop's unit
// tests use a small fake.
type OS interface {
	// Start starts one run of svc.
	Start(svc *config.Service, o StartOptions) (Process, error)
	// Reap returns the next exited child, ok false when none is left.
	Reap() (pid int, ws syscall.WaitStatus, ok bool)
	// Release frees what a service keeps between runs (its cgroup) once it
	// has finished for good.
	Release(svc *config.Service)
}

// Process is one started run of a service (or of a health-check command).
type Process interface {
	Pid() int
	// Signal sends sig to every process of the run: its process group and,
	// where there is one, its cgroup.
	Signal(sig syscall.Signal) error
	// Exited is called once the main process was reaped: it explains the
	// exit when there is more to say than the status (for example "killed:
	// out of memory (limit 100 MiB)").
	Exited(ws syscall.WaitStatus) (reason string)
	// Alive reports whether any process of the run is left (in its process
	// group or cgroup) after the main process exited.
	Alive() bool
	// WhenOutputIdle: see logs.Wiring.WhenIdle. It reports whether the
	// run's output is being written to a slow destination, and then calls
	// fn once, from another goroutine, when that write is done.
	WhenOutputIdle(fn func()) bool
}

// StartOptions are the per-start inputs that do not come from the service's
// configuration.
type StartOptions struct {
	// Env is added last to the service's environment (NOTIFY_SOCKET).
	Env []string
	// Drained, when not nil, is called once, from any goroutine, when all
	// the output the run wrote has been copied to its destination. It is
	// called at once when nothing is copied.
	Drained func()
	// Check marks a health-check command: horust's environment, cwd and
	// user, output discarded, no cgroup.
	Check bool
	// CheckStderr, for a check, takes its standard error instead of
	// discarding it: it is called once, from another goroutine, with the
	// first line the check wrote there (at most 1 KiB, trimmed) once every
	// writer has closed it.
	CheckStderr func(line string)
	// Own says the program is one of horust's own (horust-probe): it is
	// looked for beside horust's executable first, then in PATH.
	Own bool
	// Foreground: see Spec.Foreground.
	Foreground bool
}
