// Package supervisor runs services: it starts them in dependency order,
// checks their health, restarts them by policy, reaps every child, forwards
// signals and shuts everything down in order.
//
// The rules this package keeps, and why:
//
//   - One owner. A single goroutine, the loop (Loop.Run), owns all service
//     state. It is the only code that starts, reaps and signals processes.
//     Probes, log copiers, the notify socket and control-socket handlers are
//     leaf goroutines: they own nothing of the loop's state and only send it
//     messages (control requests carry a buffered reply channel).
//
//   - No lost exits. Because start and reap run on the same goroutine, a pid
//     is always recorded before it can be reaped. The loop reaps with
//     wait4(-1) until nothing is left, once before the first start and on
//     every SIGCHLD; coalesced signals therefore lose nothing. Nothing in the
//     binaries calls exec.Cmd.Wait or os.Process.Wait on a child: it would
//     race the loop for exit statuses (a test enforces this).
//
//   - Decisions are data. What an event does to a service is the transition
//     table (transitions) and the pure function step, which takes the
//     current state, the event and the time, and returns the new state and
//     the actions to perform. The loop performs the actions; nothing else
//     changes state.
//
//   - One deadline, no sleeps, no polling. The loop keeps one timer, reset
//     to the earliest deadline of any service (start delay and backoff, kill
//     grace, start timeout, next round of health checks, output drain). An
//     idle horust sleeps in the kernel and makes no wakeups of its own.
package supervisor
