//go:build linux

// Command health measures horust's health checking end to end, with the
// built horust, real processes and real servers on loopback.
//
// Latencies are measured from the moment the readiness condition becomes
// true, to three points: the service's change to Running (the time of
// horust's own debug log line), its start-after dependent exec'd (horust's
// "service started" line, logged once fork and exec have succeeded), and
// the dependent's main entered (the dependent notes it; this adds the
// program's own start, measured alone by the exec scenario). Times from
// different processes are wall-clock times of one machine.
//
//   - http: a server answers 503 until its 2nd request, which it answers 200
//     after noting the time: the check turns true exactly when it is probed,
//     and only the rest of that request (sending the answer, horust reading
//     it) counts as the check's own time.
//   - file: a file check every 1s. A round is due at the service's start
//     time plus whole intervals; the benchmark creates the file 5 ms before
//     the second round is due and measures from the due time, so the wait
//     for the probe is left out (but a late probe counts against horust).
//   - notify: a service sends READY=1; measured from just before the send.
//     For half the services a `wait` long-poll issued beforehand measures
//     when Running is visible through the control socket.
//   - exec: the dependent program started directly by the benchmark.
//   - cpu: 100 services each with an http check every second (the servers in
//     one helper service); horust's CPU (utime+stime from /proc/<pid>/stat,
//     and the scheduler's nanoseconds) over a window, next to the same 100
//     services without checks.
//
// Services of a latency scenario run side by side, their readiness staggered
// over a second so that no two measurements overlap. Everything is printed
// for people and as `RESULT health <metric> <value>` lines; the budgets of
// issue 4 are printed as ratios (below 1 is within). Run it from the
// repository: go run ./bench/health (see README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type options struct {
	horust      string
	samples     int
	cpuServices int
	cpuWindow   time.Duration
	scenarios   string
	noCgroups   bool
	nice        int
	keep        bool
}

func main() {
	bornAt := time.Now()
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "role:") {
		os.Exit(playRole(strings.TrimPrefix(os.Args[1], "role:"), os.Args[2:], bornAt))
	}
	var o options
	flag.StringVar(&o.horust, "horust", os.Getenv("HORUST"), "the horust binary (default: $HORUST, else build ./cmd/horust)")
	flag.IntVar(&o.samples, "samples", 30, "samples per latency scenario (services run side by side, their probes staggered)")
	flag.IntVar(&o.cpuServices, "cpu-services", 100, "services with an http check in the cpu scenario")
	flag.DurationVar(&o.cpuWindow, "cpu-window", 20*time.Second, "how long the cpu scenario measures")
	flag.StringVar(&o.scenarios, "run", "exec,http,file,notify,cpu", "scenarios to run, comma-separated")
	flag.BoolVar(&o.noCgroups, "no-cgroups", false, "run horust with --no-cgroups")
	flag.IntVar(&o.nice, "nice", 0, "run horust (and so its services) under nice -n N; a negative N (root) shows what is horust's and what is the machine's load")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (service files, horust logs)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "health benchmark:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	work, err := os.MkdirTemp("", "horust-bench-health-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	if o.horust == "" {
		o.horust = filepath.Join(work, "horust")
		cmd := exec.Command("go", "build", "-o", o.horust, "github.com/horust-go/horust/cmd/horust")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building horust (run from inside the repository, or pass -horust): %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{opt: o, work: work, self: self}
	fmt.Printf("health benchmark: %d CPUs, load average %s, cgroups %v, nice %d\n", numCPU(), loadAvg(), !o.noCgroups, o.nice)
	for _, sc := range strings.Split(o.scenarios, ",") {
		var err error
		switch strings.TrimSpace(sc) {
		case "exec":
			err = b.execBaseline()
		case "http":
			err = b.httpLatency()
		case "file":
			err = b.fileLatency()
		case "notify":
			err = b.notifyLatency()
		case "cpu":
			err = b.cpu()
		case "":
		default:
			err = errors.New("unknown scenario " + sc)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
	}
	b.summary()
	fmt.Printf("load average at the end: %s\n", loadAvg())
	return nil
}

type bench struct {
	opt  options
	work string
	self string
	seq  int
	// medians kept for the ratios printed at the end
	execMedian, httpDep, httpRunning, fileDep, fileRunning, notifyRunning, notifyWait, notifyDep, cpuPct float64
}

// dir returns a new directory under the work directory.
func (b *bench) dir(name string) string {
	b.seq++
	d := filepath.Join(b.work, fmt.Sprintf("%02d-%s", b.seq, name))
	_ = os.MkdirAll(d, 0o755)
	return d
}

// roleCommand is the TOML command line of a role of this binary.
func (b *bench) roleCommand(name string, args ...string) string {
	parts := []string{b.self, "role:" + name}
	for _, a := range args {
		parts = append(parts, "'"+a+"'")
	}
	return strings.Join(parts, " ")
}

func result(metric string, value float64) {
	fmt.Printf("RESULT health %s %s\n", metric, strconv.FormatFloat(value, 'f', 4, 64))
}

// summary prints the budgets of issue 4 as ratios (below 1 is within).
func (b *bench) summary() {
	fmt.Println("\nbudgets (ratio below 1 is within the budget):")
	ratio := func(metric, what string, v, budget float64) {
		if v == 0 {
			return
		}
		fmt.Printf("  %-58s %8.3f / %g = %.2f\n", what, v, budget, v/budget)
		result(metric, v/budget)
	}
	ratio("http_check_to_running_budget_ratio", "http: check true -> Running, median ms / 5 ms", b.httpRunning, 5)
	ratio("http_check_to_dependent_budget_ratio", "http: check true -> dependent exec'd, median ms / 5 ms", b.httpDep, 5)
	ratio("file_probe_to_running_budget_ratio", "file: probe due -> Running, median ms / 5 ms", b.fileRunning, 5)
	ratio("file_probe_to_dependent_budget_ratio", "file: probe due -> dependent exec'd, median ms / 5 ms", b.fileDep, 5)
	ratio("notify_ready_to_running_budget_ratio", "notify: READY=1 -> Running (log), median ms / 1 ms", b.notifyRunning, 1)
	ratio("notify_ready_to_wait_budget_ratio", "notify: READY=1 -> wait reply, median ms / 1 ms", b.notifyWait, 1)
	ratio("notify_ready_to_dependent_budget_ratio", "notify: READY=1 -> dependent exec'd, median ms / 1 ms", b.notifyDep, 1)
	ratio("cpu_budget_ratio", "cpu: 100 http checks/s, % of one core / 2 %", b.cpuPct, 2)
}

// ctx returns a context with a deadline for one step of a scenario.
func ctx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
