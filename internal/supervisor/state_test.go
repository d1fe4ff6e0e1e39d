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

// The whole state machine, state × event: "-" means the event is ignored
// in that state. Columns follow the order of the Event constants.
const wantTable = `
state           DepsReady DepFailed      Due       Spawned SpawnFailed Healthy Unhealthy ExitOK  ExitFail Restart Finish         Stop      Kill      RestartReq StartReq ForceKill
Initial         Starting  FinishedFailed -         -       -           -       -         -       -        -       -              Finished  -         -          -        -
Starting        -         -              Starting  Started Failed      -       -         -       -        -       -              Finished  -         -          -        -
Started         -         -              InKilling -       -           Running Started   Success Failed   -       -              InKilling InKilling InKilling  -        InKilling
Running         -         -              -         -       -           Running Running   Success Failed   -       -              InKilling InKilling InKilling  -        InKilling
InKilling       -         -              InKilling -       -           -       -         Success Failed   -       -              InKilling -         InKilling  InKilling InKilling
Success         -         -              -         -       -           -       -         -       -        Initial Finished       -         -         -          -        -
Failed          -         -              -         -       -           -       -         -       -        Initial FinishedFailed -         -         -          -        -
Finished        -         -              -         -       -           -       -         -       -        -       -              -         -         Initial    Initial  -
FinishedFailed  -         -              -         -       -           -       -         -       -        -       -              -         -         Initial    Initial  -
`

func TestTransitionTable(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(wantTable), "\n")
	header := strings.Fields(lines[0])[1:]
	if len(header) != int(numEvents) {
		t.Fatalf("table has %d event columns, there are %d events", len(header), numEvents)
	}
	for i, name := range header {
		if Event(i).String() != name {
			t.Fatalf("column %d is %s, event %d is %s", i, name, i, Event(i))
		}
	}
	if len(lines)-1 != int(numStates) {
		t.Fatalf("table has %d rows, there are %d states", len(lines)-1, numStates)
	}
	for si, line := range lines[1:] {
		cells := strings.Fields(line)
		s := State(si)
		if cells[0] != s.String() {
			t.Fatalf("row %d is %s, state %d is %s", si, cells[0], si, s)
		}
		for ei, want := range cells[1:] {
			ev := Event(ei)
			got, ok := next(s, ev)
			gotName := "-"
			if ok {
				gotName = got.String()
			}
			if gotName != want {
				t.Errorf("%s + %s → %s, want %s", s, ev, gotName, want)
			}
		}
	}
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
			r: record{State: Initial, Attempts: 2}, in: input{ev: EvDepsReady}, want: Starting,
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(5*time.Second) {
					t.Fatalf("due %v, want start-delay + backoff × 2 = 5s", r.Due.Sub(t0))
				}
			}},
		{name: "spawned without checks is running", cfg: base(), r: record{State: Starting, Attempts: 2},
			in: input{ev: EvSpawned, pid: 42}, want: Running,
			check: func(t *testing.T, r record) {
				if r.PID != 42 || !r.Reached || r.Attempts != 0 {
					t.Fatalf("%+v: want pid 42, reached, attempts reset", r)
				}
			}},
		{name: "a job spawned is running but not up, and keeps its failed starts", cfg: base(func(s *config.Service) { s.Oneshot = true }), r: record{State: Starting, Attempts: 2},
			in: input{ev: EvSpawned, pid: 42}, want: Running,
			check: func(t *testing.T, r record) {
				if r.Reached || r.Attempts != 2 {
					t.Fatalf("%+v: a job reaches nothing before it succeeds", r)
				}
			}},
		{name: "a job's unsuccessful exit is a failed start", cfg: base(func(s *config.Service) { s.Oneshot = true; s.Restart.Attempts = 2 }),
			r: record{State: Running, Attempts: 1}, in: input{ev: EvExitFail}, want: Initial, acts: []action{actFailed},
			check: func(t *testing.T, r record) {
				if r.Attempts != 2 {
					t.Fatalf("attempts %d, want 2", r.Attempts)
				}
			}},
		{name: "a job out of attempts is FinishedFailed", cfg: base(func(s *config.Service) {
			s.Oneshot = true
			s.Restart.Attempts = 2
			s.Restart.Strategy = config.RestartOnFailure
		}),
			r: record{State: Running, Attempts: 2}, in: input{ev: EvExitFail}, want: FinishedFailed, acts: []action{actFailed, actRelease}},
		{name: "a job's success finishes it", cfg: base(func(s *config.Service) { s.Oneshot = true; s.Restart.Strategy = config.RestartOnFailure }),
			r: record{State: Running, Attempts: 1}, in: input{ev: EvExitOK}, want: Finished, acts: []action{actRelease}},
		{name: "a failure says how the run ended", cfg: base(), r: record{State: Running, Reached: true},
			in: input{ev: EvExitFail, exit: exitInfo{Valid: true, Code: 3}}, want: FinishedFailed, acts: []action{actFailed, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "exited with code 3" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "a death by signal says which", cfg: base(), r: record{State: Running, Reached: true},
			in: input{ev: EvExitFail, exit: exitInfo{Valid: true, Code: 137, Signal: syscall.SIGKILL}}, want: FinishedFailed, acts: []action{actFailed, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "killed by SIGKILL" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "a kill's reason is kept", cfg: base(), r: record{State: InKilling, Reached: true, Intent: intentUnhealthy, Reason: "unhealthy: 3 failed checks in a row"},
			in: input{ev: EvExitFail, exit: exitInfo{Valid: true, Code: 143, Signal: syscall.SIGTERM}}, want: FinishedFailed, acts: []action{actFailed, actRelease},
			check: func(t *testing.T, r record) {
				if r.Reason != "unhealthy: 3 failed checks in a row" {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "spawned with checks waits for them", cfg: base(withChecks), r: record{State: Starting},
			in: input{ev: EvSpawned, pid: 42}, want: Started, acts: []action{actProbe}},
		{name: "spawned with start-timeout sets the deadline", cfg: base(withChecks, func(s *config.Service) { s.Healthiness.StartTimeout = 3 * time.Second }),
			r: record{State: Starting}, in: input{ev: EvSpawned, pid: 1}, want: Started, acts: []action{actProbe},
			check: func(t *testing.T, r record) {
				if r.Due != t0.Add(3*time.Second) {
					t.Fatalf("due %v", r.Due.Sub(t0))
				}
			}},
		{name: "spawn failure retried while attempts remain", cfg: base(func(s *config.Service) { s.Restart.Attempts = 1 }),
			r: record{State: Starting}, in: input{ev: EvSpawnFailed, why: "no such program"}, want: Initial, acts: []action{actFailed}},
		{name: "spawn failure with attempts spent gives up", cfg: base(func(s *config.Service) { s.Restart.Attempts = 1; s.Restart.Strategy = config.RestartAlways }),
			r: record{State: Starting, Attempts: 1}, in: input{ev: EvSpawnFailed, why: "no such program"}, want: FinishedFailed, acts: []action{actFailed, actRelease},
			check: func(t *testing.T, r record) {
				if !strings.Contains(r.Reason, "gave up after 2 failed starts") {
					t.Fatalf("reason %q", r.Reason)
				}
			}},
		{name: "early failure with strategy never is retried while attempts remain", cfg: base(withChecks, func(s *config.Service) { s.Restart.Attempts = 3 }),
			r: record{State: Started}, in: input{ev: EvExitFail}, want: Initial, acts: []action{actFailed},
			check: func(t *testing.T, r record) {
				if r.Attempts != 1 || r.Restarts != 1 {
					t.Fatalf("attempts %d restarts %d, want 1 and 1", r.Attempts, r.Restarts)
				}
			}},
		{name: "early success is not a failed start", cfg: base(withChecks, func(s *config.Service) { s.Restart.Attempts = 3 }),
			r: record{State: Started}, in: input{ev: EvExitOK}, want: Finished, acts: []action{actRelease}},
		{name: "failure after running with never finishes failed", cfg: base(),
			r: record{State: Running, Reached: true}, in: input{ev: EvExitFail}, want: FinishedFailed, acts: []action{actFailed, actRelease}},
		{name: "on-failure restarts a failed run", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartOnFailure }),
			r: record{State: Running, Reached: true}, in: input{ev: EvExitFail}, want: Initial, acts: []action{actFailed}},
		{name: "on-failure finishes a successful run", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartOnFailure }),
			r: record{State: Running, Reached: true}, in: input{ev: EvExitOK}, want: Finished, acts: []action{actRelease}},
		{name: "always restarts a successful run", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }),
			r: record{State: Running, Reached: true}, in: input{ev: EvExitOK}, want: Initial},
		{name: "exit during shutdown finishes whatever the strategy", cfg: base(func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }),
			r: record{State: InKilling, Reached: true, Intent: intentStop}, in: input{ev: EvExitFail}, shutdown: true, want: FinishedFailed, acts: []action{actRelease}},
		{name: "unhealthy below max-failed is counted", cfg: base(withChecks),
			r: record{State: Running, HealthFails: 1}, in: input{ev: EvUnhealthy}, want: Running,
			check: func(t *testing.T, r record) {
				if r.HealthFails != 2 || r.HealthFailsTotal != 1 {
					t.Fatalf("fails %d total %d", r.HealthFails, r.HealthFailsTotal)
				}
			}},
		{name: "unhealthy at max-failed kills", cfg: base(withChecks),
			r: record{State: Running, HealthFails: 2}, in: input{ev: EvUnhealthy}, want: InKilling, acts: []action{actTermSignal},
			check: func(t *testing.T, r record) {
				if r.Intent != intentUnhealthy || r.Due != t0.Add(5*time.Second) {
					t.Fatalf("intent %d due %v", r.Intent, r.Due.Sub(t0))
				}
			}},
		{name: "unhealthy before running never kills", cfg: base(withChecks),
			r: record{State: Started, HealthFails: 10}, in: input{ev: EvUnhealthy}, want: Started},
		{name: "healthy resets the failures in a row", cfg: base(withChecks),
			r: record{State: Running, HealthFails: 2}, in: input{ev: EvHealthy}, want: Running,
			check: func(t *testing.T, r record) {
				if r.HealthFails != 0 {
					t.Fatalf("fails %d", r.HealthFails)
				}
			}},
		{name: "negative max-failed acts as 1", cfg: base(withChecks, func(s *config.Service) { s.Healthiness.MaxFailed = -5 }),
			r: record{State: Running}, in: input{ev: EvUnhealthy}, want: InKilling, acts: []action{actTermSignal}},
		{name: "start-timeout kills a started run", cfg: base(withChecks, func(s *config.Service) { s.Healthiness.StartTimeout = time.Second }),
			r: record{State: Started}, in: input{ev: EvDue}, want: InKilling, acts: []action{actTermSignal}},
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
		{name: "stop a running service signals it", cfg: base(), r: record{State: Running}, in: input{ev: EvStop}, want: InKilling, acts: []action{actTermSignal}},
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
		{name: "restart request then exit runs again", cfg: base(), r: record{State: InKilling, Intent: intentRestart}, in: input{ev: EvExitFail}, want: Initial},
		{name: "start request rearms a finished service", cfg: base(), r: record{State: FinishedFailed, Attempts: 4, Reason: "x"}, in: input{ev: EvStartReq}, want: Initial,
			check: func(t *testing.T, r record) {
				if r.Attempts != 0 || r.Reason != "" || r.Restarts != 1 {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "force kill stays armed", cfg: base(), r: record{State: Running}, in: input{ev: EvForceKill}, want: InKilling, acts: []action{actSIGKILL},
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, acts := step(tc.cfg, tc.r, tc.in, t0, tc.shutdown)
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
			r, acts = step(c, r, input{ev: EvExitFail, exit: exitInfo{Valid: true, Code: 1}}, t0, false)
			loops += strings.Count(fmt.Sprint(acts), "crash-loop")
			r, _ = step(c, r, input{ev: EvDepsReady}, t0, false)
			delays = append(delays, r.Due.Sub(t0))
			if r.Due.IsZero() {
				delays[len(delays)-1] = 0
			}
			r, _ = step(c, r, input{ev: EvSpawned, pid: 1}, t0, false)
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
		r, _ = step(c, r, input{ev: EvExitFail}, t0.Add(10*time.Second), false)
		if r.QuickExits != 0 || r.State != Initial {
			t.Fatalf("%+v: want a restart with the count reset", r)
		}
		r, acts := step(c, r, input{ev: EvDepsReady}, t0, false)
		if !slices.Equal(acts, []action{actStart}) {
			t.Fatalf("actions %v, want an immediate start", acts)
		}
	})
	t.Run("on top of start-delay and backoff", func(t *testing.T) {
		c := svc("s", guard, func(s *config.Service) { s.StartDelay = time.Second; s.Restart.Backoff = 2 * time.Second })
		r, _ := step(c, record{State: Initial, Attempts: 1, QuickExits: 3}, input{ev: EvDepsReady}, t0, false)
		if got := r.Due.Sub(t0); got != 3200*time.Millisecond {
			t.Fatalf("delay %v, want 1s + 2s × 1 + 200ms", got)
		}
	})
	t.Run("min-uptime 0s turns it off", func(t *testing.T) {
		c := svc("s", guard, func(s *config.Service) { s.Restart.MinUptime = 0 })
		r := record{State: Running, Reached: true, StartedAt: t0, QuickExits: 0}
		for range 5 {
			r, _ = step(c, r, input{ev: EvExitFail}, t0, false)
			var acts []action
			r, acts = step(c, r, input{ev: EvDepsReady}, t0, false)
			if !slices.Equal(acts, []action{actStart}) || r.QuickExits != 0 {
				t.Fatalf("%+v %v: want immediate restarts", r, acts)
			}
			r, _ = step(c, r, input{ev: EvSpawned, pid: 1}, t0, false)
		}
	})
	t.Run("a stop or restart asked for is not a crash", func(t *testing.T) {
		c := svc("s", guard)
		r, _ := step(c, record{State: InKilling, Intent: intentRestart, StartedAt: t0, QuickExits: 4}, input{ev: EvExitOK}, t0, false)
		if r.QuickExits != 0 {
			t.Fatalf("quick exits %d after a requested restart", r.QuickExits)
		}
	})
	t.Run("start request forgets the loop", func(t *testing.T) {
		r, _ := step(svc("s", guard), record{State: FinishedFailed, QuickExits: 4}, input{ev: EvStartReq}, t0, false)
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
