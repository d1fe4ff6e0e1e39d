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

// Event is something that happens to one service. The loop feeds what it
// sees (a fork, an exit, a message, a deadline); step feeds the events that
// follow from others (Healthy, ExitOK or ExitFail, Restart or Finish) to
// itself.
type Event uint8

// The events.
const (
	EvDepsReady    Event = iota // every start-after dependency is up (status.State.Up)
	EvDepFailed                 // a start-after dependency ended FinishedFailed
	EvDue                       // the service's deadline (record.Due) passed
	EvSpawned                   // the process started
	EvSpawnFailed               // the process could not be started
	EvReady                     // READY=1 arrived on the notify socket
	EvRoundPassed               // a round of health checks passed
	EvRoundFailed               // a round of health checks failed
	EvHealthy                   // step: the run is ready (READY=1 with notify, a passed round with checks)
	EvMainExit                  // the main process exited and nothing of the run is left
	EvMainExitLeft              // the main process exited and processes it started are still there
	EvDrained                   // the run's output is all copied
	EvGroupEmpty                // the last process the run left is gone
	EvOutputIdle                // output that was being written to a slow destination is written
	EvGiveUp                    // the exit's deadline passed and nothing is being written: end the run as it is
	EvExitOK                    // step: the run is over and that counts as success
	EvExitFail                  // step: the run is over and that counts as failure
	EvRestart                   // step: after a run, run again
	EvFinish                    // step: after a run, done for good
	EvStop                      // stop for good: shutdown, horustctl stop
	EvKill                      // kill this run, then follow the restart strategy (die-if-failed, kill-dependents, unhealthy)
	EvRestartReq                // horustctl restart
	EvStartReq                  // horustctl start
	EvForceKill                 // forceful shutdown: SIGKILL now
	EvRemove                    // a reload removed the service: stop for good, then it is forgotten
	EvReplace                   // a reload changed the service: stop this run, then start over with the new definition
	numEvents
)

var eventNames = [numEvents]string{"DepsReady", "DepFailed", "Due", "Spawned", "SpawnFailed", "Ready", "RoundPassed", "RoundFailed", "Healthy",
	"MainExit", "MainExitLeft", "Drained", "GroupEmpty", "OutputIdle", "GiveUp", "ExitOK", "ExitFail", "Restart", "Finish",
	"Stop", "Kill", "RestartReq", "StartReq", "ForceKill", "Remove", "Replace"}

func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return "Event(?)"
}

// cell is what an event does in a state: the state it leads to and the
// effect step applies (effect.go says what each one does). A zero cell
// (fxNone) means the event is ignored in that state.
type cell struct {
	to State
	fx effect
}

// transitions is the state machine of a service whose run, if it has one,
// is not ending. Which of several outcomes applies (success or failure,
// restart or finish, whether a failed check kills) is decided by an effect
// from data, and expressed as the event it follows with.
var transitions = [numStates][numEvents]cell{
	Initial: {
		EvDepsReady: {Starting, fxArmStart},
		EvDepFailed: {FinishedFailed, fxDepFailed},
		EvStop:      {Finished, fxCancel},
		EvRemove:    {Finished, fxCancel},
		EvReplace:   {Initial, fxReplace}, // takes the new definition at once
	},
	Starting: {
		EvDue:         {Starting, fxStart},
		EvSpawned:     {Started, fxSpawned},
		EvSpawnFailed: {Failed, fxSpawnFailed},
		EvStop:        {Finished, fxCancel},
		EvRemove:      {Finished, fxCancel},
		EvReplace:     {Initial, fxReplace},
	},
	Started: {
		EvDue:          {InKilling, fxStartTimeout},
		EvReady:        {Started, fxReady},
		EvRoundPassed:  {Started, fxRoundPassed},
		EvRoundFailed:  {Started, fxRoundFailed},
		EvHealthy:      {Running, fxUp},
		EvMainExit:     {Started, fxMainExit},
		EvMainExitLeft: {Started, fxStopLeftovers},
		EvDrained:      {Started, fxDrained},
		EvStop:         {InKilling, fxStop},
		EvKill:         {InKilling, fxKill},
		EvRestartReq:   {InKilling, fxRestartReq},
		EvForceKill:    {InKilling, fxForceKill},
		EvRemove:       {InKilling, fxStop},
		EvReplace:      {InKilling, fxReplaceRun},
	},
	Running: {
		EvReady:        {Running, fxReady},
		EvRoundPassed:  {Running, fxRoundPassed},
		EvRoundFailed:  {Running, fxRoundFailed},
		EvMainExit:     {Running, fxMainExit},
		EvMainExitLeft: {Running, fxStopLeftovers},
		EvDrained:      {Running, fxDrained},
		EvStop:         {InKilling, fxStop},
		EvKill:         {InKilling, fxKill},
		EvRestartReq:   {InKilling, fxRestartReq},
		EvForceKill:    {InKilling, fxForceKill},
		EvRemove:       {InKilling, fxStop},
		EvReplace:      {InKilling, fxReplaceRun},
	},
	InKilling: {
		EvDue:          {InKilling, fxSIGKILL},
		EvMainExit:     {InKilling, fxMainExit},
		EvMainExitLeft: {InKilling, fxLeftoversKilled},
		EvDrained:      {InKilling, fxDrained},
		EvStop:         {InKilling, fxNoteStop},
		EvRestartReq:   {InKilling, fxRestartAfter},
		EvStartReq:     {InKilling, fxRestartAfter},
		EvForceKill:    {InKilling, fxForceKill},
		EvRemove:       {InKilling, fxNoteStop},
		EvReplace:      {InKilling, fxNoteReplace}, // start over with the new definition once the stop is done
	},
	Success: {
		EvRestart: {Initial, fxRestart},
		EvFinish:  {Finished, fxFinish},
		EvReplace: {Initial, fxReplace},
	},
	Failed: {
		EvRestart: {Initial, fxRestart},
		EvFinish:  {FinishedFailed, fxFinish},
		EvReplace: {Initial, fxReplace},
	},
	Finished: {
		EvStartReq:   {Initial, fxRearm},
		EvRestartReq: {Initial, fxRearm},
		EvReplace:    {Initial, fxReplace}, // a changed job runs again
	},
	FinishedFailed: {
		EvStartReq:   {Initial, fxRearm},
		EvRestartReq: {Initial, fxRearm},
		EvReplace:    {Initial, fxReplace},
	},
}

// endings is the state machine of a run that is ending (record.End.Seen):
// its main process exited, and its output is still being copied or
// processes it started are still there. The run keeps its state until it is
// over (ExitOK or ExitFail); what it left is already being stopped, so a stop
// or kill asked for meanwhile only changes what the exit will mean.
var endings = [numStates][numEvents]cell{
	Started: {
		EvDue:        {Started, fxEndingDue},
		EvDrained:    {Started, fxDrained},
		EvGroupEmpty: {Started, fxGroupEmpty},
		EvOutputIdle: {Started, fxOutputIdle},
		EvGiveUp:     {Started, fxGiveUp},
		EvExitOK:     {Success, fxRunOver},
		EvExitFail:   {Failed, fxRunOver},
		EvStop:       {InKilling, fxNoteStop},
		EvKill:       {InKilling, fxNoteKill},
		EvRestartReq: {InKilling, fxRestartAfter},
		EvForceKill:  {InKilling, fxKillLeftoversNow},
		EvRemove:     {InKilling, fxNoteStop},
		EvReplace:    {InKilling, fxNoteReplace},
	},
	Running: {
		EvDue:        {Running, fxEndingDue},
		EvDrained:    {Running, fxDrained},
		EvGroupEmpty: {Running, fxGroupEmpty},
		EvOutputIdle: {Running, fxOutputIdle},
		EvGiveUp:     {Running, fxGiveUp},
		EvExitOK:     {Success, fxRunOver},
		EvExitFail:   {Failed, fxRunOver},
		EvStop:       {InKilling, fxNoteStop},
		EvKill:       {InKilling, fxNoteKill},
		EvRestartReq: {InKilling, fxRestartAfter},
		EvForceKill:  {InKilling, fxKillLeftoversNow},
		EvRemove:     {InKilling, fxNoteStop},
		EvReplace:    {InKilling, fxNoteReplace},
	},
	InKilling: {
		EvDue:        {InKilling, fxEndingDue},
		EvDrained:    {InKilling, fxDrained},
		EvGroupEmpty: {InKilling, fxGroupEmpty},
		EvOutputIdle: {InKilling, fxOutputIdle},
		EvGiveUp:     {InKilling, fxGiveUp},
		EvExitOK:     {Success, fxRunOver},
		EvExitFail:   {Failed, fxRunOver},
		EvStop:       {InKilling, fxNoteStop},
		EvRestartReq: {InKilling, fxRestartAfter},
		EvStartReq:   {InKilling, fxRestartAfter},
		EvForceKill:  {InKilling, fxKillLeftoversNow},
		EvRemove:     {InKilling, fxNoteStop},
		EvReplace:    {InKilling, fxNoteReplace},
	},
}

// lookup returns the cell for ev in the record's state: from endings while
// its run is ending, from transitions otherwise.
func lookup(r *record, ev Event) cell {
	if r.State >= numStates || ev >= numEvents {
		return cell{}
	}
	if r.End.Seen {
		return endings[r.State][ev]
	}
	return transitions[r.State][ev]
}
