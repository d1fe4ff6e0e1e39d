package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/health"
	"github.com/horust-go/horust/internal/status"
)

// harness runs a loop on a fake OS inside a synctest bubble.
type harness struct {
	t    *testing.T
	os   *fakeOS
	loop *Loop
	done chan struct{}
}

func start(t *testing.T, f *fakeOS, opt Options, svcs ...*config.Service) *harness {
	t.Helper()
	opt.OS = f
	opt.Services = svcs
	l := New(opt)
	h := &harness{t: t, os: f, loop: l, done: make(chan struct{})}
	go func() {
		l.Run(f.signals())
		close(h.done)
	}()
	synctest.Wait()
	return h
}

func (h *harness) signal(s syscall.Signal) {
	if s == syscall.SIGTERM || s == syscall.SIGINT {
		h.os.stop <- s
	} else {
		h.os.other <- s
	}
	synctest.Wait()
}

// advance lets fake time pass and the loop react.
func (h *harness) advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (h *harness) state(name string) string {
	h.t.Helper()
	st, err := h.loop.Get(context.Background(), name)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", name, err)
	}
	return st.State.API()
}

func (h *harness) wantState(name, want string) {
	h.t.Helper()
	if got := h.state(name); got != want {
		h.t.Fatalf("%s is %s, want %s (events: %q)", name, got, want, h.os.events())
	}
}

func (h *harness) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func (h *harness) waitExit() {
	h.t.Helper()
	synctest.Wait()
	if !h.exited() {
		h.t.Fatalf("loop did not exit; events: %q", h.os.events())
	}
}

func durations(ds ...time.Duration) []time.Duration { return ds }

func TestRestartStrategies(t *testing.T) {
	cases := []struct {
		name     string
		strategy config.RestartStrategy
		code     int
		starts   int // within 1 s of fake time when each run lasts 100 ms
		final    string
	}{
		{"always restarts after exit 0", config.RestartAlways, 0, 10, "RUNNING"},
		{"always restarts after exit 1", config.RestartAlways, 1, 10, "RUNNING"},
		{"on-failure restarts after exit 1", config.RestartOnFailure, 1, 10, "RUNNING"},
		{"on-failure finishes after exit 0", config.RestartOnFailure, 0, 1, "FINISHED"},
		{"never finishes after exit 0", config.RestartNever, 0, 1, "FINISHED"},
		{"never fails after exit 1", config.RestartNever, 1, 1, "FINISHEDFAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeOS(t)
				f.behave["a"] = exitAfter(100*time.Millisecond, tc.code)
				h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Restart.Strategy = tc.strategy }))
				h.advance(950 * time.Millisecond)
				if got := len(f.starts("a")); got != tc.starts {
					t.Fatalf("started %d times, want %d", got, tc.starts)
				}
				if tc.starts == 1 {
					h.waitExit()
					if got := h.loop.svcs[0].State.API(); got != tc.final {
						t.Fatalf("final state %s, want %s", got, tc.final)
					}
					return
				}
				h.wantState("a", tc.final)
				h.signal(syscall.SIGTERM)
				h.waitExit()
			})
		})
	}
}

func TestRestartIsImmediateWithoutBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["a"] = exitAfter(10*time.Millisecond, 0)
		h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }))
		h.advance(95 * time.Millisecond)
		// Every run lasts 10 ms and the next starts in the same instant.
		var want []time.Duration
		for i := range 10 {
			want = append(want, time.Duration(i)*10*time.Millisecond)
		}
		if got := f.starts("a"); !slices.Equal(got, want) {
			t.Fatalf("starts at %v, want %v", got, want)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestFailedStartsUseBackoffAndAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.failStart["a"] = syscall.ENOENT
		h := start(t, f, Options{}, svc("a", func(s *config.Service) {
			s.Restart = config.Restart{Strategy: config.RestartNever, Backoff: time.Second, Attempts: 2}
			s.StartDelay = 100 * time.Millisecond
		}))
		h.advance(10 * time.Second)
		h.waitExit()
		var times []time.Duration
		for _, e := range f.events() {
			if e == "startfail a" {
				times = append(times, 0)
			}
		}
		if len(times) != 3 {
			t.Fatalf("%d start attempts, want 3 (1 + attempts 2): %q", len(times), f.events())
		}
		s := h.loop.svcs[0]
		if s.State != FinishedFailed || s.FailedStarts != 3 {
			t.Fatalf("state %s attempts %d, want FinishedFailed after 3", s.State, s.FailedStarts)
		}
	})
}

func TestBackoffGrowsWithFailedStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		// A service with a command check that never passes and exits on its
		// own after 50 ms: every run is a failed start.
		f.behave["a"] = exitAfter(50*time.Millisecond, 1)
		f.behave["a (health check)"] = exitAfter(0, 1)
		h := start(t, f, Options{}, svc("a", func(s *config.Service) {
			s.Restart = config.Restart{Strategy: config.RestartAlways, Backoff: time.Second, Attempts: 3}
			s.StartDelay = 100 * time.Millisecond
			s.Healthiness.Command = "false"
		}))
		h.advance(20 * time.Second)
		h.waitExit()
		// start-delay + backoff × attempts made: 0.1, then +0.05 run +1.1,
		// +0.05 +2.1, +0.05 +3.1.
		want := durations(100*time.Millisecond, 1250*time.Millisecond, 3400*time.Millisecond, 6550*time.Millisecond)
		if got := f.starts("a"); !slices.Equal(got, want) {
			t.Fatalf("starts at %v, want %v", got, want)
		}
		if got := h.loop.svcs[0].State; got != FinishedFailed {
			t.Fatalf("state %s, want FinishedFailed", got)
		}
	})
}

func TestAttemptsResetWhenRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["a"] = exitAfter(time.Second, 1)
		h := start(t, f, Options{}, svc("a", func(s *config.Service) {
			s.Restart = config.Restart{Strategy: config.RestartOnFailure, Backoff: time.Second}
		}))
		// Runs without checks reach Running at once: their failures are not
		// failed starts, so on-failure restarts them without backoff and
		// attempts = 0 does not stop them.
		h.advance(5500 * time.Millisecond)
		if got := len(f.starts("a")); got != 6 {
			t.Fatalf("%d starts in 5.5 s, want 6", got)
		}
		h.wantState("a", "RUNNING")
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestSpawnFailureWithoutAttemptsFinishesFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.failStart["a"] = syscall.ENOENT
		h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }))
		h.waitExit()
		if s := h.loop.svcs[0]; s.State != FinishedFailed {
			t.Fatalf("state %s, want FinishedFailed", s.State)
		}
		if got := h.loop.ExitCode(true); got != 101 {
			t.Fatalf("exit code %d with the 101 switch, want 101", got)
		}
		if got := h.loop.ExitCode(false); got != 0 {
			t.Fatalf("exit code %d without the switch, want 0", got)
		}
	})
}

func TestStartAfterChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		var svcs []*config.Service
		prev := ""
		for _, n := range []string{"a", "b", "c", "d"} {
			p := prev
			svcs = append(svcs, svc(n, func(s *config.Service) {
				if p != "" {
					s.StartAfter = []string{p}
				}
				s.StartDelay = 10 * time.Millisecond
			}))
			prev = n
		}
		h := start(t, f, Options{}, svcs...)
		h.advance(100 * time.Millisecond)
		for i, n := range []string{"a", "b", "c", "d"} {
			if got := f.starts(n); len(got) != 1 || got[0] != time.Duration(i+1)*10*time.Millisecond {
				t.Fatalf("%s started at %v, want once at %v", n, got, time.Duration(i+1)*10*time.Millisecond)
			}
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestFinishedDependencySatisfiesStartAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["migrate"] = exitAfter(time.Second, 0)
		h := start(t, f, Options{},
			svc("migrate"),
			svc("app", func(s *config.Service) { s.StartAfter = []string{"migrate"} }),
		)
		// migrate is Running at once (no checks), which already satisfies app.
		if len(f.starts("app")) != 1 {
			t.Fatalf("app not started while migrate runs: %q", f.events())
		}
		h.advance(2 * time.Second)
		h.wantState("migrate", "FINISHED")
		h.wantState("app", "RUNNING")
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestFailedDependencyFinishesDependentsTransitively(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.failStart["db"] = syscall.ENOENT
		h := start(t, f, Options{},
			svc("db"),
			svc("app", func(s *config.Service) { s.StartAfter = []string{"db"} }),
			svc("proxy", func(s *config.Service) { s.StartAfter = []string{"app"} }),
			svc("other"),
		)
		h.wantState("app", "FINISHEDFAILED")
		h.wantState("proxy", "FINISHEDFAILED")
		st, _ := h.loop.Get(context.Background(), "proxy")
		if st.Reason != "dependency 'app' failed" {
			t.Fatalf("proxy reason %q", st.Reason)
		}
		if len(f.starts("app")) != 0 || len(f.starts("proxy")) != 0 {
			t.Fatal("a dependent of a failed service was started")
		}
		h.wantState("other", "RUNNING")
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestShutdownAfterOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		// c stops after b, b after a; each takes 100 ms to stop.
		for _, n := range []string{"a", "b", "c"} {
			f.behave[n] = trapTerm(100*time.Millisecond, 0)
		}
		h := start(t, f, Options{},
			svc("a"),
			svc("b", func(s *config.Service) { s.ShutdownAfter = []string{"a"} }),
			svc("c", func(s *config.Service) { s.ShutdownAfter = []string{"b"} }),
		)
		h.signal(syscall.SIGTERM)
		h.advance(time.Second)
		h.waitExit()
		var order []string
		for _, e := range f.events() {
			if len(e) > 7 && e[:7] == "signal " {
				order = append(order, e)
			}
		}
		want := []string{"signal a TERM", "signal b TERM", "signal c TERM"}
		if !slices.Equal(order, want) {
			t.Fatalf("signal order %q, want %q", order, want)
		}
		for _, s := range h.loop.svcs {
			if s.State != Finished {
				t.Fatalf("%s ended %s, want Finished (exit 0 on TERM)", s.cfg.Name, s.State)
			}
		}
	})
}

func TestTermThenKillAfterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["stubborn"] = ignoreTerm
		h := start(t, f, Options{}, svc("stubborn", func(s *config.Service) { s.Termination.Wait = 500 * time.Millisecond }))
		t0 := time.Now()
		h.signal(syscall.SIGTERM)
		h.advance(499 * time.Millisecond)
		if h.exited() || slices.Contains(f.events(), "signal stubborn KILL") {
			t.Fatal("killed before the wait passed")
		}
		h.advance(time.Millisecond)
		h.waitExit()
		if d := time.Since(t0); d != 500*time.Millisecond {
			t.Fatalf("exit after %v, want exactly 500ms", d)
		}
		if s := h.loop.svcs[0]; s.State != FinishedFailed {
			t.Fatalf("a service that needed SIGKILL ended %s, want FinishedFailed", s.State)
		}
	})
}

func TestDeathByTerminationSignalIsACleanStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		h := start(t, f, Options{}, svc("a"), svc("b", func(s *config.Service) { s.Termination.Signal = syscall.SIGINT }))
		h.signal(syscall.SIGTERM)
		h.waitExit()
		for _, s := range h.loop.svcs {
			if s.State != Finished {
				t.Fatalf("%s ended %s after dying of its own termination signal, want Finished", s.cfg.Name, s.State)
			}
		}
		if !slices.Contains(f.events(), "signal b INT") {
			t.Fatalf("b did not get its termination signal INT: %q", f.events())
		}
	})
}

func TestSecondSignalIsForceful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["a"] = ignoreTerm
		f.behave["b"] = ignoreTerm
		h := start(t, f, Options{},
			svc("a"),
			svc("b", func(s *config.Service) { s.ShutdownAfter = []string{"a"} }),
		)
		h.signal(syscall.SIGTERM)
		h.advance(time.Second)
		if h.exited() || slices.Contains(f.events(), "signal b TERM") {
			t.Fatal("b signalled before a finished")
		}
		h.signal(syscall.SIGINT)
		h.waitExit()
		ev := f.events()
		if !slices.Contains(ev, "signal a KILL") || !slices.Contains(ev, "signal b KILL") {
			t.Fatalf("forceful shutdown did not SIGKILL both: %q", ev)
		}
	})
}

func TestFailureStrategies(t *testing.T) {
	t.Run("shutdown stops everything", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["bad"] = exitAfter(time.Second, 3)
			h := start(t, f, Options{},
				svc("bad", func(s *config.Service) { s.Failure.Strategy = config.FailureShutdown }),
				svc("other"),
			)
			h.advance(time.Second)
			h.waitExit()
			if got := h.loop.svcs[1].State; got != Finished {
				t.Fatalf("other ended %s, want Finished", got)
			}
		})
	})
	t.Run("kill-dependents kills services that start after it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["db"] = exitAfter(time.Second, 3)
			h := start(t, f, Options{},
				svc("db", func(s *config.Service) { s.Failure.Strategy = config.FailureKillDependents }),
				svc("app", func(s *config.Service) { s.StartAfter = []string{"db"} }),
				svc("unrelated"),
			)
			h.advance(time.Second)
			// app died of TERM: not a success code, strategy never: FinishedFailed.
			h.wantState("app", "FINISHEDFAILED")
			h.wantState("unrelated", "RUNNING")
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("die-if-failed kills the services that name it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = exitAfter(time.Second, 3)
			h := start(t, f, Options{},
				svc("a"),
				svc("b", func(s *config.Service) {
					s.Termination.DieIfFailed = []string{"a"}
					s.Restart.Strategy = config.RestartAlways
				}),
			)
			h.advance(time.Second)
			// b was killed and, strategy always, started again.
			if got := len(f.starts("b")); got != 2 {
				t.Fatalf("b started %d times, want 2: %q", got, f.events())
			}
			h.wantState("b", "RUNNING")
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("ignore leaves the others alone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = exitAfter(time.Second, 3)
			h := start(t, f, Options{}, svc("a"), svc("b", func(s *config.Service) { s.StartAfter = []string{"a"} }))
			h.advance(time.Second)
			h.wantState("a", "FINISHEDFAILED")
			h.wantState("b", "RUNNING")
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
}

func TestHealthChecks(t *testing.T) {
	t.Run("unhealthy in a row kills a running service", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			checks := 0
			// healthy twice, then failing forever.
			f.behave["a (health check)"] = func(p *fakeProc) {
				checks++
				if checks <= 2 {
					p.exit(exitStatus(0))
				} else {
					p.exit(exitStatus(1))
				}
			}
			h := start(t, f, Options{}, svc("a", func(s *config.Service) {
				s.Healthiness.Command = "check"
				s.Restart.Strategy = config.RestartAlways
			}))
			h.wantState("a", "RUNNING")
			// Rounds at 0, 1, 2 (fails: 1), 3 (2), 4 (3 in a row: kill).
			h.advance(3500 * time.Millisecond)
			if slices.Contains(f.events(), "signal a TERM") {
				t.Fatal("killed before max-failed failures in a row")
			}
			h.advance(time.Second)
			if !slices.Contains(f.events(), "signal a TERM") {
				t.Fatalf("not killed after 3 failures in a row: %q", f.events())
			}
			if got := len(f.starts("a")); got != 2 {
				t.Fatalf("%d starts, want a restart (always)", got)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("a flaky check never kills", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			checks := 0
			f.behave["a (health check)"] = func(p *fakeProc) {
				checks++
				p.exit(exitStatus(checks % 2)) // fail, pass, fail, pass...
			}
			h := start(t, f, Options{}, svc("a", func(s *config.Service) {
				s.Healthiness.Command = "check"
				s.Healthiness.MaxFailed = 2
			}))
			h.advance(20 * time.Second)
			if slices.Contains(f.events(), "signal a TERM") {
				t.Fatal("a flaky check killed the service")
			}
			h.wantState("a", "RUNNING")
			st, _ := h.loop.Get(context.Background(), "a")
			if st.HealthFailures < 9 {
				t.Fatalf("health failures %d, want about 10", st.HealthFailures)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("a slow starter is not killed and gates its dependent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			checks := 0
			f.behave["db (health check)"] = func(p *fakeProc) {
				checks++
				if checks > 10 {
					p.exit(exitStatus(0))
				} else {
					p.exit(exitStatus(1))
				}
			}
			h := start(t, f, Options{},
				svc("db", func(s *config.Service) { s.Healthiness.Command = "check" }),
				svc("app", func(s *config.Service) { s.StartAfter = []string{"db"} }),
			)
			h.advance(9500 * time.Millisecond)
			h.wantState("db", "STARTED")
			if len(f.starts("app")) != 0 {
				t.Fatal("app started before db was healthy")
			}
			h.advance(time.Second)
			h.wantState("db", "RUNNING")
			if got := f.starts("app"); len(got) != 1 || got[0] != 10*time.Second {
				t.Fatalf("app started at %v, want right at the healthy check at 10s", got)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("start-timeout is a failed start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a (health check)"] = exitAfter(0, 1)
			h := start(t, f, Options{}, svc("a", func(s *config.Service) {
				s.Healthiness.Command = "check"
				s.Healthiness.StartTimeout = 2 * time.Second
				s.Restart = config.Restart{Strategy: config.RestartAlways, Attempts: 1}
			}))
			h.advance(10 * time.Second)
			h.waitExit()
			if got := f.starts("a"); !slices.Equal(got, durations(0, 2*time.Second)) {
				t.Fatalf("starts at %v, want 0s and 2s", got)
			}
			st := h.loop.svcs[0]
			if st.State != FinishedFailed {
				t.Fatalf("state %s, want FinishedFailed", st.State)
			}
		})
	})
	t.Run("a hanging check command is killed at its timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a (health check)"] = ignoreTerm
			h := start(t, f, Options{}, svc("a", func(s *config.Service) {
				s.Healthiness.Command = "hang"
				s.Healthiness.Timeout = 300 * time.Millisecond
			}))
			h.advance(300 * time.Millisecond)
			if !slices.Contains(f.events(), "signal a (health check) KILL") {
				t.Fatalf("hanging check not killed at its timeout: %q", f.events())
			}
			st, _ := h.loop.Get(context.Background(), "a")
			if st.Health != "unhealthy" || st.State != Started {
				t.Fatalf("after a timed-out check: %+v", st)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
}

func TestNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		h := start(t, f, Options{NotifySocket: "@test"},
			svc("a", func(s *config.Service) { s.Healthiness.Notify = true }),
			svc("b", func(s *config.Service) { s.StartAfter = []string{"a"} }),
		)
		h.advance(time.Hour)
		h.wantState("a", "STARTED")
		pid := h.loop.svcs[0].PID
		h.loop.Notify(health.NotifyMessage{PID: 99999, Ready: true})
		synctest.Wait()
		h.wantState("a", "STARTED")
		h.loop.Notify(health.NotifyMessage{PID: pid, Ready: true, Status: "serving"})
		synctest.Wait()
		h.wantState("a", "RUNNING")
		h.wantState("b", "RUNNING")
		st, _ := h.loop.Get(context.Background(), "a")
		if st.Notify == nil || !st.Notify.Ready || st.Notify.Status != "serving" {
			t.Fatalf("notify status %+v", st.Notify)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestSignalForwarding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["a"] = ignoreTerm
		h := start(t, f, Options{Forward: []os.Signal{syscall.SIGUSR1}}, svc("a"), svc("b", func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }))
		h.signal(syscall.SIGUSR1)
		ev := f.events()
		if !slices.Contains(ev, "signal a USR1") || !slices.Contains(ev, "signal b USR1") {
			t.Fatalf("USR1 not forwarded to both: %q", ev)
		}
		h.signal(syscall.SIGUSR2) // not in Forward: ignored
		if slices.ContainsFunc(f.events(), func(e string) bool { return e == "signal a USR2" }) {
			t.Fatal("USR2 forwarded although not asked")
		}
		h.signal(syscall.SIGTERM)
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestOneShot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["cmd"] = exitAfter(time.Second, 7)
		h := start(t, f, Options{OneShot: true}, svc("cmd"))
		h.advance(time.Second)
		h.waitExit()
		if got := h.loop.ExitCode(false); got != 7 {
			t.Fatalf("exit code %d, want the command's 7", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		h := start(t, f, Options{OneShot: true}, svc("cmd"))
		h.signal(syscall.SIGINT)
		h.waitExit()
		if !slices.Contains(f.events(), "signal cmd INT") {
			t.Fatalf("one-shot did not pass INT on: %q", f.events())
		}
		if got := h.loop.ExitCode(false); got != 130 {
			t.Fatalf("exit code %d, want 130", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.failStart["cmd"] = syscall.ENOENT
		h := start(t, f, Options{OneShot: true}, svc("cmd"))
		h.waitExit()
		if got := h.loop.ExitCode(false); got != 127 {
			t.Fatalf("exit code %d for a missing program, want 127", got)
		}
	})
}

func TestControlRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["job"] = exitAfter(time.Second, 0)
		h := start(t, f, Options{}, svc("a"), svc("job"))
		ctx := context.Background()
		list, err := h.loop.List(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "a" || list[0].State != Running || list[0].PID == 0 {
			t.Fatalf("List: %+v, %v", list, err)
		}
		if _, err := h.loop.Get(ctx, "nope"); !errors.Is(err, control.ErrNotFound) {
			t.Fatalf("Get unknown: %v, want ErrNotFound", err)
		}
		// where the output goes: the loop answers with the configuration.
		if cfg, err := h.loop.ServiceConfig(ctx, "job"); err != nil || cfg.Name != "job" {
			t.Fatalf("Config: %+v, %v", cfg, err)
		}
		if _, err := h.loop.ServiceConfig(ctx, "nope"); !errors.Is(err, control.ErrNotFound) {
			t.Fatalf("Config unknown: %v, want ErrNotFound", err)
		}
		// wait for job to finish, from another goroutine.
		waited := make(chan []status.ServiceStatus, 1)
		go func() {
			st, err := h.loop.Wait(ctx, []string{"job"}, control.WaitFinished)
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			waited <- st
		}()
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("wait answered before job finished")
		default:
		}
		h.advance(time.Second)
		if st := <-waited; st[0].State != Finished {
			t.Fatalf("wait answered with %+v", st)
		}
		// restart a running service: it is killed and started again.
		if err := h.loop.Signal(ctx, "nope", syscall.SIGHUP); !errors.Is(err, control.ErrNotFound) {
			t.Fatalf("Signal unknown: %v", err)
		}
		if _, err := h.loop.Restart(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		h.wantState("a", "RUNNING")
		if got := len(f.starts("a")); got != 2 {
			t.Fatalf("a started %d times after restart, want 2", got)
		}
		st, _ := h.loop.Get(ctx, "a")
		if st.Restarts != 1 {
			t.Fatalf("restarts %d, want 1", st.Restarts)
		}
		// start a finished job again.
		if _, err := h.loop.Start(ctx, "job"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		h.wantState("job", "RUNNING")
		// stop: a ends Finished (it died of its termination signal).
		if _, err := h.loop.Stop(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		h.wantState("a", "FINISHED")
		if err := h.loop.Signal(ctx, "job", syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !slices.Contains(f.events(), "signal job USR1") {
			t.Fatal("signal not sent")
		}
		// The fake job dies of USR1; with everything finished horust exits.
		h.waitExit()
		if s := h.loop.svcs[1]; s.State != FinishedFailed || s.Exit.Code != 128+int(syscall.SIGUSR1) {
			t.Fatalf("job after USR1: %s exit %+v", s.State, s.Exit)
		}
		if _, err := h.loop.List(ctx); err == nil {
			t.Fatal("List answered after the loop exited")
		}
	})
}

func TestShutdownRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		h := start(t, f, Options{}, svc("a"))
		if err := h.loop.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.waitExit()
		if s := h.loop.svcs[0]; s.State != Finished {
			t.Fatalf("state %s after a shutdown request, want Finished", s.State)
		}
	})
}

func TestLeftoversAreStoppedBeforeTheExitCounts(t *testing.T) {
	t.Run("a service that exits on its own: its child gets TERM first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = leaves(1, exitAfter(time.Second, 0))
			h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }))
			h.advance(time.Second)
			if !slices.Contains(f.events(), "signal a TERM") {
				t.Fatalf("the child left behind did not get TERM: %q", f.events())
			}
			if got := len(f.starts("a")); got != 2 {
				t.Fatalf("%d starts, want the restart right after the child died", got)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("a stopped service: its stubborn child is killed at the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = leaves(2, runUntilSignalled)
			f.behave["b"] = runUntilSignalled
			h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Termination.Wait = 2 * time.Second }),
				svc("b", func(s *config.Service) { s.ShutdownAfter = []string{"a"} }))
			h.signal(syscall.SIGTERM)
			h.advance(1999 * time.Millisecond)
			// a's main process died of TERM, but its child lives on: a is not
			// over, so b, which stops after a, is not signalled yet.
			h.wantState("a", "INKILLING")
			if slices.Contains(f.events(), "signal b TERM") {
				t.Fatal("b signalled while a's child still runs")
			}
			h.advance(time.Millisecond)
			h.advance(0)
			if !slices.Contains(f.events(), "signal a KILL") || !slices.Contains(f.events(), "signal b TERM") {
				t.Fatalf("at the wait: %q", f.events())
			}
			h.waitExit()
			if s := h.loop.svcs[0]; s.State != Finished {
				t.Fatalf("a ended %s; its main process stopped cleanly", s.State)
			}
		})
	})
}

func TestChecksStopWhenTheStopBegins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["a"] = ignoreTerm
		f.behave["a (health check)"] = runUntilSignalled // hangs until its timeout
		h := start(t, f, Options{}, svc("a", func(s *config.Service) {
			s.Healthiness.Command = "check"
			s.Healthiness.Timeout = time.Hour
		}))
		h.signal(syscall.SIGTERM)
		h.wantState("a", "INKILLING")
		if ev := f.events(); !slices.Contains(ev, "signal a (health check) KILL") {
			t.Fatalf("the running check was not killed when the stop began: %q", ev)
		}
		h.advance(5 * time.Second)
		h.waitExit()
		if n := len(f.starts("a (health check)")); n != 1 {
			t.Fatalf("%d check rounds, want none after the stop began", n)
		}
	})
}

func TestEndingGivesUp(t *testing.T) {
	t.Run("what SIGKILL cannot end holds the exit back a grace after the kill, no longer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var logs strings.Builder
			f := newFakeOS(t)
			f.behave["a"] = leaves(3, exitAfter(time.Second, 0))
			h := start(t, f, Options{Log: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))}, svc("a", func(s *config.Service) { s.Termination.Wait = 2 * time.Second }))
			h.advance(time.Second)
			if !slices.Contains(f.events(), "signal a TERM") {
				t.Fatalf("what a left did not get TERM: %q", f.events())
			}
			h.advance(2*time.Second - time.Millisecond)
			h.wantState("a", "RUNNING")
			h.advance(time.Millisecond)
			if !slices.Contains(f.events(), "signal a KILL") {
				t.Fatalf("what a left did not get KILL at the wait: %q", f.events())
			}
			h.advance(drainGrace - time.Millisecond)
			h.wantState("a", "RUNNING")
			h.advance(time.Millisecond)
			h.waitExit()
			if s := h.loop.svcs[0]; s.State != Finished {
				t.Fatalf("a ended %s, want Finished: its main process exited 0", s.State)
			}
			if !strings.Contains(logs.String(), "its output is not drained or its processes are not all gone") {
				t.Fatalf("the give-up was not said:\n%s", logs.String())
			}
		})
	})
	t.Run("a forceful shutdown kills what an ending run left at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = leaves(2, exitAfter(time.Second, 0))
			h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Termination.Wait = time.Hour }))
			h.advance(time.Second)
			h.signal(syscall.SIGTERM)
			h.signal(syscall.SIGTERM)
			h.waitExit()
			if ev := f.events(); !slices.Contains(ev, "signal a KILL") {
				t.Fatalf("no KILL for what a left: %q", ev)
			}
		})
	})
}

func TestFailedSignalsAreRetried(t *testing.T) {
	t.Run("a failed TERM and a failed SIGKILL: the stop still completes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = ignoreTerm
			f.failSignal["a"] = 2 // TERM fails, the first SIGKILL fails
			h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Termination.Wait = 2 * time.Second }))
			h.signal(syscall.SIGTERM)
			h.advance(2 * time.Second)
			h.wantState("a", "INKILLING")
			if !slices.Contains(f.events(), "signalfail a KILL") {
				t.Fatalf("no SIGKILL at the wait: %q", f.events())
			}
			h.advance(killRetry)
			if !slices.Contains(f.events(), "signal a KILL") {
				t.Fatalf("SIGKILL not retried: %q", f.events())
			}
			h.waitExit()
		})
	})
	t.Run("a forceful shutdown whose SIGKILL fails retries it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["a"] = ignoreTerm
			h := start(t, f, Options{}, svc("a", func(s *config.Service) { s.Termination.Wait = time.Hour }))
			h.signal(syscall.SIGTERM)
			f.mu.Lock()
			f.failSignal["a"] = 3
			f.mu.Unlock()
			h.signal(syscall.SIGINT)
			h.advance(2 * killRetry)
			if h.exited() {
				t.Fatalf("exited while every SIGKILL failed: %q", f.events())
			}
			h.advance(killRetry)
			h.waitExit()
			if got := h.loop.svcs[0].Exit.Signal; got != syscall.SIGKILL {
				t.Fatalf("exit signal %v, want KILL", got)
			}
		})
	})
}

func TestChecksHorustCouldNotRunAreNoResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		f := newFakeOS(t)
		f.behave["a (health check)"] = exitAfter(0, 0)
		h := start(t, f, Options{Log: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))}, svc("a", func(s *config.Service) {
			s.Healthiness.Command = "check"
			s.Healthiness.MaxFailed = 1
		}))
		h.wantState("a", "RUNNING")
		// Horust runs out of file descriptors: no check command can start.
		f.mu.Lock()
		f.failStart["a (health check)"] = fmt.Errorf("start /bin/check: %w", syscall.EMFILE)
		f.mu.Unlock()
		h.advance(10 * time.Second)
		st, _ := h.loop.Get(context.Background(), "a")
		if st.State != Running || st.HealthFailures != 0 || slices.Contains(f.events(), "signal a TERM") {
			t.Fatalf("checks horust could not run counted against the service: %+v, events %q", st, f.events())
		}
		if n := strings.Count(logs.String(), "could not be run by horust"); n != 1 {
			t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "too many open files") {
			t.Fatalf("the cause is not logged:\n%s", logs.String())
		}
		// A real failure still counts.
		f.mu.Lock()
		delete(f.failStart, "a (health check)")
		f.behave["a (health check)"] = exitAfter(0, 1)
		f.mu.Unlock()
		h.advance(time.Second)
		if !slices.Contains(f.events(), "signal a TERM") {
			t.Fatalf("a failing check no longer kills: %q", f.events())
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

// syncWriter serializes writes of log lines from the loop and the test.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func TestRequestsDuringAStopAreKept(t *testing.T) {
	for _, req := range []string{"restart", "start"} {
		t.Run(req+" while stopping runs again after the stop", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeOS(t)
				f.behave["y"] = trapTerm(time.Second, 0)
				h := start(t, f, Options{}, svc("y"))
				ctx := context.Background()
				if _, err := h.loop.Stop(ctx, "y"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				h.wantState("y", "INKILLING")
				ask := h.loop.Restart
				if req == "start" {
					ask = h.loop.Start
				}
				if _, err := ask(ctx, "y"); err != nil {
					t.Fatal(err)
				}
				h.advance(time.Second)
				h.wantState("y", "RUNNING")
				if got := len(f.starts("y")); got != 2 {
					t.Fatalf("%d starts, want 2: %q", got, f.events())
				}
				h.signal(syscall.SIGTERM)
				h.advance(time.Second)
				h.waitExit()
			})
		})
	}
	t.Run("restart during shutdown is refused with the reason", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["y"] = trapTerm(time.Second, 0)
			h := start(t, f, Options{}, svc("y"))
			h.signal(syscall.SIGTERM)
			if _, err := h.loop.Restart(context.Background(), "y"); !errors.Is(err, control.ErrShuttingDown) {
				t.Fatalf("restart during shutdown: %v, want ErrShuttingDown", err)
			}
			h.advance(time.Second)
			h.waitExit()
		})
	})
}

func TestCrashLoopBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		f := newFakeOS(t)
		runFor := time.Duration(0)
		f.behave["a"] = func(p *fakeProc) {
			f.mu.Lock()
			d := runFor
			f.mu.Unlock()
			exitAfter(d, 1)(p)
		}
		h := start(t, f, Options{Log: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))}, svc("a", func(s *config.Service) {
			s.Restart = config.Restart{Strategy: config.RestartAlways, MinUptime: config.DefaultMinUptime, MaxBackoff: config.DefaultMaxBackoff}
		}))
		h.advance(5 * time.Second)
		ms := time.Millisecond
		want := durations(0, 0, 100*ms, 300*ms, 700*ms, 1500*ms, 3100*ms)
		if got := f.starts("a"); !slices.Equal(got, want) {
			t.Fatalf("starts at %v, want %v", got, want)
		}
		st, _ := h.loop.Get(context.Background(), "a")
		if st.State != Starting || st.QuickExits != 7 || !strings.Contains(st.Reason, "crash loop: 7 quick exits in a row, next start in 1.3s") {
			t.Fatalf("status while waiting: %+v", st)
		}
		if want := f.t0.Add(6300 * ms); !st.NextStart.Equal(want) {
			t.Fatalf("next start %v, want %v", st.NextStart, want)
		}
		if n := strings.Count(logs.String(), "crash loop"); n != 1 {
			t.Fatalf("%d crash-loop log lines, want one per loop:\n%s", n, logs.String())
		}
		if strings.Contains(logs.String(), "level=WARN msg=\"service failed\"") && strings.Count(logs.String(), "level=WARN msg=\"service failed\"") > 1 {
			t.Fatalf("a warning per run of the loop:\n%s", logs.String())
		}
		// The next run lasts min-uptime: the loop is over, and the run
		// after it starts at once.
		f.mu.Lock()
		runFor = 10 * time.Second
		f.mu.Unlock()
		h.advance(1300*ms + 10*time.Second)
		n := len(f.starts("a"))
		if got := f.starts("a")[n-1]; got != 16300*ms {
			t.Fatalf("starts %v: want the restart right after the 10 s run, at 16.3s", f.starts("a"))
		}
		if st, _ := h.loop.Get(context.Background(), "a"); st.QuickExits != 0 || st.State != Running {
			t.Fatalf("after a long run: %+v", st)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestJobs(t *testing.T) {
	job := func(s *config.Service) { s.Oneshot = true }
	t.Run("a job gates its dependent until it succeeds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["migrate"] = exitAfter(2*time.Second, 0)
			h := start(t, f, Options{}, svc("migrate", job), svc("app", func(s *config.Service) { s.StartAfter = []string{"migrate"} }))
			h.advance(1999 * time.Millisecond)
			h.wantState("migrate", "RUNNING")
			h.wantState("app", "INITIAL")
			h.advance(time.Millisecond)
			h.wantState("migrate", "FINISHED")
			if got := f.starts("app"); !slices.Equal(got, durations(2*time.Second)) {
				t.Fatalf("app started at %v, want when the job finished", got)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
	t.Run("a failing job with attempts 2 runs 3 times and fails its dependent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["migrate"] = exitAfter(time.Second, 3)
			h := start(t, f, Options{}, svc("migrate", job, func(s *config.Service) { s.Restart.Attempts = 2 }),
				svc("app", func(s *config.Service) { s.StartAfter = []string{"migrate"} }))
			h.advance(10 * time.Second)
			h.waitExit()
			if got := len(f.starts("migrate")); got != 3 {
				t.Fatalf("the job ran %d times, want 3", got)
			}
			if m, a := h.loop.svcs[0], h.loop.svcs[1]; m.State != FinishedFailed || a.State != FinishedFailed || len(f.starts("app")) != 0 {
				t.Fatalf("job %s, app %s (%d starts): want both FinishedFailed, app never started", m.State, a.State, len(f.starts("app")))
			}
			if r := h.loop.svcs[1].Reason; r != "dependency 'migrate' failed" {
				t.Fatalf("app's reason %q", r)
			}
		})
	})
	t.Run("wait --for running waits for the job to finish", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeOS(t)
			f.behave["migrate"] = exitAfter(time.Second, 0)
			h := start(t, f, Options{}, svc("migrate", job), svc("keep"))
			done := make(chan error, 1)
			go func() {
				_, err := h.loop.Wait(context.Background(), []string{"migrate"}, control.WaitRunning)
				done <- err
			}()
			synctest.Wait()
			select {
			case <-done:
				t.Fatal("wait answered while the job runs")
			default:
			}
			h.advance(time.Second)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			h.signal(syscall.SIGTERM)
			h.waitExit()
		})
	})
}

func TestFailedStartWithoutStartDelayIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.failStart["a"] = syscall.EAGAIN
		h := start(t, f, Options{}, svc("a", func(s *config.Service) {
			s.Restart = config.Restart{Strategy: config.RestartAlways, Backoff: 200 * time.Millisecond, Attempts: 5}
		}))
		h.advance(30 * time.Second)
		n := 0
		for _, e := range f.events() {
			if e == "startfail a" {
				n++
			}
		}
		if n != 6 {
			t.Fatalf("%d start attempts, want 6 (1 + attempts 5): %q", n, f.events())
		}
		h.waitExit()
	})
}

// TestHTTPSChecks: an https:// http-endpoint is a child check run by
// horust-probe: its result is its exit and its stderr line, it is killed
// after its timeout, and its failures read as http checks' do.
func TestHTTPSChecks(t *testing.T) {
	const (
		url   = "https://127.0.0.1:8443/health"
		check = "a (https check)"
	)
	for _, tc := range []struct {
		name       string
		behave     func(*fakeProc)
		stderr     string
		holdStderr bool
		startErr   error
		wantState  string
		wantFails  bool   // the rounds count as failures
		wantLog    string // in the log; "" for nothing to check
		wantKillAt time.Duration
	}{
		{name: "exit 0 is healthy", behave: exitAfter(10*time.Millisecond, 0), wantState: "RUNNING"},
		{name: "the stderr line is the failure", behave: exitAfter(10*time.Millisecond, 1), stderr: "status 503",
			wantState: "STARTED", wantFails: true, wantLog: "http-endpoint " + url + ": status 503"},
		{name: "exit 3 is a check horust could not run", behave: exitAfter(0, probeCouldNotRun), stderr: "horust could not run the check: socket: too many open files",
			wantState: "STARTED", wantLog: "could not be run by horust"},
		{name: "no line: the exit code says it", behave: exitAfter(0, 2), wantState: "STARTED", wantFails: true,
			wantLog: "http-endpoint " + url + ": horust-probe exited with code 2"},
		{name: "a stderr held open after the exit: the exit says it a second later", behave: exitAfter(0, 1), holdStderr: true,
			wantState: "STARTED", wantFails: true, wantLog: "horust-probe exited with code 1"},
		{name: "a hanging probe is killed half a second after the timeout", behave: ignoreTerm,
			wantState: "STARTED", wantFails: true, wantLog: "http-endpoint " + url + ": timed out after 1s", wantKillAt: 1500 * time.Millisecond},
		{name: "a probe that cannot be started fails the checks", startErr: errors.New("horust-probe is neither beside horust (in /x) nor in PATH (/bin): install it beside horust"),
			wantState: "STARTED", wantFails: true, wantLog: "http-endpoint " + url + ": horust-probe is neither beside horust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs strings.Builder
				f := newFakeOS(t)
				f.behave[check] = tc.behave
				f.stderr[check] = tc.stderr
				f.holdStderr[check] = tc.holdStderr
				if tc.startErr != nil {
					f.failStart[check] = tc.startErr
				}
				h := start(t, f, Options{Log: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))}, svc("a", func(s *config.Service) {
					s.Healthiness.HTTPEndpoint = url
				}))
				if tc.wantKillAt != 0 {
					h.advance(tc.wantKillAt - time.Millisecond)
					if slices.Contains(f.events(), "signal "+check+" KILL") {
						t.Fatalf("killed before %v: %q", tc.wantKillAt, f.events())
					}
					h.advance(time.Millisecond)
					if !slices.Contains(f.events(), "signal "+check+" KILL") {
						t.Fatalf("not killed at %v: %q", tc.wantKillAt, f.events())
					}
				}
				h.advance(3500 * time.Millisecond)
				h.wantState("a", tc.wantState)
				st, _ := h.loop.Get(context.Background(), "a")
				if got := st.HealthFailures > 0; got != tc.wantFails {
					t.Errorf("%d failed rounds; want failures: %v", st.HealthFailures, tc.wantFails)
				}
				if !strings.Contains(logs.String(), tc.wantLog) {
					t.Errorf("the log does not say %q:\n%s", tc.wantLog, logs.String())
				}
				if tc.startErr != nil {
					if n := strings.Count(logs.String(), "horust-probe, which checks https endpoints, cannot be started"); n != 1 {
						t.Errorf("the start error was logged %d times, want once per run:\n%s", n, logs.String())
					}
				} else {
					f.mu.Lock()
					started := f.started[check]
					f.mu.Unlock()
					want := []string{probeProgram, "--timeout", "1s", url}
					if !slices.Equal(started.argv, want) || !started.o.Check || !started.o.Own || started.o.CheckStderr == nil {
						t.Errorf("started %q with %+v; want %q as a check of horust's own program, its stderr read", started.argv, started.o, want)
					}
				}
				h.signal(syscall.SIGTERM)
				h.waitExit()
			})
		})
	}
}

// TestHTTPSAndCommandChecksTogether: a round with both child checks waits
// for both, and either one's failure fails it.
func TestHTTPSAndCommandChecksTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["a (https check)"] = exitAfter(200*time.Millisecond, 0)
		f.behave["a (health check)"] = exitAfter(400*time.Millisecond, 1)
		h := start(t, f, Options{}, svc("a", func(s *config.Service) {
			s.Healthiness.HTTPEndpoint = "https://127.0.0.1/"
			s.Healthiness.Command = "check"
		}))
		h.advance(300 * time.Millisecond)
		if st, _ := h.loop.Get(context.Background(), "a"); st.Health != "unknown" {
			t.Fatalf("health %q while the command check runs, want unknown", st.Health)
		}
		h.advance(200 * time.Millisecond)
		h.wantState("a", "STARTED")
		if st, _ := h.loop.Get(context.Background(), "a"); st.HealthFailures != 1 {
			t.Fatalf("%d failed rounds, want 1", st.HealthFailures)
		}
		f.mu.Lock()
		f.behave["a (health check)"] = exitAfter(0, 0)
		f.mu.Unlock()
		h.advance(time.Second)
		h.wantState("a", "RUNNING")
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

// A wait for the end of services that reaches the loop only after it
// returned (sent as the last service ended) is answered with how they
// ended, not with "horust is exiting"; a wait for them to run is not.
func TestWaitAfterTheLoopReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		f.behave["job"] = exitAfter(100*time.Millisecond, 0)
		h := start(t, f, Options{}, svc("job", func(s *config.Service) { s.Restart.Strategy = config.RestartNever }))
		h.advance(200 * time.Millisecond)
		h.waitExit()
		st, err := h.loop.Wait(context.Background(), []string{"job"}, control.WaitFinished)
		if err != nil || len(st) != 1 || st[0].State != Finished {
			t.Fatalf("wait for the end after the loop returned: %+v, %v", st, err)
		}
		// The control server cancels its requests once the loop returned:
		// the end is still the answer, not the cancellation.
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		for range 20 {
			st, err := h.loop.Wait(cancelled, []string{"job"}, control.WaitFinished)
			if err != nil || len(st) != 1 || st[0].State != Finished {
				t.Fatalf("wait for the end, cancelled as horust exits: %+v, %v", st, err)
			}
		}
		if _, err := h.loop.Wait(context.Background(), []string{"job"}, control.WaitRunning); !errors.Is(err, control.ErrExiting) {
			t.Fatalf("wait to run after the loop returned: %v, want ErrExiting", err)
		}
		if _, err := h.loop.Wait(context.Background(), []string{"nope"}, control.WaitFinished); !errors.Is(err, control.ErrExiting) {
			t.Fatalf("wait for an unknown service after the loop returned: %v, want ErrExiting", err)
		}
	})
}
