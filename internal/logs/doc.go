// Package logs wires the standard output and standard error of services.
//
// Three modes exist per stream, chosen by Setup from the service's keys:
//
//   - direct: the child gets a file descriptor that horust already has (its
//     own stdout or stderr) or that Setup opened (a log file in append mode).
//     Horust copies nothing.
//   - rotation: the child writes into a pipe and a copier cuts the stream
//     into chunk files of a bounded size, deleting old chunks when asked.
//   - prefix: the child writes into a pipe and a copier writes each line to
//     horust's stdout or stderr behind "<service name> | ".
//
// Ownership rules:
//
//   - Setup, Started and Abort run on the supervisor goroutine. Setup opens
//     everything that can fail (files, pipes), so a start fails before the
//     fork when its output cannot be written.
//   - Copiers are leaf goroutines, one per pipe. A copier owns the read end
//     of its pipe and the files it writes, and nothing else; it ends at EOF,
//     which comes when every process holding the write end (the service and
//     anything it left running with its stdout) has closed it.
//   - Outputs is the only state shared between copiers: one lock that makes
//     every batch of whole lines written to horust's stdout or stderr one
//     write, and per-service counters.
//   - A copier never stops reading because a write failed: the data is
//     dropped and counted, so a service never blocks on a full pipe because
//     its log destination is broken.
//
// Files opened by horust and the read ends of pipes are close-on-exec; only
// the child's ends reach a child, through the fd table its starter builds.
package logs
