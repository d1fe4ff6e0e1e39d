//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
)

func init() {
	// restart-stamp FILE CODE [DELAY]: append "start <unix ns>", wait DELAY,
	// append "end <unix ns>", exit CODE. The stamps give the gap between the
	// end of one run and the start of the next, whatever the run itself
	// costs.
	registerRole("restart-stamp", func(args []string) int {
		if len(args) < 2 {
			return 100
		}
		appendLine(args[0], fmt.Sprintf("start %d", time.Now().UnixNano()))
		if len(args) > 2 {
			d, _ := time.ParseDuration(args[2])
			time.Sleep(d)
		}
		appendLine(args[0], fmt.Sprintf("end %d", time.Now().UnixNano()))
		code, _ := strconv.Atoi(args[1])
		return code
	})
}

// restartNoRaceExitSleep, in [environment], stops the race detector's one
// second sleep when a role exits with code 0 (atexit_sleep_ms), which would
// otherwise dominate the time between runs.
const restartNoRaceExitSleep = `additional = { GORACE = "atexit_sleep_ms=0" }`

// restartKeeper is a service that keeps horust running so that the final
// state of the others can be read through the control API.
func restartKeeper() string { return svc(role("sleep")) }

func TestRestartStrategies(t *testing.T) {
	cases := []struct {
		name     string
		strategy string
		code     string
		attempts int
		restarts bool   // it runs again and again
		final    string // otherwise, its final state after one run
	}{
		{name: "always after exit 0", strategy: "always", code: "0", restarts: true},
		{name: "always after exit 1", strategy: "always", code: "1", restarts: true},
		{name: "on-failure after exit 0", strategy: "on-failure", code: "0", final: "FINISHED"},
		{name: "on-failure after exit 1", strategy: "on-failure", code: "1", restarts: true},
		{name: "never after exit 0", strategy: "never", code: "0", final: "FINISHED"},
		{name: "never after exit 1", strategy: "never", code: "1", final: "FINISHEDFAILED"},
		// Without checks the run reached Running: its failure is not a
		// failed start, so attempts do not apply (docs/design.md, Lifecycle).
		{name: "never after exit 1 once running ignores attempts", strategy: "never", code: "1", attempts: 3, final: "FINISHEDFAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runs := filepath.Join(t.TempDir(), "runs")
			h := startHorust(t, runOpts{files: map[string]string{
				"restart-subject.toml": svc(role("append", runs, "run", tc.code),
					"[restart]", fmt.Sprintf("strategy = %q", tc.strategy), `backoff = "0s"`, fmt.Sprintf("attempts = %d", tc.attempts),
					"[environment]", restartNoRaceExitSleep),
				"restart-keeper.toml": restartKeeper(),
			}})
			if tc.restarts {
				eventually(t, 20*time.Second, "three runs", func() bool { return lines(runs) >= 3 })
				st := h.status("restart-subject.toml")
				if st.Restarts < 2 {
					t.Fatalf("%d runs but restarts = %d", lines(runs), st.Restarts)
				}
			} else {
				h.waitState("restart-subject.toml", 20*time.Second, "FINISHED", "FINISHEDFAILED")
				st := h.status("restart-subject.toml")
				if st.State.API() != tc.final {
					t.Fatalf("state %s, want %s (%s)", st.State, tc.final, jsonOf(st))
				}
				if n := lines(runs); n != 1 || st.Restarts != 0 {
					t.Fatalf("%d runs and restarts = %d, want one run", n, st.Restarts)
				}
				if st.LastExitCode == nil || strconv.Itoa(*st.LastExitCode) != tc.code {
					t.Fatalf("last exit code %v, want %s", jsonOf(st.LastExitCode), tc.code)
				}
			}
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0 (no --unsuccessful-exit-finished-failed)", code)
			}
		})
	}
}

// restartLogTimes returns the times of horust's log lines (text format)
// with message msg about service.
func restartLogTimes(t *testing.T, log, msg, service string) []time.Time {
	t.Helper()
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, fmt.Sprintf("msg=%q", msg)) || !strings.Contains(line, " service="+service) {
			continue
		}
		f, ok := strings.CutPrefix(strings.Fields(line)[0], "time=")
		if !ok {
			t.Fatalf("log line without a time: %s", line)
		}
		at, err := time.Parse(time.RFC3339Nano, f)
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, at)
	}
	return out
}

// restartStamps reads the start and end stamps of restart-stamp runs.
func restartStamps(t *testing.T, file string) (starts, ends []time.Time) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(readFile(file)), "\n") {
		kind, ns, ok := strings.Cut(l, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad stamp line %q in %s", l, file)
		}
		switch kind {
		case "start":
			starts = append(starts, time.Unix(0, n))
		case "end":
			ends = append(ends, time.Unix(0, n))
		}
	}
	return starts, ends
}

// restartCheckGaps checks that gap k (k from 1) is backoff×k (start-delay
// is 0): never shorter, and not much longer, so that the gaps grow by
// backoff from one retry to the next.
func restartCheckGaps(t *testing.T, gaps []time.Duration, backoff, early, late time.Duration) {
	t.Helper()
	t.Logf("gaps between runs: %v", gaps)
	for i, g := range gaps {
		want := backoff * time.Duration(i+1)
		if g < want-early || g > want+late {
			t.Fatalf("gaps %v: gap %d is %v, want %v (backoff × %d)", gaps, i+1, g, want, i+1)
		}
	}
}

func TestRestartAttemptsAndBackoff(t *testing.T) {
	const (
		attempts = 3
		backoff  = 400 * time.Millisecond
		// The loop's timer never fires early; log times are truncated to
		// the millisecond and taken just after the start was tried.
		early = 15 * time.Millisecond
		// A loaded machine may be late; still well under one backoff.
		late = 300 * time.Millisecond
	)
	// The crash-loop guard is off: these tests measure backoff alone.
	restart := []string{"[restart]", `strategy = "%s"`, fmt.Sprintf("backoff = %q", backoff.String()), fmt.Sprintf("attempts = %d", attempts), `min-uptime = "0s"`}
	restartWith := func(strategy string) []string {
		r := append([]string(nil), restart...)
		r[1] = fmt.Sprintf(r[1], strategy)
		return r
	}

	t.Run("program that does not exist", func(t *testing.T) {
		for _, strategy := range []string{"never", "always"} {
			t.Run(strategy, func(t *testing.T) {
				h := startHorust(t, runOpts{env: []string{"HORUST_LOG=error"}, files: map[string]string{
					"restart-missing.toml": svc("/nonexistent/horust-e2e-program", restartWith(strategy)...),
					"restart-keeper.toml":  restartKeeper(),
				}})
				h.waitState("restart-missing.toml", 20*time.Second, "FINISHEDFAILED")
				st := h.status("restart-missing.toml")
				if !strings.Contains(st.Reason, "/nonexistent/horust-e2e-program") || !strings.Contains(st.Reason, fmt.Sprintf("gave up after %d failed starts", attempts+1)) {
					t.Fatalf("reason %q does not name the program and the failed starts", st.Reason)
				}
				if st.Restarts != attempts {
					t.Fatalf("restarts = %d, want %d", st.Restarts, attempts)
				}
				if h.state("restart-keeper.toml") != "RUNNING" {
					t.Fatal("the other service is not running")
				}
				tries := restartLogTimes(t, h.stderr.String(), "failed spawning the process", "restart-missing.toml")
				if len(tries) != 1+attempts {
					t.Fatalf("%d start attempts logged, want 1 + attempts = %d:\n%s", len(tries), 1+attempts, h.stderr)
				}
				var gaps []time.Duration
				for i := 1; i < len(tries); i++ {
					gaps = append(gaps, tries[i].Sub(tries[i-1]))
				}
				restartCheckGaps(t, gaps, backoff, early, late)
				h.signal(syscall.SIGTERM)
				if code := h.wait(20 * time.Second); code != 0 {
					t.Fatalf("horust exit code %d, want 0", code)
				}
			})
		}
	})

	t.Run("health check that never passes", func(t *testing.T) {
		for _, strategy := range []string{"never", "always"} {
			t.Run(strategy, func(t *testing.T) {
				tmp := t.TempDir()
				stamps := filepath.Join(tmp, "stamps")
				h := startHorust(t, runOpts{files: map[string]string{
					"restart-unhealthy.toml": svc(role("restart-stamp", stamps, "1", "100ms"),
						append(restartWith(strategy), "[healthiness]", fmt.Sprintf("file-path = %q", filepath.Join(tmp, "never-there")))...),
					"restart-keeper.toml": restartKeeper(),
				}})
				h.waitState("restart-unhealthy.toml", 20*time.Second, "FINISHEDFAILED")
				st := h.status("restart-unhealthy.toml")
				if !strings.Contains(st.Reason, fmt.Sprintf("gave up after %d failed starts", attempts+1)) {
					t.Fatalf("reason %q does not say it gave up", st.Reason)
				}
				starts, ends := restartStamps(t, stamps)
				if len(starts) != 1+attempts || len(ends) != 1+attempts {
					t.Fatalf("%d runs (%d ended), want 1 + attempts = %d", len(starts), len(ends), 1+attempts)
				}
				var gaps []time.Duration
				for i := 1; i < len(starts); i++ {
					gaps = append(gaps, starts[i].Sub(ends[i-1]))
				}
				// From the run's last stamp to the next run's first, the
				// exit, the reap and a fork/exec of the test binary
				// come on top of the backoff.
				restartCheckGaps(t, gaps, backoff, 0, late+200*time.Millisecond)
				h.signal(syscall.SIGTERM)
				if code := h.wait(20 * time.Second); code != 0 {
					t.Fatalf("horust exit code %d, want 0", code)
				}
			})
		}
	})

	t.Run("success before healthy is not a failed start", func(t *testing.T) {
		tmp := t.TempDir()
		stamps := filepath.Join(tmp, "stamps")
		h := startHorust(t, runOpts{files: map[string]string{
			"restart-quick.toml": svc(role("restart-stamp", stamps, "0"),
				append(restartWith("never"), "[healthiness]", fmt.Sprintf("file-path = %q", filepath.Join(tmp, "never-there")))...),
			"restart-keeper.toml": restartKeeper(),
		}})
		h.waitState("restart-quick.toml", 20*time.Second, "FINISHED", "FINISHEDFAILED")
		if st := h.status("restart-quick.toml"); st.State != status.Finished || st.Restarts != 0 {
			t.Fatalf("status %s, want FINISHED after one run", jsonOf(st))
		}
		if starts, _ := restartStamps(t, stamps); len(starts) != 1 {
			t.Fatalf("%d runs, want 1", len(starts))
		}
	})
}

func TestRestartWithoutBackoffIsFast(t *testing.T) {
	const service = "restart-fast.toml"
	runs := filepath.Join(t.TempDir(), "runs")
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=info"}, files: map[string]string{
		service: svc(role("append", runs, "run", "0"), "[restart]", `strategy = "always"`, `backoff = "0s"`, `min-uptime = "0s"`,
			"[environment]", restartNoRaceExitSleep),
	}})
	eventually(t, 60*time.Second, "51 runs", func() bool { return lines(runs) >= 51 })
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d, want 0", code)
	}
	// The original polls every 300 ms, so each restart follows the exit by
	// up to 300 ms; an event-driven loop starts again at once. The median
	// of 50 gaps from an exit to the next start: a loaded machine delays
	// some of them, not most.
	log := h.stderr.String()
	exits := restartLogTimes(t, log, "service exited", service)
	starts := restartLogTimes(t, log, "service started", service)
	var gaps []time.Duration
	for i := 0; i < len(exits) && i+1 < len(starts); i++ {
		gaps = append(gaps, starts[i+1].Sub(exits[i]))
	}
	if len(gaps) < 50 {
		t.Fatalf("%d restarts logged, want 50:\n%s", len(gaps), log)
	}
	slices.Sort(gaps)
	median := gaps[len(gaps)/2]
	t.Logf("exit to next start: median %v, longest %v", median, gaps[len(gaps)-1])
	if median > 100*time.Millisecond {
		t.Fatalf("median time from an exit to the next start: %v (gaps %v), want well under 300 ms", median, gaps)
	}
}

func TestRestartGiveUpExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"0 without the setting", nil, 0},
		{"101 with --unsuccessful-exit-finished-failed", []string{"--unsuccessful-exit-finished-failed"}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHorust(t, runOpts{args: tc.args, files: map[string]string{
				"restart-gives-up.toml": svc("/nonexistent/horust-e2e-program", "[restart]", `strategy = "always"`, `attempts = 1`, `backoff = "10ms"`),
			}})
			if code := h.wait(20 * time.Second); code != tc.want {
				t.Fatalf("horust exit code %d, want %d", code, tc.want)
			}
		})
	}
}
