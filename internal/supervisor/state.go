package supervisor

import "github.com/horust-go/horust/internal/status"

// State is the lifecycle state of a service; the type, its names and what
// each state means for readiness live in package status, shared with the
// control API.
type State = status.State

// The states, under the names the table below uses.
const (
	Initial        = status.Initial
	Starting       = status.Starting
	Started        = status.Started
	Running        = status.Running
	InKilling      = status.InKilling
	Success        = status.Success
	Failed         = status.Failed
	Finished       = status.Finished
	FinishedFailed = status.FinishedFailed
	numStates      = status.NumStates
)

// Event is something that happens to one service.
type Event uint8

// The events.
const (
	EvDepsReady   Event = iota // every start-after dependency is up (status.State.Up)
	EvDepFailed                // a start-after dependency ended FinishedFailed
	EvDue                      // the service's deadline passed
	EvSpawned                  // the process started
	EvSpawnFailed              // the process could not be started
	EvHealthy                  // the checks pass (and READY=1 arrived, with notify)
	EvUnhealthy                // a round of checks failed
	EvExitOK                   // the process exited and that counts as success
	EvExitFail                 // the process exited and that counts as failure
	EvRestart                  // decision after an exit: run again
	EvFinish                   // decision after an exit: done for good
	EvStop                     // stop for good: shutdown, horustctl stop
	EvKill                     // kill this run, then follow the restart strategy (die-if-failed, kill-dependents, unhealthy)
	EvRestartReq               // horustctl restart
	EvStartReq                 // horustctl start
	EvForceKill                // forceful shutdown: SIGKILL now
	numEvents
)

var eventNames = [numEvents]string{"DepsReady", "DepFailed", "Due", "Spawned", "SpawnFailed", "Healthy", "Unhealthy", "ExitOK", "ExitFail", "Restart", "Finish", "Stop", "Kill", "RestartReq", "StartReq", "ForceKill"}

func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return "Event(?)"
}

// transitions is the state machine: for a state and an event, the next
// state. An event that is missing for a state is ignored in that state.
// Which of several outcomes applies (success or failure, restart or finish,
// whether a failed check kills) is decided by step from data, and expressed
// as the event it feeds in; the table only says where each event leads.
var transitions = [numStates]map[Event]State{
	Initial: {
		EvDepsReady: Starting,
		EvDepFailed: FinishedFailed,
		EvStop:      Finished,
	},
	Starting: {
		EvDue:         Starting, // the delay passed: fork now
		EvSpawned:     Started,
		EvSpawnFailed: Failed,
		EvStop:        Finished,
	},
	Started: {
		EvDue:        InKilling, // start-timeout passed
		EvHealthy:    Running,
		EvUnhealthy:  Started, // not killed before it was ever healthy
		EvExitOK:     Success,
		EvExitFail:   Failed,
		EvStop:       InKilling,
		EvKill:       InKilling,
		EvRestartReq: InKilling,
		EvForceKill:  InKilling,
	},
	Running: {
		EvHealthy:    Running,
		EvUnhealthy:  Running, // counted; step feeds EvKill at max-failed in a row
		EvExitOK:     Success,
		EvExitFail:   Failed,
		EvStop:       InKilling,
		EvKill:       InKilling,
		EvRestartReq: InKilling,
		EvForceKill:  InKilling,
	},
	InKilling: {
		EvDue:        InKilling, // the wait passed: SIGKILL
		EvForceKill:  InKilling,
		EvStop:       InKilling, // now stopping for good
		EvRestartReq: InKilling, // now restarting, also after a stop
		EvStartReq:   InKilling, // run again once the stop is done
		EvExitOK:     Success,
		EvExitFail:   Failed,
	},
	Success: {
		EvRestart: Initial,
		EvFinish:  Finished,
	},
	Failed: {
		EvRestart: Initial,
		EvFinish:  FinishedFailed,
	},
	Finished: {
		EvStartReq:   Initial,
		EvRestartReq: Initial,
	},
	FinishedFailed: {
		EvStartReq:   Initial,
		EvRestartReq: Initial,
	},
}

// next returns the state ev leads to from s, and whether ev applies at all.
func next(s State, ev Event) (State, bool) {
	if s >= numStates {
		return s, false
	}
	n, ok := transitions[s][ev]
	return n, ok
}
