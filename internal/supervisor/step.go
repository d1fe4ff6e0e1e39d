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

// drainGrace bounds how long an ending run waits, once nothing of it should
// be left, for its output to be copied and its last processes to be gone.
// The copier sees EOF as soon as every holder of the pipe is gone; only a
// process that escaped the run's group and cgroup, or one that SIGKILL cannot
// end, can hold it longer, and it must not hold the service's exit back
// forever.
const drainGrace = time.Second

// exitInfo is how a run ended.
type exitInfo struct {
	Valid  bool
	PID    int            // the main process
	Code   int            // exit code, 128+N for a death by signal N
	Signal syscall.Signal // the signal, when it died of one
	Why    string         // what the system says of the exit, when it says more (an OOM kill)
}

// String says how the run ended: "exited with code 3", "killed by
// SIGKILL".
func (e exitInfo) String() string {
	if e.Signal != 0 {
		return "killed by SIG" + signalName(e.Signal)
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}

// checkResult is the outcome of a run's last round of health checks.
type checkResult int8

const (
	checksUnknown checkResult = iota // no round has a result yet
	checksPassed
	checksFailed
)

// ending is what a run still waits for after its main process exited
// (docs/design.md, leftovers and output): processes it started that are
// still in its process group or cgroup get the treatment of a stop (the
// termination signal, SIGKILL at record.Due), and its output is copied to
// the end. The run is over once both are done, or at the give-up deadline.
type ending struct {
	Seen     bool     // the main process exited
	Exit     exitInfo // how it exited
	Left     bool     // processes of the run are still there
	KillLeft bool     // record.Due is the SIGKILL of what is left (else it is the give-up)
}

// record is what step knows of one service, over all its runs: the state,
// the current run (pid, deadline, intent, readiness, how it is ending) and
// the counters that span runs (failed starts, quick exits, restarts). step
// only reads and returns it; the loop keeps the handles (process,
// generation, running checks) beside it.
type record struct {
	State State
	PID   int
	// Due is the service's one deadline: the start (Starting), the
	// start-timeout (Started), the SIGKILL (InKilling), and while the run is
	// ending the SIGKILL of what it left or the give-up. Zero when none.
	Due          time.Time
	FailedStarts int // failed starts in a row (docs/design.md, restarts)
	// QuickExits counts the runs in a row that ended before min-uptime: a
	// crash loop, whose restarts are delayed (see crashDelay).
	QuickExits int
	Restarts   int  // starts after the first one
	Reached    bool // this run reached Running
	Intent     intent
	SigKilled  bool // SIGKILL was sent to this run
	// Readiness of this run: READY=1 arrived (notify), the last round of
	// checks. healthy says what they mean.
	Ready  bool
	Checks checkResult
	// HealthFails counts failed rounds of checks in a row;
	// HealthFailsTotal every failed round since horust started.
	HealthFails      int
	HealthFailsTotal int
	StartedAt        time.Time
	Drained          bool     // this run's output is all copied
	End              ending   // this run's main process exited: what is still outstanding
	Exit             exitInfo // the last run's
	Reason           string   // why the service is in its state, when it says more than the state
}

// action is an effect the loop performs for step.
type action uint8

const (
	actStart           action = iota // fork and exec now
	actTermSignal                    // send the termination signal to the run
	actSIGKILL                       // send SIGKILL to the run
	actFailureStrategy               // entered Failed while running normally: failure strategy, die-if-failed
	actRelease                       // finished for good: free the service's resources
	actStartChecks                   // the run needs health: start its checks
	actStopChecks                    // the run's main process exited: stop its checks
	actStopLeftovers                 // the main process exited on its own: send the termination signal to what it left
	actKillLeftovers                 // what the run left did not stop in time: SIGKILL it
	actWaitOutput                    // give-up deadline: feed EvGiveUp unless output is being written to a slow destination (then EvOutputIdle comes when it is written)
	actLogGiveUp                     // say that the run ends with output or processes left
	actLogExit                       // say that the run is over: exited
	actLogFailure                    // say that the run is over: failed
	actLogCrash                      // the same, quietly: a crash loop already said so
	actRunOver                       // the run is over: forget its process
	actCrashLoop                     // a crash loop began: say so, once per loop
	actReplace                       // take the service's new definition (a reload), with a fresh record
)

var actionNames = [...]string{"start", "term-signal", "SIGKILL", "failure-strategy", "release", "start-checks", "stop-checks", "stop-leftovers",
	"kill-leftovers", "wait-output", "log-give-up", "log-exit", "log-failure", "log-crash", "run-over", "crash-loop", "replace"}

func (a action) String() string { return actionNames[a] }

// input is an event with its data.
type input struct {
	ev     Event
	pid    int      // EvSpawned
	exit   exitInfo // EvMainExit, EvMainExitLeft
	intent intent   // EvKill
	why    string   // a reason to show (EvDepFailed, EvSpawnFailed, EvKill, EvStop, EvFinish)
}

// none is the input that follows nothing.
var none = input{ev: numEvents}

// step applies one event to one service. It is pure: it returns the new
// state and the actions to perform, and touches nothing else. Events that do
// not apply in the current state (see transitions and endings) change
// nothing. Some events lead to another at once (a run that is over to the
// restart decision, a ready run to Running, too many failed checks to a
// kill): step follows them in the same call. The actions are appended to
// acts, which may be nil or a caller's buffer (the loop's spares it an
// allocation per event).
func step(c *config.Service, r record, in input, now time.Time, shuttingDown bool, acts []action) (record, []action) {
	for {
		cl := lookup(&r, in.ev)
		if cl.fx == fxNone {
			return r, acts
		}
		from := r.State
		r.State = cl.to
		var follow input
		follow, acts = cl.fx.apply(c, &r, in, now, acts)
		if to := cl.to; to == Failed && from != Failed && !shuttingDown && !r.stopping() {
			acts = append(acts, actFailureStrategy)
		}
		if to := cl.to; to == Success || to == Failed {
			follow = decide(c, &r, shuttingDown)
		}
		if follow.ev == numEvents {
			return r, acts
		}
		in = follow
	}
}

// stopping reports whether horust is stopping the run on purpose (a stop, a
// restart asked for, a reload's removal or change): its end is not a failure
// of the service.
func (r *record) stopping() bool {
	return r.Intent == intentStop || r.Intent == intentRestart || r.Intent == intentReplace
}

// healthy reports whether the current run is ready to be Running: READY=1
// arrived (with notify) and its last round of checks passed (with checks).
// It is the one place that says so.
func healthy(c *config.Service, r *record) bool {
	h := c.Healthiness
	return (!h.Notify || r.Ready) && (!h.HasChecks() || r.Checks == checksPassed)
}

// over returns the event that ends the run when nothing of it is
// outstanding any more (its main process exited, its output is copied,
// nothing it left is there), none otherwise.
func over(c *config.Service, r *record) input {
	if !r.End.Seen || !r.Drained || r.End.Left {
		return none
	}
	return input{ev: classify(c, *r, r.End.Exit)}
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
		r.FailedStarts++
		if r.FailedStarts > int(c.Restart.Attempts) {
			why := r.Reason
			if c.Restart.Attempts > 0 {
				why = fmt.Sprintf("%s; gave up after %d failed starts", why, r.FailedStarts)
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
	if r.stopping() && !r.SigKilled && e.Code == 128+int(c.Termination.Signal) {
		return EvExitOK
	}
	return EvExitFail
}

// needsHealth reports whether a run must pass checks or send READY=1 before
// it is Running.
func needsHealth(c *config.Service) bool {
	return c.Healthiness.HasChecks() || c.Healthiness.Notify
}
