// Package proc starts, signals and reaps the processes of services.
//
// It is the operating-system side of the supervisor: the supervisor loop
// calls it, and only the supervisor loop. Nothing here waits for a
// particular child: Reap collects any exited child (wait4(-1)), and the loop
// is its only caller, so no exit status is ever stolen from it.
package proc
