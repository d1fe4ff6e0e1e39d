//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/control/client"
)

// horustRun is one horust under measurement.
type horustRun struct {
	cmd    *exec.Cmd
	dir    string
	logs   string // its stderr: JSON log lines
	client *client.Client
	done   chan struct{}
}

// startHorust writes the service files into dir/services and starts horust
// on them, its log in JSON (nanosecond times) in dir/horust.log: at debug
// level when debug is set (the latency scenarios read state changes from
// it), at the default level otherwise.
func (b *bench) startHorust(dir string, files map[string]string, debug bool) (*horustRun, error) {
	svcDir := filepath.Join(dir, "services")
	if err := os.MkdirAll(svcDir, 0o755); err != nil {
		return nil, err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(svcDir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	h := &horustRun{dir: dir, logs: filepath.Join(dir, "horust.log"), done: make(chan struct{})}
	logf, err := os.Create(h.logs)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"--services-path", svcDir, "--uds-folder-path", dir}
	if b.opt.noCgroups {
		args = append(args, "--no-cgroups")
	}
	if b.opt.nice != 0 {
		// nice execs horust: the pid is horust's, and every thread (and
		// service) inherits the niceness.
		h.cmd = exec.Command("nice", append([]string{"-n", strconv.Itoa(b.opt.nice), b.opt.horust}, args...)...)
	} else {
		h.cmd = exec.Command(b.opt.horust, args...)
	}
	h.cmd.Env = append(os.Environ(), "HORUST_LOG_FORMAT=json")
	if debug {
		h.cmd.Env = append(h.cmd.Env, "HORUST_LOG=debug")
	}
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	// A benchmark that is killed (bench/run.sh's timeout) takes its horust,
	// and so the services, with it.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "horust-*.sock"))
		if len(m) == 1 {
			h.client = client.New(m[0])
			return h, nil
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("no control socket after 10s; log:\n%s", tail(h.logs))
		}
		select {
		case <-h.done:
			return nil, fmt.Errorf("horust exited; log:\n%s", tail(h.logs))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop ends horust with SIGTERM (SIGKILL after 15s).
func (h *horustRun) stop() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// logTimes are the moments horust logged about each service.
type logTimes struct {
	running map[string]time.Time // first "state changed" to Running
	started map[string]time.Time // first "service started"
}

// parseLog reads horust's JSON log.
func (h *horustRun) parseLog() (logTimes, error) {
	lt := logTimes{running: map[string]time.Time{}, started: map[string]time.Time{}}
	f, err := os.Open(h.logs)
	if err != nil {
		return lt, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Service string    `json:"service"`
			State   string    `json:"state"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch {
		case rec.Msg == "state changed" && rec.State == "Running":
			if _, ok := lt.running[rec.Service]; !ok {
				lt.running[rec.Service] = rec.Time
			}
		case rec.Msg == "service started":
			if _, ok := lt.started[rec.Service]; !ok {
				lt.started[rec.Service] = rec.Time
			}
		}
	}
	return lt, sc.Err()
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// readStamp reads a unix-ns time written by a role (zero time if none).
func readStamp(path string) time.Time {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// waitStamps waits until every file holds a stamp.
func waitStamps(files []string, timeout time.Duration) ([]time.Time, error) {
	deadline := time.Now().Add(timeout)
	out := make([]time.Time, len(files))
	for {
		missing := 0
		for i, f := range files {
			if out[i].IsZero() {
				out[i] = readStamp(f)
			}
			if out[i].IsZero() {
				missing++
			}
		}
		if missing == 0 {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%d of %d stamps missing after %v", missing, len(files), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePorts reserves n loopback ports: it listens on each, notes it, and
// closes them all at the end (so no port is handed out twice).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// cpuTicks is a process's utime+stime in clock ticks (USER_HZ, 100 a
// second on Linux), every thread included.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// After the comm: state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}

const userHZ = 100

// cpuNanos is a process's CPU time in nanoseconds from the scheduler's
// accounting (/proc/<pid>/task/*/schedstat), summed over its live threads:
// finer than cpuTicks, but blind to threads that have exited.
func cpuNanos(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no threads of %d: %v", pid, err)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// stats of a sample in milliseconds.
type stats struct {
	n                     int
	min, median, p90, max float64
}

func summarize(ms []float64) stats {
	if len(ms) == 0 {
		return stats{}
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	at := func(q float64) float64 { return s[int(q*float64(len(s)-1)+0.5)] }
	return stats{n: len(s), min: s[0], median: at(0.5), p90: at(0.9), max: s[len(s)-1]}
}

func (s stats) String() string {
	return fmt.Sprintf("n=%d min %.3f  median %.3f  p90 %.3f  max %.3f ms", s.n, s.min, s.median, s.p90, s.max)
}

// report prints a sample and its RESULT lines (median and p90).
func report(what, metric string, ms []float64) float64 {
	s := summarize(ms)
	fmt.Printf("  %-44s %s\n", what, s)
	if s.n > 0 {
		result(metric+"_median_ms", s.median)
		result(metric+"_p90_ms", s.p90)
	}
	return s.median
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func numCPU() int { return runtime.NumCPU() }

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
