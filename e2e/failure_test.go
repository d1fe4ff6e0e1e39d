//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// failure-ready FILE NAME: append NAME to FILE, then send READY=1 (the
	// service needs notify = true) and run until signalled. With notify, a
	// service is Running only once its line is written, so the lines of a
	// start-after chain come in the chain's order.
	registerRole("failure-ready", func(args []string) int {
		if len(args) < 2 {
			return 100
		}
		appendLine(args[0], args[1])
		if err := sdNotify("READY=1"); err != nil {
			fmt.Fprintln(os.Stderr, "notify:", err)
			return 4
		}
		select {}
	})
}

// failureEnv is the [environment] table of the services here: a role that
// exits 0 does not sleep a second in the race detector.
var failureEnv = []string{"[environment]", restartNoRaceExitSleep}

func failureSvc(command string, more ...string) string {
	return svc(command, append(more, failureEnv...)...)
}

func TestFailureSuccessfulExitCode(t *testing.T) {
	cases := []struct {
		name     string
		code     string
		codes    string // successful-exit-code
		strategy string
		final    string // final state after one run; "" when it restarts
	}{
		{name: "listed non-zero code is success", code: "3", codes: "[0, 3]", strategy: "on-failure", final: "FINISHED"},
		{name: "zero not listed is a failure", code: "0", codes: "[3]", strategy: "never", final: "FINISHEDFAILED"},
		{name: "zero not listed restarts on-failure", code: "0", codes: "[3]", strategy: "on-failure"},
		{name: "unlisted code is a failure", code: "4", codes: "[0, 3]", strategy: "never", final: "FINISHEDFAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runs := filepath.Join(t.TempDir(), "runs")
			h := startHorust(t, runOpts{files: map[string]string{
				"failure-code.toml": failureSvc(role("append", runs, "run", tc.code),
					"[restart]", fmt.Sprintf("strategy = %q", tc.strategy),
					"[failure]", "successful-exit-code = "+tc.codes),
				"failure-keeper.toml": svc(role("sleep")),
			}})
			if tc.final == "" {
				eventually(t, 20*time.Second, "three runs", func() bool { return lines(runs) >= 3 })
			} else {
				h.waitState("failure-code.toml", 20*time.Second, "FINISHED", "FINISHEDFAILED")
				if st := h.status("failure-code.toml"); st.State.API() != tc.final || lines(runs) != 1 {
					t.Fatalf("status %s after %d runs, want %s after one", jsonOf(st), lines(runs), tc.final)
				}
			}
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0", code)
			}
		})
	}
}

// failureSignalled reports whether a trap service's file says it got its
// signal.
func failureSignalled(file string) bool { return strings.Contains(readFile(file), "got TERM") }

func TestFailureStrategies(t *testing.T) {
	cases := []struct {
		strategy string
		// What happens when failing.toml fails: does its dependent get
		// TERM, does the unrelated service get it, does horust exit?
		dependentKilled, otherKilled, exits bool
	}{
		{strategy: "ignore"},
		{strategy: "kill-dependents", dependentKilled: true},
		{strategy: "shutdown", dependentKilled: true, otherKilled: true, exits: true},
	}
	for _, tc := range cases {
		t.Run(tc.strategy, func(t *testing.T) {
			tmp := t.TempDir()
			file := func(n string) string { return filepath.Join(tmp, n) }
			h := startHorust(t, runOpts{files: map[string]string{
				// USR1 makes it exit 1 while it is Running.
				"failing.toml": failureSvc(role("trap", "USR1", "1", "0s", file("failing")),
					"[failure]", fmt.Sprintf("strategy = %q", tc.strategy)),
				"dependent.toml": failureSvc(role("trap", "TERM", "0", "0s", file("dependent")), `start-after = ["failing.toml"]`),
				// die-if-failed kills it whatever the failure strategy.
				"watcher.toml": failureSvc(role("trap", "TERM", "0", "0s", file("watcher")),
					"[termination]", `die-if-failed = ["failing.toml"]`),
				"other.toml": failureSvc(role("trap", "TERM", "0", "0s", file("other"))),
			}})
			for _, n := range []string{"failing", "dependent", "watcher", "other"} {
				h.waitState(n+".toml", 20*time.Second, "RUNNING")
				readPid(t, file(n)) // its trap is installed
			}
			if err := syscall.Kill(readPid(t, file("failing")), syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			if tc.exits {
				if code := h.wait(20 * time.Second); code != 0 {
					t.Fatalf("horust exit code %d, want 0 (no --unsuccessful-exit-finished-failed)", code)
				}
			} else {
				h.waitState("failing.toml", 20*time.Second, "FINISHEDFAILED")
				// The failure strategy and die-if-failed act in the step
				// that handles the exit: a service that is to be killed
				// has been signalled by the time the failure shows.
				eventually(t, 20*time.Second, "the watcher to get TERM (die-if-failed)", func() bool { return failureSignalled(file("watcher")) })
				h.waitState("watcher.toml", 20*time.Second, "FINISHED")
				if tc.dependentKilled {
					eventually(t, 20*time.Second, "the dependent to get TERM", func() bool { return failureSignalled(file("dependent")) })
					h.waitState("dependent.toml", 20*time.Second, "FINISHED")
					if st := h.status("dependent.toml"); !strings.Contains(st.Reason, "failing.toml") {
						t.Errorf("the dependent's reason %q does not name failing.toml", st.Reason)
					}
				} else if s := h.state("dependent.toml"); s != "RUNNING" {
					t.Fatalf("the dependent is %s, want RUNNING", s)
				}
				if s := h.state("other.toml"); s != "RUNNING" {
					t.Fatalf("the unrelated service is %s, want RUNNING", s)
				}
			}
			if got := failureSignalled(file("watcher")); !got {
				t.Error("die-if-failed: the watcher did not get TERM")
			}
			if got := failureSignalled(file("dependent")); got != tc.dependentKilled {
				t.Errorf("the dependent got TERM: %v, want %v", got, tc.dependentKilled)
			}
			if got := failureSignalled(file("other")); got != tc.otherKilled {
				t.Errorf("the unrelated service got TERM: %v, want %v", got, tc.otherKilled)
			}
			if !tc.exits {
				h.signal(syscall.SIGTERM)
				if code := h.wait(20 * time.Second); code != 0 {
					t.Fatalf("horust exit code %d, want 0", code)
				}
			}
		})
	}
}

func TestFailureStartAfterChain(t *testing.T) {
	order := filepath.Join(t.TempDir(), "order")
	link := func(name string, after ...string) string {
		more := []string{"[healthiness]", "notify = true"}
		if len(after) > 0 {
			more = append([]string{fmt.Sprintf("start-after = [%q]", after[0])}, more...)
		}
		return failureSvc(role("failure-ready", order, name), more...)
	}
	// File names sort against the chain, so that the order cannot come
	// from the directory listing.
	h := startHorust(t, runOpts{files: map[string]string{
		"chain-c.toml": link("c"),
		"chain-b.toml": link("b", "chain-c.toml"),
		"chain-a.toml": link("a", "chain-b.toml"),
	}})
	h.waitState("chain-a.toml", 20*time.Second, "RUNNING")
	if got := readFile(order); got != "c\nb\na\n" {
		t.Fatalf("start order %q, want c, b, a", got)
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d, want 0", code)
	}
}

func TestFailureFinishedFailedDependency(t *testing.T) {
	chain := func(tmp string) map[string]string {
		return map[string]string{
			"dep-root.toml":   svc("/nonexistent/horust-e2e-program"),
			"dep-middle.toml": failureSvc(role("append-sleep", filepath.Join(tmp, "middle"), "ran"), `start-after = ["dep-root.toml"]`),
			"dep-leaf.toml":   failureSvc(role("append-sleep", filepath.Join(tmp, "leaf"), "ran"), `start-after = ["dep-middle.toml"]`),
		}
	}
	reasons := map[string]string{
		"dep-middle.toml": "dependency 'dep-root.toml' failed",
		"dep-leaf.toml":   "dependency 'dep-middle.toml' failed",
	}

	t.Run("dependents end FINISHEDFAILED with the reason", func(t *testing.T) {
		tmp := t.TempDir()
		files := chain(tmp)
		files["dep-keeper.toml"] = svc(role("sleep"))
		h := startHorust(t, runOpts{files: files})
		for name, reason := range reasons {
			h.waitState(name, 20*time.Second, "FINISHEDFAILED")
			if st := h.status(name); st.Reason != reason {
				t.Errorf("%s: reason %q, want %q", name, st.Reason, reason)
			}
		}
		for _, n := range []string{"middle", "leaf"} {
			if _, err := os.Stat(filepath.Join(tmp, n)); err == nil {
				t.Errorf("%s ran although its dependency failed", n)
			}
		}
		if s := h.state("dep-keeper.toml"); s != "RUNNING" {
			t.Fatalf("the unrelated service is %s", s)
		}
		h.signal(syscall.SIGTERM)
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("horust exit code %d, want 0", code)
		}
	})

	t.Run("horust exits on its own", func(t *testing.T) {
		tmp := t.TempDir()
		h := startHorust(t, runOpts{files: chain(tmp), env: []string{"HORUST_LOG=error"}})
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("horust exit code %d, want 0", code)
		}
		log := h.stderr.String()
		for name, reason := range reasons {
			if !strings.Contains(log, "service="+name+" reason=\""+reason+"\"") {
				t.Errorf("no log line says %s failed because %q:\n%s", name, reason, log)
			}
		}
	})
}

func TestFailureExitCode(t *testing.T) {
	failing := map[string]string{"exit-code.toml": svc(role("exit", "1"))}
	succeeding := map[string]string{"exit-code.toml": failureSvc(role("exit", "0"))}
	cases := []struct {
		name   string
		files  map[string]string
		flag   bool
		global string // horust.toml content ("" = no file)
		want   int
	}{
		{name: "finished failed without the setting", files: failing, want: 0},
		{name: "finished failed with the flag", files: failing, flag: true, want: 101},
		{name: "finished failed with horust.toml", files: failing, global: "unsuccessful-exit-finished-failed = true\n", want: 101},
		{name: "finished failed with horust.toml set to false", files: failing, global: "unsuccessful-exit-finished-failed = false\n", want: 0},
		{name: "finished with the flag", files: succeeding, flag: true, want: 0},
		{name: "finished with horust.toml", files: succeeding, global: "unsuccessful-exit-finished-failed = true\n", want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.flag {
				args = append(args, "--unsuccessful-exit-finished-failed")
			}
			// Never the machine's /etc/horust/horust.toml.
			global := filepath.Join(t.TempDir(), "horust.toml")
			if tc.global != "" {
				if err := os.WriteFile(global, []byte(tc.global), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, "--config-path", global)
			h := startHorust(t, runOpts{files: tc.files, args: args})
			if code := h.wait(20 * time.Second); code != tc.want {
				t.Fatalf("horust exit code %d, want %d\nstderr: %s", code, tc.want, h.stderr)
			}
		})
	}
}
