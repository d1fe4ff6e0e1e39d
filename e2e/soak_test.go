//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
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

// crashSoakScript is one run of a service of the crash soak ($1 is its
// name): it appends its pid to its runs file, the kernel's count of its
// runs, then waits for a line on its FIFO and exits 1.
const crashSoakScript = `echo $$ >> '%[1]s/runs/'"$1"
read x < '%[1]s/fifo/'"$1"
exit 1
`

// soakDuration is how long the crash soak drives crashes: HORUST_SOAK (a
// Go duration, e.g. 10m), else 40 s.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("HORUST_SOAK")
	if v == "" {
		if testing.Short() {
			t.Skip("the soak is skipped with -short")
		}
		return 40 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("HORUST_SOAK=%q: want a duration such as 10m", v)
	}
	return d
}

// crashSample is horust at one moment of the crash soak.
type crashSample struct {
	at                       time.Duration
	fds, threads, goroutines int
	heap                     float64 // go_memstats_heap_alloc_bytes
	restarts                 map[string]int
}

func (s crashSample) String() string {
	total := 0
	for _, r := range s.restarts {
		total += r
	}
	return fmt.Sprintf("at %v: %d restarts, %d fds, %d threads, %d goroutines, heap %.1f MiB",
		s.at.Round(time.Second), total, s.fds, s.threads, s.goroutines, s.heap/(1<<20))
}

// crashMeasure samples horust: descriptors and threads from /proc,
// goroutines, heap and every service's restarts from /metrics.
func crashMeasure(hpid int, addr string) (crashSample, error) {
	s := crashSample{restarts: map[string]int{}}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", hpid))
	if err != nil {
		return s, err
	}
	s.fds, s.threads = len(fds), threads(hpid)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return s, fmt.Errorf("/metrics: %w", err)
	}
	gauge := func(name string) float64 {
		if f, ok := families[name]; ok && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
		return -1
	}
	s.goroutines, s.heap = int(gauge("go_goroutines")), gauge("go_memstats_heap_alloc_bytes")
	for _, m := range families["horust_service_restarts_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "service" {
				s.restarts[l.GetValue()] = int(m.GetCounter().GetValue())
			}
		}
	}
	return s, nil
}

// zombies lists the children of pid that are zombies.
func zombies(pid int) []int {
	var zs []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat := readFile(fmt.Sprintf("/proc/%d/stat", child))
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(stat[i+1:]) // state, ppid, ...
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			zs = append(zs, child)
		}
	}
	return zs
}

// raceHorust builds a race-instrumented horust when the tests run under the
// race detector ("" otherwise: the usual build).
func raceHorust(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return ""
	}
	bin := filepath.Join(t.TempDir(), "horust-race")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "../cmd/horust").CombinedOutput(); err != nil {
		t.Fatalf("go build -race: %v\n%s", err, out)
	}
	return bin
}

// 200 services, a random tenth of them made to crash every second: horust
// sees every exit (its restart counters match the runs the services
// themselves recorded), and its descriptors, threads, goroutines and heap
// stay flat, with no zombie left. 40 s by default (under the race detector
// in CI, with a race-instrumented horust); HORUST_SOAK=10m for the long run.
func TestSoakCrashingTenthEverySecond(t *testing.T) {
	const services = 200
	d := soakDuration(t)
	dir := t.TempDir()
	for _, sub := range []string{"runs", "fifo"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(crashSoakScript, dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	// Names of this test process only: two horust instances with services
	// of the same name could share their cgroups (other tests may run a
	// soak at the same time).
	names := make([]string, services)
	files := map[string]string{}
	index := map[string]int{}
	for i := range names {
		names[i] = fmt.Sprintf("soak%d-%03d", os.Getpid(), i)
		index[names[i]+".toml"] = i
		if err := syscall.Mkfifo(filepath.Join(dir, "fifo", names[i]), 0o644); err != nil {
			t.Fatal(err)
		}
		files[names[i]+".toml"] = svc("/bin/sh "+script+" "+names[i], "[restart]", `strategy = "always"`, `backoff = "0s"`)
	}
	addr := soakFreeAddr(t)
	h := startHorust(t, runOpts{bin: raceHorust(t), args: []string{"--http-addr", addr}, files: files})
	hpid := h.cmd.Process.Pid

	// runs returns the pids service i recorded, one per run.
	runs := func(i int) []string { return strings.Fields(readFile(filepath.Join(dir, "runs", names[i]))) }
	// crash makes the current run of service i exit, if it waits on its
	// FIFO now (ENXIO: no reader, it is between runs) and was not told to
	// exit already, so that every crash made is one exit.
	crashed := make([]int, services) // crashes made per service
	told := make([]string, services) // the pid of the last run told to exit
	crash := func(i int) bool {
		r := runs(i)
		if len(r) == 0 || r[len(r)-1] == told[i] {
			return false
		}
		f, err := os.OpenFile(filepath.Join(dir, "fifo", names[i]), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return false
		}
		defer f.Close()
		if _, err = f.Write([]byte("x\n")); err != nil {
			return false
		}
		told[i] = r[len(r)-1]
		crashed[i]++
		return true
	}
	measure := func() crashSample {
		t.Helper()
		var s crashSample
		var err error
		eventually(t, 30*time.Second, "/metrics to answer", func() bool {
			s, err = crashMeasure(hpid, addr)
			return err == nil
		})
		return s
	}
	everyRunning := func() bool {
		all, err := h.client().List(context.Background())
		if err != nil || len(all) != services {
			return false
		}
		for _, st := range all {
			i, ok := index[st.Name]
			if !ok {
				return false
			}
			r := runs(i)
			if st.State != status.Running || len(r) != crashed[i]+1 || r[len(r)-1] != strconv.Itoa(st.PID) {
				return false
			}
		}
		return true
	}
	eventually(t, 60*time.Second, "every service to run", everyRunning)

	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 16))
	tick := time.NewTicker(time.Second) // paces the load; nothing waits on it
	defer tick.Stop()
	var samples []crashSample
	triggered, missed := 0, 0
	for round := 0; time.Since(start) < d; round++ {
		<-tick.C
		for _, i := range rng.Perm(services)[:services/10] {
			if crash(i) {
				triggered++
			} else {
				missed++
			}
		}
		if round%10 == 0 {
			s := measure()
			s.at = time.Since(start)
			samples = append(samples, s)
			t.Log(s)
		}
	}
	eventually(t, 60*time.Second, "every crashed service to run again", everyRunning)
	last := measure()
	last.at = time.Since(start)
	t.Logf("end %v; %d crashes made, %d tries found a service between runs", last, triggered, missed)

	// Every exit observed: each service ran once more than it was made
	// to crash (as it recorded its runs), and horust counts a restart for
	// each of those exits.
	for i, n := range names {
		if got, ran := last.restarts[n+".toml"], len(runs(i)); got != ran-1 {
			t.Errorf("%s: horust counts %d restarts, the service ran %d times", n, got, ran)
		}
	}
	if zs := zombies(hpid); len(zs) > 0 {
		t.Errorf("zombie children of horust: %v", zs)
	}
	// Flat: compared with the first sample, after the services started.
	// Connections of the scrape itself may linger: a little slack; the
	// heap between two collections may double: twice plus 2 MiB.
	first := samples[0]
	if last.fds > first.fds+2 || last.threads > first.threads || last.goroutines > first.goroutines+2 ||
		last.heap > 2*first.heap+2<<20 {
		t.Errorf("horust grows: first %v, last %v", first, last)
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}
