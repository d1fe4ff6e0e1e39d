package supervisor

import (
	"fmt"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// effect is what a cell of the state machine does to the record besides
// changing its state: the deadlines, counters and intent it sets, the
// actions it asks the loop for and the event it follows with. One effect,
// one job; the tables say where each applies.
type effect uint8

const (
	fxNone             effect = iota // no cell: the event is ignored
	fxArmStart                       // start now, or at start-delay + backoff + the crash loop's delay
	fxDepFailed                      // a dependency failed for good: so does this service
	fxCancel                         // stopped before it started
	fxStart                          // the start's deadline passed: fork now
	fxSpawned                        // a new run: checks and start-timeout, or Running at once
	fxSpawnFailed                    // the fork failed: a quick failed start
	fxStartTimeout                   // not healthy within start-timeout: stop the run, a failed start
	fxReady                          // READY=1: ready when the checks agree
	fxRoundPassed                    // a round of checks passed: ready when notify agrees
	fxRoundFailed                    // a round of checks failed: counted; max-failed in a row kills a Running run
	fxUp                             // the run is Running: failed starts forgotten (a job's only once it succeeds)
	fxMainExit                       // the main process exited alone: wait for the output
	fxStopLeftovers                  // the main process exited on its own and left processes: stop them as at a stop
	fxLeftoversKilled                // the main process of a run being stopped exited and left processes: the stop's SIGKILL deadline is theirs
	fxDrained                        // the output is copied
	fxGroupEmpty                     // what the run left is gone
	fxEndingDue                      // the ending's deadline: SIGKILL what is left, or give up
	fxOutputIdle                     // slow output written: give up a grace later
	fxGiveUp                         // end the run with output or processes left
	fxRunOver                        // the run is over: how it ended, crash-loop count
	fxStop                           // stop for good: no more checks, the termination signal, SIGKILL at termination wait
	fxKill                           // stop the run as fxStop, then the restart strategy decides
	fxRestartReq                     // stop the run as fxStop, then run again
	fxForceKill                      // SIGKILL now, and again until the exit is seen
	fxSIGKILL                        // the termination wait passed: SIGKILL, and again until the exit is seen
	fxNoteStop                       // already stopping: now for good
	fxNoteKill                       // already ending: the end counts as a kill
	fxRestartAfter                   // already stopping: run again once the stop is done
	fxKillLeftoversNow               // forceful shutdown while ending: SIGKILL what is left
	fxRestart                        // after a run: run again
	fxFinish                         // after a run: done for good
	fxRearm                          // horustctl start or restart of a finished service
	fxReplace                        // a reload changed the service and nothing runs: the new definition, a fresh record
	fxReplaceRun                     // a reload changed the service: stop the run as fxStop, then start over
	fxNoteReplace                    // already stopping: start over with the new definition once the stop is done
	numEffects
)

var effectNames = [numEffects]string{"-", "arm-start", "dep-failed", "cancel", "start", "spawned", "spawn-failed", "start-timeout",
	"ready", "round-passed", "round-failed", "up", "main-exit", "stop-leftovers", "leftovers-killed", "drained", "group-empty",
	"ending-due", "output-idle", "give-up", "run-over", "stop", "kill", "restart-req", "force-kill", "SIGKILL", "note-stop",
	"note-kill", "restart-after", "kill-leftovers-now", "restart", "finish", "rearm",
	"replace", "replace-run", "note-replace"}

func (fx effect) String() string {
	if fx < numEffects {
		return effectNames[fx]
	}
	return "effect(?)"
}

// apply does the effect to r (whose State is already the cell's) for the
// event in at now. It returns the event to follow with (none for none) and
// the actions so far.
func (fx effect) apply(c *config.Service, r *record, in input, now time.Time, acts []action) (input, []action) {
	switch fx {
	case fxArmStart:
		r.Intent, r.SigKilled, r.Reached = intentNone, false, false
		if d := c.StartDelay + c.Restart.Backoff*time.Duration(r.FailedStarts) + crashDelay(c, r.QuickExits); d > 0 {
			r.Due = now.Add(d)
		} else {
			r.Due = time.Time{}
			acts = append(acts, actStart)
		}
	case fxDepFailed:
		r.Reason = in.why
		acts = append(acts, actRelease)
	case fxCancel:
		r.Due = time.Time{}
		r.Reason = in.why
		acts = append(acts, actRelease)
	case fxStart:
		r.Due = time.Time{}
		acts = append(acts, actStart)
	case fxSpawned:
		r.PID, r.StartedAt, r.Reason = in.pid, now, ""
		r.Reached, r.HealthFails, r.Due = false, 0, time.Time{}
		r.Ready, r.Checks, r.Drained, r.End = false, checksUnknown, false, ending{}
		if !needsHealth(c) {
			return input{ev: EvHealthy}, acts
		}
		if c.Healthiness.HasChecks() {
			acts = append(acts, actStartChecks)
		}
		if c.Healthiness.StartTimeout > 0 {
			r.Due = now.Add(c.Healthiness.StartTimeout)
		}
	case fxSpawnFailed:
		r.Reason = in.why
		r.Exit = exitInfo{}
		acts = countQuick(c, r, true, acts)
	case fxStartTimeout:
		r.Intent = intentStartTimeout
		r.Reason = fmt.Sprintf("not healthy within start-timeout (%s)", c.Healthiness.StartTimeout)
		r.Due = now.Add(c.Termination.Wait)
		acts = append(acts, actStopChecks, actTermSignal)
	case fxReady:
		r.Ready = true
		return readyNow(c, r), acts
	case fxRoundPassed:
		r.Checks, r.HealthFails = checksPassed, 0
		return readyNow(c, r), acts
	case fxRoundFailed:
		r.Checks = checksFailed
		r.HealthFails++
		r.HealthFailsTotal++
		if max := max(1, int(c.Healthiness.MaxFailed)); r.State == Running && r.HealthFails >= max {
			return input{ev: EvKill, intent: intentUnhealthy, why: fmt.Sprintf("unhealthy: %d failed checks in a row", r.HealthFails)}, acts
		}
	case fxUp:
		r.Due, r.HealthFails = time.Time{}, 0
		// A job is up only once it has succeeded: until then every
		// unsuccessful exit is a failed start.
		if !c.Oneshot {
			r.Reached, r.FailedStarts = true, 0
		}
	case fxMainExit:
		r.End = ending{Seen: true, Exit: in.exit}
		r.Due = now.Add(drainGrace)
		return over(c, r), append(acts, actStopChecks)
	case fxStopLeftovers:
		// The service ended on its own: what it left behind is stopped as
		// the service would be.
		r.End = ending{Seen: true, Exit: in.exit, Left: true, KillLeft: true}
		r.Due = now.Add(c.Termination.Wait)
		acts = append(acts, actStopChecks, actStopLeftovers)
	case fxLeftoversKilled:
		r.End = ending{Seen: true, Exit: in.exit, Left: true, KillLeft: !r.SigKilled}
		if r.SigKilled { // SIGKILL already went to the whole run
			r.Due = now.Add(drainGrace)
		}
		acts = append(acts, actStopChecks)
	case fxDrained:
		r.Drained = true
		return over(c, r), acts
	case fxGroupEmpty:
		if r.End.KillLeft {
			r.End.KillLeft = false
			r.Due = now.Add(drainGrace)
		}
		r.End.Left = false
		return over(c, r), acts
	case fxEndingDue:
		if r.End.KillLeft {
			r.End.KillLeft = false
			r.Due = now.Add(drainGrace)
			return none, append(acts, actKillLeftovers)
		}
		// Output that is being written to a slow destination is waited for
		// as long as it takes (never lose output): no deadline until
		// EvOutputIdle. Only a pipe that something outside the service
		// keeps open is given up on.
		r.Due = time.Time{}
		acts = append(acts, actWaitOutput)
	case fxOutputIdle:
		if r.Due.IsZero() {
			r.Due = now.Add(drainGrace)
		}
	case fxGiveUp:
		return input{ev: classify(c, *r, r.End.Exit)}, append(acts, actLogGiveUp)
	case fxRunOver:
		acts = runOver(c, r, in.ev, now, acts)
	case fxStop:
		r.Intent = intentStop
		r.Due = now.Add(c.Termination.Wait)
		acts = append(acts, actStopChecks, actTermSignal)
	case fxKill:
		r.Intent, r.Reason = in.intent, in.why
		r.Due = now.Add(c.Termination.Wait)
		acts = append(acts, actStopChecks, actTermSignal)
	case fxRestartReq:
		r.Intent = intentRestart
		r.Due = now.Add(c.Termination.Wait)
		acts = append(acts, actStopChecks, actTermSignal)
	case fxForceKill:
		r.Intent, r.SigKilled, r.Due = intentStop, true, now.Add(killRetry)
		acts = append(acts, actStopChecks, actSIGKILL)
	case fxSIGKILL:
		// SIGKILL stays armed until the exit is seen: a SIGKILL that failed
		// (horust out of file descriptors) or that a process in
		// uninterruptible sleep has not acted on yet is sent again at the
		// next deadline.
		r.Due = now.Add(killRetry)
		r.SigKilled = true
		acts = append(acts, actSIGKILL)
	case fxNoteStop:
		r.Intent = intentStop
	case fxNoteKill:
		r.Intent, r.Reason = in.intent, in.why
	case fxRestartAfter:
		// Also over a stop in progress: the stop is carried out, then the
		// service runs again (never a request answered and dropped).
		r.Intent = intentRestart
	case fxKillLeftoversNow:
		r.Intent, r.SigKilled = intentStop, true
		if r.End.Left {
			if r.End.KillLeft {
				r.End.KillLeft = false
				r.Due = now.Add(drainGrace)
			}
			acts = append(acts, actSIGKILL)
		}
	case fxRestart:
		r.Restarts++
		r.Intent, r.SigKilled = intentNone, false
	case fxFinish:
		if in.why != "" {
			r.Reason = in.why
		}
		acts = append(acts, actRelease)
	case fxReplace:
		// Nothing runs: the new definition starts from the beginning, as a
		// service that was just added.
		*r = record{State: r.State}
		acts = append(acts, actReplace)
	case fxReplaceRun:
		r.Intent = intentReplace
		r.Due = now.Add(c.Termination.Wait)
		acts = append(acts, actStopChecks, actTermSignal)
	case fxNoteReplace:
		r.Intent = intentReplace
	case fxRearm:
		// A start asked for by a person is not delayed by an earlier crash
		// loop.
		r.Restarts++
		r.FailedStarts, r.QuickExits, r.Intent, r.SigKilled, r.Reason = 0, 0, intentNone, false, ""
	}
	return none, acts
}

// readyNow follows with EvHealthy when a Started run has become ready.
func readyNow(c *config.Service, r *record) input {
	if r.State == Started && healthy(c, r) {
		return input{ev: EvHealthy}
	}
	return none
}

// runOver ends the run (ev is EvExitOK or EvExitFail): it says so, counts
// the run towards a crash loop and keeps how it ended.
func runOver(c *config.Service, r *record, ev Event, now time.Time, acts []action) []action {
	e, quick := r.End.Exit, quickRun(c, *r, now)
	switch {
	case ev == EvExitFail && !r.stopping() && r.QuickExits > 0 && quick:
		acts = append(acts, actLogCrash) // said once per loop (actCrashLoop), not per run
	case ev == EvExitFail && !r.stopping():
		acts = append(acts, actLogFailure)
	default:
		acts = append(acts, actLogExit)
	}
	acts = append(acts, actRunOver)
	if r.stopping() {
		r.QuickExits = 0 // stopped on purpose: not a crash
	} else {
		acts = countQuick(c, r, quick, acts)
	}
	r.PID, r.Due, r.StartedAt, r.Exit, r.End = 0, time.Time{}, time.Time{}, e, ending{}
	switch {
	case e.Why != "":
		r.Reason = e.Why
	case ev == EvExitFail && r.Reason == "":
		// A failure always says why, at least how it ended.
		r.Reason = e.String()
	}
	return acts
}
