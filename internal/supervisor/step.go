package supervisor

import (
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// killRetry is how often SIGKILL is sent again to a run whose exit has not
// been seen since the last one.
const killRetry = time.Second

// intent is why horust is stopping a run.
type intent uint8

const (
	intentNone         intent = iota
	intentKill                // die-if-failed or kill-dependents: the restart strategy decides
	intentUnhealthy           // max-failed checks in a row: always a failure
	intentStartTimeout        // not healthy within start-timeout: a failed start
	intentRestart             // horustctl restart: run again whatever the strategy
	intentStop                // stop for good: shutdown, horustctl stop, removal by a reload
	intentReplace             // a reload changed the service: start over with the new definition
)

// onPurpose reports whether horust ends the run on purpose, for a reason
// that is not the service's failure: such an exit is not a crash, and not
// a failure when the termination signal ended it.
func (i intent) onPurpose() bool {
	return i == intentStop || i == intentRestart || i == intentReplace
}

// exitInfo is how a run ended.
type exitInfo struct {
	Valid  bool
	Code   int            // exit code, 128+N for a death by signal N
	Signal syscall.Signal // the signal, when it died of one
}

// String says how the run ended: "exited with code 3", "killed by
// SIGKILL".
func (e exitInfo) String() string {
	if e.Signal != 0 {
		return "killed by SIG" + signalName(e.Signal)
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}

// record is what step knows of one service, over all its runs: the state,
// the current run (pid, deadline, intent) and the counters that span runs
// (failed starts, quick exits, restarts). step only reads and returns it;
// the loop keeps the handles (process, generation, probes) beside it.
type record struct {
	State State
	PID   int
	// Due is the service's one deadline: the start (Starting), the
	// start-timeout (Started), the SIGKILL (InKilling). Zero when none.
	Due      time.Time
	Attempts int // failed starts in a row (docs/design.md, restarts)
	// QuickExits counts the runs in a row that ended before min-uptime: a
	// crash loop, whose restarts are delayed (see crashDelay).
	QuickExits int
	Restarts   int  // starts after the first one
	Reached    bool // this run reached Running
	Intent     intent
	SigKilled  bool // SIGKILL was sent to this run
	// HealthFails counts failed rounds of checks in a row;
	// HealthFailsTotal every failed round since horust started.
	HealthFails      int
	HealthFailsTotal int
	StartedAt        time.Time
	Exit             exitInfo // the last run's
	Reason           string   // why the service is in its state, when it says more than the state
}

// action is an effect the loop performs for step.
type action uint8

const (
	actStart      action = iota // fork and exec now
	actTermSignal               // send the termination signal to the run
	actSIGKILL                  // send SIGKILL to the run
	actFailed                   // entered Failed while running normally: failure strategy, die-if-failed
	actRelease                  // finished for good: free the service's resources
	actProbe                    // the run needs health: start its checks
	actCrashLoop                // a crash loop began: say so, once per loop
	actReplace                  // take the service's new definition (a reload), with a fresh record
)

var actionNames = [...]string{"start", "term-signal", "SIGKILL", "failed", "release", "probe", "crash-loop", "replace"}

func (a action) String() string { return actionNames[a] }

// input is an event with its data.
type input struct {
	ev     Event
	pid    int      // EvSpawned
	exit   exitInfo // EvExitOK, EvExitFail
	intent intent   // EvKill
	why    string   // a reason to show (EvDepFailed, EvSpawnFailed, EvKill, EvStop)
}

// step applies one event to one service. It is pure: it returns the new
// state and the actions to perform, and touches nothing else. Events that do
// not apply in the current state (see transitions) change nothing. Some
// events lead to another at once (an exit to the restart decision, a start
// without checks to Running, too many failed checks to a kill): step follows
// them in the same call.
func step(c *config.Service, r record, in input, now time.Time, shuttingDown bool) (record, []action) {
	var acts []action
	for {
		to, ok := next(r.State, in.ev)
		if !ok {
			return r, acts
		}
		from := r.State
		r.State = to
		follow := input{ev: numEvents}
		switch in.ev {
		case EvDepsReady:
			r.Intent, r.SigKilled, r.Reached = intentNone, false, false
			if d := c.StartDelay + c.Restart.Backoff*time.Duration(r.Attempts) + crashDelay(c, r.QuickExits); d > 0 {
				r.Due = now.Add(d)
			} else {
				r.Due = time.Time{}
				acts = append(acts, actStart)
			}
		case EvDepFailed:
			r.Reason = in.why
			acts = append(acts, actRelease)
		case EvDue:
			switch from {
			case Starting:
				r.Due = time.Time{}
				acts = append(acts, actStart)
			case Started:
				r.Intent = intentStartTimeout
				r.Reason = fmt.Sprintf("not healthy within start-timeout (%s)", c.Healthiness.StartTimeout)
				r.Due = now.Add(c.Termination.Wait)
				acts = append(acts, actTermSignal)
			case InKilling:
				// SIGKILL stays armed until the exit is seen: a SIGKILL that
				// failed (horust out of file descriptors) or that a process
				// in uninterruptible sleep has not acted on yet is sent
				// again at the next deadline.
				r.Due = now.Add(killRetry)
				r.SigKilled = true
				acts = append(acts, actSIGKILL)
			}
		case EvSpawned:
			r.PID, r.StartedAt, r.Reason = in.pid, now, ""
			r.Reached, r.HealthFails, r.Due = false, 0, time.Time{}
			if needsHealth(c) {
				acts = append(acts, actProbe)
				if c.Healthiness.StartTimeout > 0 {
					r.Due = now.Add(c.Healthiness.StartTimeout)
				}
			} else {
				follow = input{ev: EvHealthy}
			}
		case EvSpawnFailed:
			r.Reason = in.why
			r.Exit = exitInfo{}
			acts = countQuick(c, &r, true, acts)
		case EvHealthy:
			if from == Started {
				r.Due = time.Time{}
				// A job is up only once it has succeeded: until then
				// every unsuccessful exit is a failed start.
				if !c.Oneshot {
					r.Reached, r.Attempts = true, 0
				}
			}
			r.HealthFails = 0
		case EvUnhealthy:
			r.HealthFails++
			r.HealthFailsTotal++
			if max := max(1, int(c.Healthiness.MaxFailed)); from == Running && r.HealthFails >= max {
				follow = input{ev: EvKill, intent: intentUnhealthy, why: fmt.Sprintf("unhealthy: %d failed checks in a row", r.HealthFails)}
			}
		case EvExitOK, EvExitFail:
			if r.Intent.onPurpose() {
				r.QuickExits = 0 // stopped on purpose: not a crash
			} else {
				acts = countQuick(c, &r, quickRun(c, r, now), acts)
			}
			r.PID, r.Due, r.StartedAt, r.Exit = 0, time.Time{}, time.Time{}, in.exit
			switch {
			case in.why != "":
				r.Reason = in.why
			case in.ev == EvExitFail && r.Reason == "":
				// A failure always says why, at least how it ended.
				r.Reason = in.exit.String()
			}
		case EvStop, EvRemove:
			switch from {
			case Initial, Starting:
				r.Due = time.Time{}
				r.Reason = in.why
				acts = append(acts, actRelease)
			case Started, Running:
				r.Intent = intentStop
				r.Due = now.Add(c.Termination.Wait)
				acts = append(acts, actTermSignal)
			case InKilling:
				r.Intent = intentStop
			}
		case EvKill:
			r.Intent, r.Reason = in.intent, in.why
			r.Due = now.Add(c.Termination.Wait)
			acts = append(acts, actTermSignal)
		case EvRestartReq:
			switch from {
			case Started, Running:
				r.Intent = intentRestart
				r.Due = now.Add(c.Termination.Wait)
				acts = append(acts, actTermSignal)
			case InKilling:
				// Also over a stop in progress: the stop is carried out,
				// then the service runs again (never a request answered
				// and dropped).
				r.Intent = intentRestart
			default: // Finished, FinishedFailed
				r = rearm(r)
			}
		case EvStartReq:
			if from == InKilling {
				// A start while a stop is in progress: run again once
				// the stop is done.
				r.Intent = intentRestart
			} else {
				r = rearm(r)
			}
		case EvReplace:
			switch from {
			case Started, Running:
				r.Intent = intentReplace
				r.Due = now.Add(c.Termination.Wait)
				acts = append(acts, actTermSignal)
			case InKilling:
				r.Intent = intentReplace
			default:
				// Nothing runs: the new definition starts from the
				// beginning, as a service that was just added.
				r = record{State: to}
				acts = append(acts, actReplace)
			}
		case EvForceKill:
			r.Intent, r.SigKilled, r.Due = intentStop, true, now.Add(killRetry)
			acts = append(acts, actSIGKILL)
		case EvRestart:
			r.Restarts++
			r.Intent, r.SigKilled = intentNone, false
		case EvFinish:
			if in.why != "" {
				r.Reason = in.why
			}
			acts = append(acts, actRelease)
		}
		if to == Failed && from != Failed && !shuttingDown && !r.Intent.onPurpose() {
			acts = append(acts, actFailed)
		}
		if to == Success || to == Failed {
			follow = decide(c, &r, shuttingDown)
		}
		if follow.ev == numEvents {
			return r, acts
		}
		in = follow
	}
}

// rearm makes a finished service startable again (horustctl start/restart):
// a start asked for by a person is not delayed by an earlier crash loop.
func rearm(r record) record {
	r.Restarts++
	r.Attempts, r.QuickExits, r.Intent, r.SigKilled, r.Reason = 0, 0, intentNone, false, ""
	return r
}

// Crash-loop guard (docs/design.md, crash loops): the first delayed restart
// waits crashStep, each further one twice as long, up to max-backoff.
const crashStep = 100 * time.Millisecond

// quickRun reports whether the run that just ended lasted less than
// min-uptime (never, when min-uptime is 0: the guard is off).
func quickRun(c *config.Service, r record, now time.Time) bool {
	return c.Restart.MinUptime > 0 && !r.StartedAt.IsZero() && now.Sub(r.StartedAt) < c.Restart.MinUptime
}

// countQuick counts a run that ended (or a start that failed) towards the
// crash loop, or resets the count after a run that lasted min-uptime. The
// second quick run in a row begins a loop: the first restart that waits.
func countQuick(c *config.Service, r *record, quick bool, acts []action) []action {
	if !quick || c.Restart.MinUptime <= 0 {
		r.QuickExits = 0
		return acts
	}
	r.QuickExits++
	if r.QuickExits == 2 {
		acts = append(acts, actCrashLoop)
	}
	return acts
}

// crashDelay is the crash loop's part of the delay before the next start
// after quick quick runs in a row: none after the first (one crash is
// recovered at once), then 100 ms, 200 ms, 400 ms, ... up to max-backoff.
func crashDelay(c *config.Service, quick int) time.Duration {
	if c.Restart.MinUptime <= 0 || quick < 2 {
		return 0
	}
	d := crashStep
	for i := 2; i < quick && d < c.Restart.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.Restart.MaxBackoff)
}

// decide is the restart decision once a run is over (Success or Failed in
// r.State), as docs/design.md says of restarts: a failure before the run reached Running is a
// failed start; failed starts are retried whatever the strategy while
// attempts remain, and when they run out the service is FinishedFailed.
func decide(c *config.Service, r *record, shuttingDown bool) input {
	switch {
	case shuttingDown || r.Intent == intentStop:
		return input{ev: EvFinish}
	case r.Intent == intentRestart:
		return input{ev: EvRestart}
	case r.Intent == intentReplace:
		return input{ev: EvReplace}
	case r.State == Failed && !r.Reached:
		r.Attempts++
		if r.Attempts > int(c.Restart.Attempts) {
			why := r.Reason
			if c.Restart.Attempts > 0 {
				why = fmt.Sprintf("%s; gave up after %d failed starts", why, r.Attempts)
			}
			return input{ev: EvFinish, why: why}
		}
		return input{ev: EvRestart}
	}
	switch c.Restart.Strategy {
	case config.RestartAlways:
		return input{ev: EvRestart}
	case config.RestartOnFailure:
		if r.State == Failed {
			return input{ev: EvRestart}
		}
	}
	return input{ev: EvFinish}
}

// classify turns an exit into EvExitOK or EvExitFail. A code listed in
// successful-exit-code is a success. A run killed for failing its checks is
// a failure whatever its code. A run that horust stopped (shutdown,
// horustctl stop or restart) and that ended of the termination signal horust
// sent it (or with 128+that signal, as a JVM does) stopped cleanly; one that
// needed SIGKILL did not.
func classify(c *config.Service, r record, e exitInfo) Event {
	switch r.Intent {
	case intentUnhealthy, intentStartTimeout:
		return EvExitFail
	}
	if slices.Contains(c.Failure.SuccessfulExitCodes, e.Code) {
		return EvExitOK
	}
	if r.Intent.onPurpose() && !r.SigKilled && e.Code == 128+int(c.Termination.Signal) {
		return EvExitOK
	}
	return EvExitFail
}

// needsHealth reports whether a run must pass checks or send READY=1 before
// it is Running.
func needsHealth(c *config.Service) bool {
	return c.Healthiness.HasChecks() || c.Healthiness.Notify
}
