// Package health holds the leaf parts of health checking: the file, http and
// tcp probes, and the readiness-notification socket (the sd_notify protocol).
// Its http client has no TLS of its own: horust-probe (cmd/horust-probe)
// gives it a Handshake and checks https endpoints, in a process of its own,
// so that horust does not link crypto/tls (docs/design.md, "https checks run
// in horust-probe").
//
// Ownership rules:
//
//   - Nothing here holds supervisor state or starts, signals or reaps a
//     process. The command check is not here: it is a child process, and only
//     the supervisor loop starts and reaps children.
//   - A probe is a leaf goroutine: it gets a copy of the service's
//     [config.Healthiness] and a context, and reports through a callback
//     (Prober.Go) that sends into the supervisor loop.
//   - Every probe is bounded by its timeout. A probe that hangs is abandoned at
//     the timeout and reported as a failure; nothing waits for it.
//   - The notify socket reads datagrams and reports each valid one through a
//     callback; deciding whether the sender belongs to a service, and what
//     READY=1 means for its state, is the supervisor's business (see
//     NotifyMessage.From).
//
// docs/health.md describes the checks and the semantics the supervisor applies.
package health
