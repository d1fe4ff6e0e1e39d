// Package signals subscribes horust to every signal it handles while the
// program is still starting: its init starts the subscription on a
// goroutine of its own, so that the subscription runs beside the
// initialization of the packages that come after it and beside main's
// loading and the preparation of the first start, instead of before them.
//
// os/signal makes one round trip to the runtime's signal-mask thread per
// signal; for the nine signals horust handles that takes longer than
// everything else horust does before its first start, and the first fork
// must wait for it (docs/design.md, "One-shot start-up").
package signals

import (
	"os"
	"os/signal"
	"syscall"
)

// execArg is cgroup.ExecArg, the first argument of the re-exec step that
// joins v1 cgroups. It is not imported: this package must depend on
// nothing but os/signal, or its init would wait for the initialization of
// everything cgroup imports (a test keeps the two equal).
const execArg = "__horust_cgroup_exec"

// Forwarded are the signals passed on to every running service.
var Forwarded = []os.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// The channels of the subscription. Each kind of signal has a channel of
// its own: os/signal drops a signal whose channel is full, so a SIGCHLD
// flood must not share one with TERM. Stop has room for the second,
// forceful TERM or INT.
var (
	Child = make(chan os.Signal, 1)
	Stop  = make(chan os.Signal, 4)
	Other = make(chan os.Signal, 16)
	// SIGPIPE is subscribed (not ignored, which services would inherit)
	// so that a closed stdout or stderr never kills horust; nobody reads
	// its channel.
	pipe = make(chan os.Signal, 1)

	subscribed = make(chan struct{})
)

func init() {
	// The re-exec step that joins v1 cgroups (cgroup.MaybeExec) becomes
	// the service: a signal sent to it must act as it would on the
	// service, not be caught by a horust that never reads it.
	if len(os.Args) > 1 && os.Args[1] == execArg {
		return
	}
	go func() {
		signal.Notify(Child, syscall.SIGCHLD)
		signal.Notify(Stop, syscall.SIGTERM, syscall.SIGINT)
		signal.Notify(Other, Forwarded...)
		signal.Notify(pipe, syscall.SIGPIPE)
		close(subscribed)
	}()
}

// Wait returns once every signal is subscribed: from then on none is lost
// and none takes its default action on horust.
func Wait() { <-subscribed }
