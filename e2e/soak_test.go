package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// soakScript is one run of the soak service. It counts its runs in a file
// and exits at once, except on two runs, where it writes its pid and
// becomes a long sleep so that horust can be measured at rest: the run
// after the 5th restart and the one after the last. A shell, not a role of
// the test binary: a race-instrumented Go program takes about 25 ms to
// start, so 1,000 runs would take most of a minute.
const soakScript = `read n < '%[1]s/count'
n=$((n+1))
echo $n > '%[1]s/count'
if [ $n -eq %[2]d ] || [ $n -eq %[3]d ]; then
	echo $$ > '%[1]s/pid.'$n
	exec /bin/sleep 3600
fi
`

// soakSample is horust at rest: its open descriptors and goroutines, and
// the restarts of the soak service it reports.
type soakSample struct {
	fds, goroutines, restarts int
}

func (s soakSample) String() string {
	return fmt.Sprintf("%d fds, %d goroutines after %d restarts", s.fds, s.goroutines, s.restarts)
}

// soakMeasure reads horust's descriptors from /proc and its goroutines and
// the service's restarts from /metrics (a new connection each time, so that
// no idle connection holds a goroutine in horust).
func soakMeasure(hpid int, addr, service string) (soakSample, error) {
	var s soakSample
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", hpid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return s, fmt.Errorf("/metrics: %s: %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return s, fmt.Errorf("/metrics: %w", err)
	}
	g, ok := families["go_goroutines"]
	if !ok || len(g.GetMetric()) != 1 {
		return s, fmt.Errorf("/metrics has no go_goroutines")
	}
	s.goroutines = int(g.GetMetric()[0].GetGauge().GetValue())
	s.restarts = -1
	for _, m := range families["horust_service_restarts_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "service" && l.GetValue() == service {
				s.restarts = int(m.GetCounter().GetValue())
			}
		}
	}
	return s, nil
}

// soakFreeAddr returns a TCP address on the loopback that nothing listens
// on now.
func soakFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSoakThousandRestartsLeakNothing(t *testing.T) {
	const (
		early    = 5    // restarts before the first measurement
		restarts = 1000 // restarts before the second
		service  = "soak-restarts.toml"
	)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "count"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(soakScript, dir, early+1, restarts+1)), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := soakFreeAddr(t)
	h := startHorust(t, runOpts{args: []string{"--http-addr", addr}, files: map[string]string{
		service: svc("/bin/sh "+script, "[restart]", `strategy = "always"`, `backoff = "0s"`, `min-uptime = "0s"`),
	}})
	hpid := h.cmd.Process.Pid

	// waitRun waits for the run that rests and measures horust then.
	waitRun := func(run int, timeout time.Duration) (pid int, s soakSample) {
		t.Helper()
		file := filepath.Join(dir, fmt.Sprintf("pid.%d", run))
		eventually(t, timeout, fmt.Sprintf("run %d of the service", run), func() bool {
			_, err := fmt.Sscan(readFile(file), &pid)
			return err == nil && pid > 0
		})
		var err error
		eventually(t, 10*time.Second, "/metrics to answer", func() bool {
			s, err = soakMeasure(hpid, addr, service)
			return err == nil
		})
		return pid, s
	}

	start := time.Now()
	pid, first := waitRun(early+1, 30*time.Second)
	t.Logf("first: %v", first)
	if first.restarts != early {
		t.Fatalf("horust reports %d restarts at run %d, want %d", first.restarts, early+1, early)
	}
	// The resting run ends by a signal: strategy always restarts it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, last := waitRun(restarts+1, 60*time.Second)
	t.Logf("after %d restarts in %v: %v", last.restarts, time.Since(start).Round(time.Millisecond), last)
	if last.restarts != restarts {
		t.Fatalf("horust reports %d restarts at run %d, want %d", last.restarts, restarts+1, restarts)
	}
	// A scrape's connection may linger for a moment in horust: allow a
	// little slack, and a short while for it to go.
	const slack = 2
	near := func(a, b int) bool { return a >= b-slack && a <= b+slack }
	settled := last
	deadline := time.Now().Add(5 * time.Second)
	for !near(settled.fds, first.fds) || !near(settled.goroutines, first.goroutines) {
		if time.Now().After(deadline) {
			t.Fatalf("horust leaks: %v, then %v (slack %d)", first, settled, slack)
		}
		time.Sleep(50 * time.Millisecond)
		var err error
		if settled, err = soakMeasure(hpid, addr, service); err != nil {
			t.Fatal(err)
		}
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}
