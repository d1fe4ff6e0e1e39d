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
//   - Decisions are data. What an event does to a service is a cell of the
//     state machine, {next state, effect}: transitions for a service whose
//     run is not ending, endings for a run whose main process exited while
//     its output or processes it left are still outstanding. The pure
//     function step looks the cell up, applies its effect to the service's
//     record (state, deadline, intent, readiness, what the ending still
//     waits for, failed starts, crash-loop count) and follows the events
//     that result (a ready run is Running, a run that is over is a success
//     or a failure, then a restart or the end). It returns the new record
//     and the actions to perform. The loop feeds it what it sees (forks,
//     exits, with or without leftovers, drained output, an empty group,
//     the outcome of a round of checks, READY=1, requests, deadlines),
//     performs the actions and keeps the handles and their bookkeeping: the
//     process and its generation, the round of checks in flight (its probe
//     goroutine and command, their timeouts, when the next round starts),
//     and what it only shows (the notify STATUS). Only step changes a
//     record.
//
//   - One deadline, no sleeps, no polling. The loop keeps one timer, reset
//     to the earliest deadline of any service (each record has one: start
//     delay and backoff, start timeout, SIGKILL, the end of a run's drain)
//     and of the health checks (next round, a check command's timeout). An
//     idle horust sleeps in the kernel and makes no wakeups of its own.
package supervisor
