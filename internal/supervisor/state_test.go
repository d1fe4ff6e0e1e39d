package supervisor

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// The whole state machine: every cell of both tables, "state event → next
// state (effect)"; a cell not listed ignores its event. A run that is ending
// (its main process exited, record.End.Seen) follows the ending table.
const wantTable = `
Initial DepsReady Starting arm-start
Initial DepFailed FinishedFailed dep-failed
Initial Stop Finished cancel
Initial Remove Finished cancel
Initial Replace Initial replace
Starting Due Starting start
Starting Spawned Started spawned
Starting SpawnFailed Failed spawn-failed
Starting Stop Finished cancel
Starting Remove Finished cancel
Starting Replace Initial replace
Started Due InKilling start-timeout
Started Ready Started ready
Started RoundPassed Started round-passed
Started RoundFailed Started round-failed
Started Healthy Running up
Started MainExit Started main-exit
Started MainExitLeft Started stop-leftovers
Started Drained Started drained
Started Stop InKilling stop
Started Kill InKilling kill
Started RestartReq InKilling restart-req
Started ForceKill InKilling force-kill
Started Remove InKilling stop
Started Replace InKilling replace-run
Running Ready Running ready
Running RoundPassed Running round-passed
Running RoundFailed Running round-failed
Running MainExit Running main-exit
Running MainExitLeft Running stop-leftovers
Running Drained Running drained
Running Stop InKilling stop
Running Kill InKilling kill
Running RestartReq InKilling restart-req
Running ForceKill InKilling force-kill
Running Remove InKilling stop
Running Replace InKilling replace-run
InKilling Due InKilling SIGKILL
InKilling MainExit InKilling main-exit
InKilling MainExitLeft InKilling leftovers-killed
InKilling Drained InKilling drained
InKilling Stop InKilling note-stop
InKilling RestartReq InKilling restart-after
InKilling StartReq InKilling restart-after
InKilling ForceKill InKilling force-kill
InKilling Remove InKilling note-stop
InKilling Replace InKilling note-replace
Success Restart Initial restart
Success Finish Finished finish
Success Replace Initial replace
Failed Restart Initial restart
Failed Finish FinishedFailed finish
Failed Replace Initial replace
Finished RestartReq Initial rearm
Finished StartReq Initial rearm
Finished Replace Initial replace
FinishedFailed RestartReq Initial rearm
FinishedFailed StartReq Initial rearm
FinishedFailed Replace Initial replace
ending:
Started Due Started ending-due
Started Drained Started drained
Started GroupEmpty Started group-empty
Started OutputIdle Started output-idle
Started GiveUp Started give-up
Started ExitOK Success run-over
Started ExitFail Failed run-over
Started Stop InKilling note-stop
Started Kill InKilling note-kill
Started RestartReq InKilling restart-after
Started ForceKill InKilling kill-leftovers-now
Started Remove InKilling note-stop
Started Replace InKilling note-replace
Running Due Running ending-due
Running Drained Running drained
Running GroupEmpty Running group-empty
Running OutputIdle Running output-idle
Running GiveUp Running give-up
Running ExitOK Success run-over
Running ExitFail Failed run-over
Running Stop InKilling note-stop
Running Kill InKilling note-kill
Running RestartReq InKilling restart-after
Running ForceKill InKilling kill-leftovers-now
Running Remove InKilling note-stop
Running Replace InKilling note-replace
InKilling Due InKilling ending-due
InKilling Drained InKilling drained
InKilling GroupEmpty InKilling group-empty
InKilling OutputIdle InKilling output-idle
InKilling GiveUp InKilling give-up
InKilling ExitOK Success run-over
InKilling ExitFail Failed run-over
InKilling Stop InKilling note-stop
InKilling RestartReq InKilling restart-after
InKilling StartReq InKilling restart-after
InKilling ForceKill InKilling kill-leftovers-now
InKilling Remove InKilling note-stop
InKilling Replace InKilling note-replace
`

// cells renders a table in wantTable's form.
func cells(tbl *[numStates][numEvents]cell) []string {
	var out []string
	for s := range numStates {
		for ev := range numEvents {
			if c := tbl[s][ev]; c.fx != fxNone {
				out = append(out, fmt.Sprintf("%s %s %s %s", s, ev, c.to, c.fx))
			}
		}
	}
	return out
}

func TestTransitionTable(t *testing.T) {
	got := strings.Join(append(append(cells(&transitions), "ending:"), cells(&endings)...), "\n")
	if want := strings.TrimSpace(wantTable); got != want {
		t.Fatalf("tables differ from wantTable; they are:\n%s", got)
	}
	for ev := range numEvents {
		if strings.HasPrefix(ev.String(), "Event(") {
			t.Errorf("event %d has no name", ev)
		}
	}
	for fx := range numEffects {
		if strings.HasPrefix(fx.String(), "effect(") || fx.String() == "" {
			t.Errorf("effect %d has no name", fx)
		}
	}
	for s := range numStates {
		for ev := range numEvents {
			if transitions[s][ev].fx == fxNone && transitions[s][ev].to != 0 || endings[s][ev].fx == fxNone && endings[s][ev].to != 0 {
				t.Errorf("%s %s: a cell with a state but no effect", s, ev)
			}
		}
	}
}

// exitCode is the exit of a main process with code.
func exitCode(code int) input {
	return input{ev: EvMainExit, exit: exitInfo{Valid: true, PID: 42, Code: code}}
}

func TestStep(t *testing.T) {
	t0 := time.Unix(1000, 0)
	base := func(edit ...func(*config.Service)) *config.Service { return svc("s", edit...) }
	withChecks := func(s *config.Service) { s.Healthiness.Command = "check" }
	cases := []struct {
		name     string
		cfg      *config.Service
		r        record
		in       input
		shutdown bool
		want     State
		acts     []action
		check    func(t *testing.T, r record)
	}{
		{name: "deps ready without delay starts at once", cfg: base(), r: record{State: Initial},
			in: input{ev: EvDepsReady}, want: Starting, acts: []action{actStart}},
		{name: "deps ready with delay and backoff waits", cfg: base(func(s *config.Service) { s.StartDelay = time.Second; s.Restart.Backoff = 2 * time.Second }),
			r: record{State: Initial, FailedStarts: 2}, in: input{ev: EvDepsReady}, want: Starting,
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(5*time.Second) {
					t.Fatalf("due %v, want start-delay + backoff × 2 = 5s", r.Due.Sub(t0))
				}
			}},
		{name: "spawned without checks is running", cfg: base(), r: record{State: Starting, FailedStarts: 2},
			in: input{ev: EvSpawned, pid: 42}, want: Running,
			check: func(t *testing.T, r record) {
				if r.PID != 42 || !r.Reached || r.FailedStarts != 0 {
					t.Fatalf("%+v: want pid 42, reached, attempts reset", r)
				}
			}},
		{name: "a job spawned is running but not up, and keeps its failed starts", cfg: base(func(s *config.Service) { s.Oneshot = true }), r: record{State: Starting, FailedStarts: 2},
			in: input{ev: EvSpawned, pid: 42}, want: Running,
			check: func(t *testing.T, r record) {
				if r.Reached || r.FailedStarts != 2 {
					t.Fatalf("%+v: a job reaches nothing before it succeeds", r)
				}
			}},
		{name: "a job's unsuccessful exit is a failed start", cfg: base(func(s *config.Service) { s.Oneshot = true; s.Restart.Attempts = 2 }),
			r: record{State: Running, FailedStarts: 1, Drained: true}, in: exitCode(1), want: Initial, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy},
			check: func(t *testing.T, r record) {
				if r.FailedStarts != 2 {
					t.Fatalf("attempts %d, want 2", r.FailedStarts)
				}
			}},
		{name: "a job out of attempts is FinishedFailed", cfg: base(func(s *config.Service) {
			s.Oneshot = true
			s.Restart.Attempts = 2
			s.Restart.Strategy = config.RestartOnFailure
		}),
			r: record{State: Running, FailedStarts: 2, Drained: true}, in: exitCode(1), want: FinishedFailed, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy, actRelease}},
		{name: "a job's success finishes it", cfg: base(func(s *config.Service) { s.Oneshot = true; s.Restart.Strategy = config.RestartOnFailure }),
			r: record{State: Running, FailedStarts: 1, Drained: true}, in: exitCode(0), want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "a failure says how the run ended", cfg: base(), r: record{State: Running, Reached: true, Drained: true},
			in: exitCode(3), want: FinishedFailed, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "exited with code 3" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "a death by signal says which", cfg: base(), r: record{State: Running, Reached: true, Drained: true},
			in: input{ev: EvMainExit, exit: exitInfo{Valid: true, Code: 137, Signal: syscall.SIGKILL}}, want: FinishedFailed, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "killed by SIGKILL" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "a kill's reason is kept", cfg: base(), r: record{State: InKilling, Reached: true, Intent: intentUnhealthy, Reason: "unhealthy: 3 failed checks in a row", Drained: true},
			in: input{ev: EvMainExit, exit: exitInfo{Valid: true, Code: 143, Signal: syscall.SIGTERM}}, want: FinishedFailed, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "unhealthy: 3 failed checks in a row" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "spawned with checks waits for them", cfg: base(withChecks), r: record{State: Starting},
			in: input{ev: EvSpawned, pid: 42}, want: Started, acts: []action{actStartChecks}},
		{name: "spawned with start-timeout sets the deadline", cfg: base(withChecks, func(s *config.Service) { s.Healthiness.StartTimeout = 3 * time.Second }),
			r: record{State: Starting}, in: input{ev: EvSpawned, pid: 1}, want: Started, acts: []action{actStartChecks},
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(3*time.Second) {
					t.Fatalf("due %v", r.Due.Sub(t0))
				}
			}},
		{name: "spawn failure retried while attempts remain", cfg: base(func(s *config.Service) { s.Restart.Attempts = 1 }),
			r: record{State: Starting}, in: input{ev: EvSpawnFailed, why: "no such program"}, want: Initial, acts: []action{actFailureStrategy}},
		{name: "spawn failure with attempts spent gives up", cfg: base(func(s *config.Service) { s.Restart.Attempts = 1; s.Restart.Strategy = config.RestartAlways }),
			r: record{State: Starting, FailedStarts: 1}, in: input{ev: EvSpawnFailed, why: "no such program"}, want: FinishedFailed, acts: []action{actFailureStrategy, actRelease},
			check: func(t *testing.T, r record) {
				if !strings.Contains(r.Reason, "gave up after 2 failed starts") {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "early failure with strategy never is retried while attempts remain", cfg: base(withChecks, func(s *config.Service) { s.Restart.Attempts = 3 }),
			r: record{State: Started, Drained: true}, in: exitCode(1), want: Initial, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy},
			check: func(t *testing.T, r record) {
				if r.FailedStarts != 1 || r.Restarts != 1 {
					t.Fatalf("attempts %d restarts %d, want 1 and 1", r.FailedStarts, r.Restarts)
				}
			}},
		{name: "early success is not a failed start", cfg: base(withChecks, func(s *config.Service) { s.Restart.Attempts = 3 }),
			r: record{State: Started, Drained: true}, in: exitCode(0), want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "failure after running with never finishes failed", cfg: base(),
			r: record{State: Running, Reached: true, Drained: true}, in: exitCode(1), want: FinishedFailed, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy, actRelease}},
		{name: "on-failure restarts a failed run", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartOnFailure }),
			r: record{State: Running, Reached: true, Drained: true}, in: exitCode(1), want: Initial, acts: []action{actStopChecks, actLogFailure, actRunOver, actFailureStrategy}},
		{name: "on-failure finishes a successful run", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartOnFailure }),
			r: record{State: Running, Reached: true, Drained: true}, in: exitCode(0), want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "always restarts a successful run", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }),
			r: record{State: Running, Reached: true, Drained: true}, in: exitCode(0), want: Initial, acts: []action{actStopChecks, actLogExit, actRunOver}},
		{name: "exit during shutdown finishes whatever the strategy", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }),
			r: record{State: InKilling, Reached: true, Intent: intentStop, SigKilled: true, Drained: true}, in: exitCode(137), shutdown: true, want: FinishedFailed, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "unhealthy below max-failed is counted", cfg: base(withChecks),
			r: record{State: Running, HealthFails: 1}, in: input{ev: EvRoundFailed}, want: Running,
			check: func(t *testing.T, r record) {
				if r.HealthFails != 2 || r.HealthFailsTotal != 1 {
					t.Fatalf("fails %d total %d", r.HealthFails, r.HealthFailsTotal)
				}
			}},
		{name: "unhealthy at max-failed kills", cfg: base(withChecks),
			r: record{State: Running, HealthFails: 2}, in: input{ev: EvRoundFailed}, want: InKilling, acts: []action{actStopChecks, actTermSignal},
			check: func(t *testing.T, r record) {
				if r.Intent != intentUnhealthy || r.Due != t0.Add(5*time.Second) {
					t.Fatalf("intent %d due %v", r.Intent, r.Due.Sub(t0))
				}
			}},
		{name: "unhealthy before running never kills", cfg: base(withChecks),
			r: record{State: Started, HealthFails: 10}, in: input{ev: EvRoundFailed}, want: Started},
		{name: "healthy resets the failures in a row", cfg: base(withChecks),
			r: record{State: Running, HealthFails: 2}, in: input{ev: EvRoundPassed}, want: Running,
			check: func(t *testing.T, r record) {
				if r.HealthFails != 0 {
					t.Fatalf("fails %d", r.HealthFails)
				}
			}},
		{name: "negative max-failed acts as 1", cfg: base(withChecks, func(s *config.Service) { s.Healthiness.MaxFailed = -5 }),
			r: record{State: Running}, in: input{ev: EvRoundFailed}, want: InKilling, acts: []action{actStopChecks, actTermSignal}},
		{name: "start-timeout kills a started run", cfg: base(withChecks, func(s *config.Service) { s.Healthiness.StartTimeout = time.Second }),
			r: record{State: Started}, in: input{ev: EvDue}, want: InKilling, acts: []action{actStopChecks, actTermSignal}},
		{name: "kill deadline sends SIGKILL and stays armed", cfg: base(), r: record{State: InKilling}, in: input{ev: EvDue}, want: InKilling, acts: []action{actSIGKILL},
			check: func(t *testing.T, r record) {
				if !r.SigKilled || r.Due != t0.Add(killRetry) {
					t.Fatalf("%+v: want SIGKILL sent again at %v until the exit is seen", r, killRetry)
				}
			}},
		{name: "SIGKILL again at the next deadline", cfg: base(), r: record{State: InKilling, SigKilled: true, Due: t0}, in: input{ev: EvDue}, want: InKilling, acts: []action{actSIGKILL},
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(killRetry) {
					t.Fatalf("due %v", r.Due.Sub(t0))
				}
			}},
		{name: "stop while waiting to start finishes", cfg: base(), r: record{State: Starting, Due: t0.Add(time.Hour)}, in: input{ev: EvStop}, want: Finished, acts: []action{actRelease}},
		{name: "stop a running service signals it", cfg: base(), r: record{State: Running}, in: input{ev: EvStop}, want: InKilling, acts: []action{actStopChecks, actTermSignal}},
		{name: "restart request during a stop runs again after it", cfg: base(), r: record{State: InKilling, Intent: intentStop}, in: input{ev: EvRestartReq}, want: InKilling,
			check: func(t *testing.T, r record) {
				if r.Intent != intentRestart {
					t.Fatalf("intent %d, want restart", r.Intent)
				}
			}},
		{name: "start request during a stop runs again after it", cfg: base(), r: record{State: InKilling, Intent: intentStop}, in: input{ev: EvStartReq}, want: InKilling,
			check: func(t *testing.T, r record) {
				if r.Intent != intentRestart {
					t.Fatalf("intent %d, want restart", r.Intent)
				}
			}},
		{name: "restart request then exit runs again", cfg: base(), r: record{State: InKilling, Intent: intentRestart, Drained: true}, in: exitCode(1), want: Initial, acts: []action{actStopChecks, actLogExit, actRunOver}},
		{name: "start request rearms a finished service", cfg: base(), r: record{State: FinishedFailed, FailedStarts: 4, Reason: "x"}, in: input{ev: EvStartReq}, want: Initial,
			check: func(t *testing.T, r record) {
				if r.FailedStarts != 0 || r.Reason != "" || r.Restarts != 1 {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "force kill stays armed", cfg: base(), r: record{State: Running}, in: input{ev: EvForceKill}, want: InKilling, acts: []action{actStopChecks, actSIGKILL},
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(killRetry) {
					t.Fatalf("due %v", r.Due.Sub(t0))
				}
			}},
		{name: "dependency failed", cfg: base(), r: record{State: Initial}, in: input{ev: EvDepFailed, why: "dependency 'db' failed"}, want: FinishedFailed, acts: []action{actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "dependency 'db' failed" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "ignored event changes nothing", cfg: base(), r: record{State: Finished, Reason: "keep"}, in: input{ev: EvHealthy}, want: Finished},
		{name: "a removed running service is stopped for good", cfg: base(), r: record{State: Running, PID: 7}, in: input{ev: EvRemove}, want: InKilling, acts: []action{actStopChecks, actTermSignal},
			check: func(t *testing.T, r record) {
				if r.Intent != intentStop || r.Due != t0.Add(5*time.Second) {
					t.Fatalf("%+v: want intent stop, due at the termination wait", r)
				}
			}},
		{name: "a removed service waiting to start finishes at once", cfg: base(), r: record{State: Starting, Due: t0.Add(time.Second)}, in: input{ev: EvRemove}, want: Finished, acts: []action{actRelease}},
		{name: "a removed service's clean stop finishes it", cfg: base(), r: record{State: InKilling, Intent: intentStop, Reached: true, Drained: true},
			in: input{ev: EvMainExit, exit: exitInfo{Valid: true, Code: 143, Signal: syscall.SIGTERM}}, want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "a changed running service is stopped to start over", cfg: base(), r: record{State: Running, PID: 7, Restarts: 3}, in: input{ev: EvReplace}, want: InKilling, acts: []action{actStopChecks, actTermSignal},
			check: func(t *testing.T, r record) {
				if r.Intent != intentReplace {
					t.Fatalf("intent %v, want replace", r.Intent)
				}
			}},
		{name: "a changed service's stop takes the new definition, even if it failed to stop cleanly", cfg: base(), r: record{State: InKilling, Intent: intentReplace, Reached: true, SigKilled: true, Restarts: 3, QuickExits: 2, Drained: true},
			in: input{ev: EvMainExit, exit: exitInfo{Valid: true, Code: 137, Signal: syscall.SIGKILL}}, want: Initial, acts: []action{actStopChecks, actLogExit, actRunOver, actReplace},
			check: func(t *testing.T, r record) {
				if r != (record{State: Initial}) {
					t.Fatalf("%+v: want a fresh record", r)
				}
			}},
		{name: "a changed service whose stop exits cleanly starts over", cfg: base(), r: record{State: InKilling, Intent: intentReplace, Reached: true, Drained: true},
			in: input{ev: EvMainExit, exit: exitInfo{Valid: true}}, want: Initial, acts: []action{actStopChecks, actLogExit, actRunOver, actReplace}},
		{name: "a changed finished job runs again", cfg: base(func(s *config.Service) { s.Oneshot = true }), r: record{State: Finished, Restarts: 1}, in: input{ev: EvReplace}, want: Initial, acts: []action{actReplace}},
		{name: "a change during a stop starts over once the stop is done", cfg: base(), r: record{State: InKilling, Intent: intentStop}, in: input{ev: EvReplace}, want: InKilling,
			check: func(t *testing.T, r record) {
				if r.Intent != intentReplace {
					t.Fatalf("intent %v, want replace", r.Intent)
				}
			}},
		{name: "shutdown wins over a change in progress", cfg: base(), r: record{State: InKilling, Intent: intentReplace, Reached: true, Drained: true},
			in: input{ev: EvMainExit, exit: exitInfo{Valid: true}}, shutdown: true, want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, acts := step(tc.cfg, tc.r, tc.in, t0, tc.shutdown, nil)
			if r.State != tc.want {
				t.Fatalf("state %s, want %s", r.State, tc.want)
			}
			if !slices.Equal(acts, tc.acts) {
				t.Fatalf("actions %v, want %v", acts, tc.acts)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// runEnds feeds the end of a run: its main process exits with code, then
// its output is drained.
func runEnds(c *config.Service, r record, code int, now time.Time) (record, []action) {
	r, acts := step(c, r, exitCode(code), now, false, nil)
	r, more := step(c, r, input{ev: EvDrained}, now, false, nil)
	return r, append(acts, more...)
}

func TestCrashLoop(t *testing.T) {
	t0 := time.Unix(1000, 0)
	guard := func(s *config.Service) {
		s.Restart = config.Restart{Strategy: config.RestartAlways, MinUptime: 10 * time.Second, MaxBackoff: time.Second}
	}
	t.Run("delays: 0, 100, 200, 400, 800 ms, then the cap", func(t *testing.T) {
		c := svc("s", guard)
		r := record{State: Running, Reached: true, StartedAt: t0}
		var delays []time.Duration
		var loops int
		for range 7 {
			var acts []action
			r, acts = runEnds(c, r, 1, t0)
			loops += strings.Count(fmt.Sprint(acts), "crash-loop")
			r, _ = step(c, r, input{ev: EvDepsReady}, t0, false, nil)
			delays = append(delays, r.Due.Sub(t0))
			if r.Due.IsZero() {
				delays[len(delays)-1] = 0
			}
			r, _ = step(c, r, input{ev: EvSpawned, pid: 1}, t0, false, nil)
		}
		want := durations(0, 100*time.Millisecond, 200*time.Millisecond, 400*time.Millisecond, 800*time.Millisecond, time.Second, time.Second)
		if !slices.Equal(delays, want) {
			t.Fatalf("delays %v, want %v", delays, want)
		}
		if loops != 1 {
			t.Fatalf("crash-loop action %d times, want once per loop", loops)
		}
	})
	t.Run("a run that lasts min-uptime resets the loop", func(t *testing.T) {
		c := svc("s", guard)
		r := record{State: Running, Reached: true, StartedAt: t0, QuickExits: 5}
		r, _ = runEnds(c, r, 1, t0.Add(10*time.Second))
		if r.QuickExits != 0 || r.State != Initial {
			t.Fatalf("%+v: want a restart with the count reset", r)
		}
		r, acts := step(c, r, input{ev: EvDepsReady}, t0, false, nil)
		if !slices.Equal(acts, []action{actStart}) {
			t.Fatalf("actions %v, want an immediate start", acts)
		}
	})
	t.Run("on top of start-delay and backoff", func(t *testing.T) {
		c := svc("s", guard, func(s *config.Service) { s.StartDelay = time.Second; s.Restart.Backoff = 2 * time.Second })
		r, _ := step(c, record{State: Initial, FailedStarts: 1, QuickExits: 3}, input{ev: EvDepsReady}, t0, false, nil)
		if got := r.Due.Sub(t0); got != 3200*time.Millisecond {
			t.Fatalf("delay %v, want 1s + 2s × 1 + 200ms", got)
		}
	})
	t.Run("min-uptime 0s turns it off", func(t *testing.T) {
		c := svc("s", guard, func(s *config.Service) { s.Restart.MinUptime = 0 })
		r := record{State: Running, Reached: true, StartedAt: t0, QuickExits: 0}
		for range 5 {
			r, _ = runEnds(c, r, 1, t0)
			var acts []action
			r, acts = step(c, r, input{ev: EvDepsReady}, t0, false, nil)
			if !slices.Equal(acts, []action{actStart}) || r.QuickExits != 0 {
				t.Fatalf("%+v %v: want immediate restarts", r, acts)
			}
			r, _ = step(c, r, input{ev: EvSpawned, pid: 1}, t0, false, nil)
		}
	})
	t.Run("a stop or restart asked for is not a crash", func(t *testing.T) {
		c := svc("s", guard)
		r, _ := runEnds(c, record{State: InKilling, Intent: intentRestart, StartedAt: t0, QuickExits: 4}, 143, t0)
		if r.QuickExits != 0 {
			t.Fatalf("quick exits %d after a requested restart", r.QuickExits)
		}
	})
	t.Run("start request forgets the loop", func(t *testing.T) {
		r, _ := step(svc("s", guard), record{State: FinishedFailed, QuickExits: 4}, input{ev: EvStartReq}, t0, false, nil)
		if r.QuickExits != 0 {
			t.Fatalf("quick exits %d", r.QuickExits)
		}
	})
}

func TestClassify(t *testing.T) {
	cfg := svc("s", func(s *config.Service) { s.Failure.SuccessfulExitCodes = []int{0, 3} })
	cases := []struct {
		name string
		r    record
		e    exitInfo
		want Event
	}{
		{"listed code", record{}, exitInfo{Code: 3}, EvExitOK},
		{"unlisted code", record{}, exitInfo{Code: 1}, EvExitFail},
		{"signal death is 128+N and not listed", record{}, exitInfo{Code: 143, Signal: syscall.SIGTERM}, EvExitFail},
		{"stopped by its termination signal", record{Intent: intentStop}, exitInfo{Code: 143, Signal: syscall.SIGTERM}, EvExitOK},
		{"stopped, exit 143 like a JVM", record{Intent: intentStop}, exitInfo{Code: 143}, EvExitOK},
		{"stopped but needed SIGKILL", record{Intent: intentStop, SigKilled: true}, exitInfo{Code: 137, Signal: syscall.SIGKILL}, EvExitFail},
		{"killed for checks, even exit 0", record{Intent: intentUnhealthy}, exitInfo{Code: 0}, EvExitFail},
		{"killed by die-if-failed follows codes", record{Intent: intentKill}, exitInfo{Code: 143, Signal: syscall.SIGTERM}, EvExitFail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(cfg, tc.r, tc.e); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// at is an event fed to step at t0 + d.
type at struct {
	d  time.Duration
	in input
}

// feed applies the events in order and returns the record and the actions
// of the last one.
func feed(c *config.Service, r record, t0 time.Time, seq ...at) (record, []action) {
	var acts []action
	for _, e := range seq {
		r, acts = step(c, r, e.in, t0.Add(e.d), false, nil)
	}
	return r, acts
}

// TestEnding is the end of a run from the table: leftovers, output drain,
// SIGKILL of what is left, the give-up, and requests that arrive meanwhile.
func TestEnding(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ev := func(e Event) input { return input{ev: e} }
	left := func(code int) input { in := exitCode(code); in.ev = EvMainExitLeft; return in }
	killed := input{ev: EvMainExit, exit: exitInfo{Valid: true, PID: 42, Code: 137, Signal: syscall.SIGKILL}}
	stopping := record{State: InKilling, PID: 42, Intent: intentStop, Due: t0.Add(3 * time.Second)}
	cases := []struct {
		name  string
		r     record
		seq   []at
		want  State
		acts  []action // of the last event
		check func(t *testing.T, r record)
	}{
		{name: "an exit waits for the output, a grace at most", r: record{State: Running, PID: 42},
			seq: []at{{0, exitCode(0)}}, want: Running, acts: []action{actStopChecks},
			check: func(t *testing.T, r record) {
				if !r.End.Seen || r.Due != t0.Add(drainGrace) || r.PID != 42 {
					t.Fatalf("%+v: want the run ending, give-up at %v", r, drainGrace)
				}
			}},
		{name: "the output drained ends the run", r: record{State: Running, PID: 42},
			seq: []at{{0, exitCode(0)}, {time.Millisecond, ev(EvDrained)}}, want: Finished, acts: []action{actLogExit, actRunOver, actRelease},
			check: func(t *testing.T, r record) {
				if r.End.Seen || r.PID != 0 || !r.Due.IsZero() || r.Exit.PID != 42 {
					t.Fatalf("%+v: want the run over, its exit kept", r)
				}
			}},
		{name: "output drained before the exit: over at once", r: record{State: Running, Drained: true},
			seq: []at{{0, exitCode(0)}}, want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "what a service left when it ended on its own is stopped", r: record{State: Running, Drained: true},
			seq: []at{{0, left(0)}}, want: Running, acts: []action{actStopChecks, actStopLeftovers},
			check: func(t *testing.T, r record) {
				if !r.End.Left || !r.End.KillLeft || r.Due != t0.Add(5*time.Second) {
					t.Fatalf("%+v: want SIGKILL of the leftovers at the termination wait", r)
				}
			}},
		{name: "leftovers gone: the run is over", r: record{State: Running, Drained: true},
			seq: []at{{0, left(0)}, {time.Second, ev(EvGroupEmpty)}}, want: Finished, acts: []action{actLogExit, actRunOver, actRelease}},
		{name: "leftovers that outlive the termination wait get SIGKILL, then a grace", r: record{State: Running, Drained: true},
			seq: []at{{0, left(0)}, {5 * time.Second, ev(EvDue)}}, want: Running, acts: []action{actKillLeftovers},
			check: func(t *testing.T, r record) {
				if r.End.KillLeft || r.Due != t0.Add(5*time.Second+drainGrace) {
					t.Fatalf("%+v: want the give-up a grace after the SIGKILL", r)
				}
			}},
		{name: "at the give-up the loop asks whether output is being written", r: record{State: Running, Drained: true},
			seq: []at{{0, left(0)}, {5 * time.Second, ev(EvDue)}, {6 * time.Second, ev(EvDue)}}, want: Running, acts: []action{actWaitOutput},
			check: func(t *testing.T, r record) {
				if !r.Due.IsZero() {
					t.Fatalf("due %v: no deadline while output is being written", r.Due.Sub(t0))
				}
			}},
		{name: "nothing being written: the run ends as it is", r: record{State: Running, Drained: true},
			seq:  []at{{0, left(0)}, {5 * time.Second, ev(EvDue)}, {6 * time.Second, ev(EvDue)}, {6 * time.Second, ev(EvGiveUp)}},
			want: Finished, acts: []action{actLogGiveUp, actLogExit, actRunOver, actRelease}},
		{name: "slow output written: give up a grace later", r: record{State: Running},
			seq: []at{{0, exitCode(0)}, {time.Second, ev(EvDue)}, {30 * time.Second, ev(EvOutputIdle)}}, want: Running,
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(30*time.Second+drainGrace) {
					t.Fatalf("due %v", r.Due.Sub(t0))
				}
			}},
		{name: "a stop's SIGKILL deadline is kept for what the run left", r: stopping,
			seq: []at{{time.Second, left(143)}}, want: InKilling, acts: []action{actStopChecks},
			check: func(t *testing.T, r record) {
				if !r.End.KillLeft || r.Due != t0.Add(3*time.Second) {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "after SIGKILL what the run left gets a grace, no second kill", r: record{State: InKilling, Intent: intentStop, SigKilled: true, Due: t0.Add(time.Second)},
			seq: []at{{0, left(137)}}, want: InKilling, acts: []action{actStopChecks},
			check: func(t *testing.T, r record) {
				if r.End.KillLeft || r.Due != t0.Add(drainGrace) {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "forceful shutdown while ending kills what is left at once", r: record{State: Running, Drained: true},
			seq: []at{{0, left(0)}, {time.Second, ev(EvForceKill)}}, want: InKilling, acts: []action{actSIGKILL},
			check: func(t *testing.T, r record) {
				if r.Intent != intentStop || !r.SigKilled || r.End.KillLeft || r.Due != t0.Add(time.Second+drainGrace) {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "a stop while ending signals nothing more and makes the end a stop", r: record{State: Running, Drained: true},
			seq: []at{{0, left(0)}, {time.Second, input{ev: EvStop}}}, want: InKilling,
			check: func(t *testing.T, r record) {
				if r.Intent != intentStop || r.Due != t0.Add(5*time.Second) {
					t.Fatalf("%+v: want the leftovers' deadline kept", r)
				}
			}},
		{name: "a stop ended by its termination signal is a clean stop", r: record{State: Running, PID: 42, Drained: true},
			seq:  []at{{0, input{ev: EvStop}}, {time.Second, input{ev: EvMainExit, exit: exitInfo{Valid: true, Code: 143, Signal: syscall.SIGTERM}}}},
			want: Finished, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease}},
		{name: "SIGKILL at the termination wait, and again until the exit is seen", r: record{State: Running, PID: 42, Drained: true},
			seq: []at{{0, input{ev: EvStop}}, {5 * time.Second, ev(EvDue)}, {6 * time.Second, ev(EvDue)}}, want: InKilling, acts: []action{actSIGKILL},
			check: func(t *testing.T, r record) {
				if !r.SigKilled || r.Due != t0.Add(6*time.Second+killRetry) {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "a stop that needed SIGKILL finishes failed", r: record{State: Running, PID: 42, Drained: true},
			seq:  []at{{0, input{ev: EvStop}}, {5 * time.Second, ev(EvDue)}, {5 * time.Second, killed}},
			want: FinishedFailed, acts: []action{actStopChecks, actLogExit, actRunOver, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "killed by SIGKILL" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "a request during the stop's end runs the service again", r: stopping,
			seq:  []at{{0, left(143)}, {time.Second, input{ev: EvStartReq}}, {2 * time.Second, ev(EvGroupEmpty)}, {2 * time.Second, ev(EvDrained)}},
			want: Initial, acts: []action{actLogExit, actRunOver}},
		{name: "checks results while ending are ignored", r: record{State: Running},
			seq: []at{{0, exitCode(0)}, {time.Millisecond, ev(EvRoundFailed)}}, want: Running,
			check: func(t *testing.T, r record) {
				if r.HealthFails != 0 {
					t.Fatalf("%+v", r)
				}
			}},
	}
	c := svc("s")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, acts := feed(c, tc.r, t0, tc.seq...)
			if r.State != tc.want {
				t.Fatalf("state %s, want %s", r.State, tc.want)
			}
			if !slices.Equal(acts, tc.acts) {
				t.Fatalf("actions %v, want %v", acts, tc.acts)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestReadiness: a run is Running once READY=1 arrived (with notify) and a
// round of checks passed (with checks), in either order; start-timeout and
// max-failed kill it.
func TestReadiness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ev := func(e Event) at { return at{0, input{ev: e}} }
	spawned := at{0, input{ev: EvSpawned, pid: 42}}
	notify := func(s *config.Service) { s.Healthiness.Notify = true }
	checks := func(s *config.Service) { s.Healthiness.Command = "check" }
	timeout := func(s *config.Service) { s.Healthiness.StartTimeout = 3 * time.Second }
	cases := []struct {
		name string
		cfg  *config.Service
		seq  []at
		want State
		acts []action
	}{
		{"notify: READY=1", svc("s", notify), []at{spawned, ev(EvReady)}, Running, nil},
		{"notify: not before READY=1", svc("s", notify), []at{spawned}, Started, nil},
		{"checks: a passed round", svc("s", checks), []at{spawned, ev(EvRoundPassed)}, Running, nil},
		{"checks: a failed round is not ready", svc("s", checks), []at{spawned, ev(EvRoundFailed)}, Started, nil},
		{"both: READY=1 then the round", svc("s", notify, checks), []at{spawned, ev(EvReady), ev(EvRoundPassed)}, Running, nil},
		{"both: the round then READY=1", svc("s", notify, checks), []at{spawned, ev(EvRoundPassed), ev(EvReady)}, Running, nil},
		{"both: READY=1 alone is not ready", svc("s", notify, checks), []at{spawned, ev(EvReady)}, Started, nil},
		{"both: the round alone is not ready", svc("s", notify, checks), []at{spawned, ev(EvRoundPassed)}, Started, nil},
		{"both: a failed round after READY=1 is not ready", svc("s", notify, checks), []at{spawned, ev(EvReady), ev(EvRoundFailed)}, Started, nil},
		{"start-timeout stops a run that is not ready", svc("s", notify, timeout), []at{spawned, {3 * time.Second, input{ev: EvDue}}}, InKilling, []action{actStopChecks, actTermSignal}},
		{"failed rounds before Running never kill", svc("s", checks), []at{spawned, ev(EvRoundFailed), ev(EvRoundFailed), ev(EvRoundFailed), ev(EvRoundFailed)}, Started, nil},
		{"max-failed in a row kills a Running run", svc("s", checks), []at{spawned, ev(EvRoundPassed), ev(EvRoundFailed), ev(EvRoundFailed), ev(EvRoundFailed)}, InKilling, []action{actStopChecks, actTermSignal}},
		{"a passed round resets the count", svc("s", checks), []at{spawned, ev(EvRoundPassed), ev(EvRoundFailed), ev(EvRoundFailed), ev(EvRoundPassed), ev(EvRoundFailed), ev(EvRoundFailed)}, Running, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, acts := feed(tc.cfg, record{State: Starting}, t0, tc.seq...)
			if r.State != tc.want {
				t.Fatalf("state %s, want %s", r.State, tc.want)
			}
			if !slices.Equal(acts, tc.acts) {
				t.Fatalf("actions %v, want %v", acts, tc.acts)
			}
		})
	}
	t.Run("killed for its checks, the run fails whatever its exit", func(t *testing.T) {
		c := svc("s", checks)
		r, _ := feed(c, record{State: Starting}, t0, spawned, ev(EvRoundPassed), ev(EvRoundFailed), ev(EvRoundFailed), ev(EvRoundFailed),
			at{0, input{ev: EvDrained}}, at{time.Second, exitCode(0)})
		if r.State != FinishedFailed || r.Reason != "unhealthy: 3 failed checks in a row" || r.HealthFailsTotal != 3 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("a start-timeout is a failed start", func(t *testing.T) {
		c := svc("s", checks, timeout, func(s *config.Service) { s.Restart.Attempts = 1 })
		r, _ := feed(c, record{State: Starting}, t0, spawned, at{3 * time.Second, input{ev: EvDue}},
			at{3 * time.Second, input{ev: EvDrained}}, at{4 * time.Second, input{ev: EvMainExit, exit: exitInfo{Valid: true, Code: 143, Signal: syscall.SIGTERM}}})
		if r.State != Initial || r.FailedStarts != 1 || !strings.Contains(r.Reason, "start-timeout") {
			t.Fatalf("%+v", r)
		}
	})
}
