package supervisor

import (
	"slices"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// BenchmarkStepExitRestart is the decision work of one restart of a service
// that exits at once with strategy "always" and no backoff: the main process
// exits, its output is drained (the run is over: classified, Running →
// Success → Initial), the dependencies are ready (→ Starting, start now),
// the fork succeeded (→ Started → Running). Compare runs with benchstat (see
// docs/benchmarks.md).
func BenchmarkStepExitRestart(b *testing.B) {
	c := config.Default("/")
	c.Name, c.Command = "bench.toml", "/bin/true"
	c.Restart.Strategy = config.RestartAlways
	now := time.Unix(1_700_000_000, 0)
	running := record{State: Running, PID: 100, Reached: true, StartedAt: now}
	e := exitInfo{Valid: true, PID: 100, Code: 0}
	// Each step appends to one buffer on the stack, as the loop's apply
	// does with its own.
	cycle := func() (record, []action) {
		var buf [16]action
		r, acts := step(c, running, input{ev: EvMainExit, exit: e}, now, false, buf[:0])
		r, acts = step(c, r, input{ev: EvDrained}, now, false, acts)
		r, acts = step(c, r, input{ev: EvDepsReady}, now, false, acts)
		return step(c, r, input{ev: EvSpawned, pid: 101}, now, false, acts)
	}
	// the cycle must do what its name says, or the benchmark measures nothing
	if r, acts := cycle(); r.State != Running || r.PID != 101 || r.Restarts != 1 || !slices.Contains(acts, actStart) || !slices.Contains(acts, actRunOver) {
		b.Fatalf("cycle ended in %s pid %d restarts %d with actions %v", r.State, r.PID, r.Restarts, acts)
	}
	b.ReportAllocs()
	for b.Loop() {
		cycle()
	}
}

// BenchmarkStepIgnored is the cost of an event that does not apply in the
// current state (a stray exit of a service that already finished).
func BenchmarkStepIgnored(b *testing.B) {
	c := config.Default("/")
	c.Name, c.Command = "bench.toml", "/bin/true"
	now := time.Unix(1_700_000_000, 0)
	r := record{State: Finished}
	in := input{ev: EvExitFail, exit: exitInfo{Valid: true, Code: 1}}
	if got, acts := step(c, r, in, now, false, nil); got.State != Finished || len(acts) != 0 {
		b.Fatalf("ignored event changed the run: %s %v", got.State, acts)
	}
	b.ReportAllocs()
	for b.Loop() {
		step(c, r, in, now, false, nil)
	}
}
