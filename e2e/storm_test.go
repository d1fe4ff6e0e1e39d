//go:build linux

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stormFiles are n services that exit at once and are restarted at once,
// forever (the crash-loop guard is off): a storm of SIGCHLD for as long as
// horust runs.
func stormFiles(n int) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("storm-%03d.toml", i)] = svc("/bin/sh -c 'exit 1'", `
[restart]
strategy = "always"
backoff = "0s"
min-uptime = "0s"
`)
	}
	return files
}

// waitStorm waits until the first storm service has been restarted at
// least restarts times: the storm is under way.
func waitStorm(t *testing.T, h *horust, restarts int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("storm-000.toml to restart %d times", restarts), func() bool {
		st, err := h.client().Get(context.Background(), "storm-000.toml")
		return err == nil && st.Restarts >= restarts
	})
}

// A SIGTERM sent while services restart as fast as they can stops horust,
// and a forwarded USR1 reaches a running service: SIGCHLD floods never
// crowd out the other signals.
func TestStopDuringRestartStorm(t *testing.T) {
	for _, n := range []int{10, 100} {
		for try := range 3 {
			t.Run(fmt.Sprintf("%d services, try %d", n, try+1), func(t *testing.T) {
				tmp := t.TempDir()
				marks := filepath.Join(tmp, "usr1")
				files := stormFiles(n)
				files["usr1.toml"] = svc(role("trap", "USR1", "0", "0", marks))
				h := startHorust(t, runOpts{files: files, env: []string{"HORUST_LOG=warn"}})
				eventually(t, 20*time.Second, "the USR1 service to be ready", func() bool { return readFile(marks) != "" })
				waitStorm(t, h, 20)

				h.signal(syscall.SIGUSR1)
				eventually(t, 10*time.Second, "the USR1 service to get the forwarded USR1", func() bool {
					return strings.Contains(readFile(marks), "got USR1")
				})

				t0 := time.Now()
				h.signal(syscall.SIGTERM)
				defer func() { t.Logf("stopped in %v", time.Since(t0)) }()
				// Every service ends at once on TERM; the default wait
				// (5 s) bounds the stop.
				if code := h.wait(10 * time.Second); code != 0 {
					t.Fatalf("exit code %d, want 0", code)
				}
				if !strings.Contains(h.stderr.String(), "shutting down") {
					t.Fatalf("no shutdown line at HORUST_LOG=warn:\n%s", h.stderr)
				}
			})
		}
	}
}

// The second SIGTERM, during the same storm, kills a service that ignores
// the first one, long before its wait runs out.
func TestSecondStopDuringRestartStorm(t *testing.T) {
	for _, n := range []int{10, 100} {
		t.Run(fmt.Sprintf("%d services", n), func(t *testing.T) {
			tmp := t.TempDir()
			pidFile := filepath.Join(tmp, "stubborn")
			files := stormFiles(n)
			files["stubborn.toml"] = svc(role("ignore-term", pidFile), `
[termination]
wait = "60s"
`)
			h := startHorust(t, runOpts{files: files, env: []string{"HORUST_LOG=warn"}})
			eventually(t, 20*time.Second, "the stubborn service to be ready", func() bool { return readFile(pidFile) != "" })
			waitStorm(t, h, 20)

			h.signal(syscall.SIGTERM)
			h.waitState("stubborn.toml", 10*time.Second, "INKILLING")
			h.signal(syscall.SIGTERM)
			h.wait(15 * time.Second)
			if !strings.Contains(h.stderr.String(), "second signal received") {
				t.Fatalf("no forceful-shutdown line at HORUST_LOG=warn:\n%s", h.stderr)
			}
		})
	}
}
