//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// execBaseline starts the dependent program directly, as horust would (a
// new session), and measures from just before the fork to the moment its
// main was entered: the share of every "main entered" number below
// that is fork, exec and Go runtime start, not horust.
func (b *bench) execBaseline() error {
	fmt.Println("\nexec: the dependent program started directly by the benchmark")
	dir := b.dir("exec")
	var lat []float64
	for i := range b.opt.samples {
		file := filepath.Join(dir, fmt.Sprintf("stamp-%02d", i))
		at := time.Now()
		p, err := os.StartProcess(b.self, []string{b.self, "role:stamp", file, "exit"}, &os.ProcAttr{
			Files: []*os.File{nil, os.Stdout, os.Stderr},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		})
		if err != nil {
			return err
		}
		// The benchmark is not horust: waiting for its own child is fine here.
		if _, err := p.Wait(); err != nil {
			return err
		}
		st := readStamp(file)
		if st.IsZero() {
			return fmt.Errorf("no stamp in %s", file)
		}
		lat = append(lat, ms(st.Sub(at)))
	}
	b.execMedian = report("fork+exec -> main entered", "exec_baseline", lat)
	return nil
}

// httpLatency: each server answers 503 until its 2nd request and notes the
// time of the 200 it gives the 2nd: the check turns true exactly when it is
// probed. The servers' starts are staggered over the 1s interval so that no
// two measurements overlap.
func (b *bench) httpLatency() error {
	n := b.opt.samples
	fmt.Printf("\nhttp: %d servers turn healthy at a probe (interval 1s); their dependents start\n", n)
	dir := b.dir("http")
	ports, err := freePorts(n)
	if err != nil {
		return err
	}
	files := map[string]string{}
	var trueFiles, depFiles []string
	for i := range n {
		srv, dep := fmt.Sprintf("srv-%02d.toml", i), fmt.Sprintf("dep-%02d.toml", i)
		trueFile, depFile := filepath.Join(dir, fmt.Sprintf("true-%02d", i)), filepath.Join(dir, fmt.Sprintf("dep-%02d", i))
		trueFiles, depFiles = append(trueFiles, trueFile), append(depFiles, depFile)
		files[srv] = fmt.Sprintf("command = %q\nstart-delay = \"%dms\"\n[healthiness]\nhttp-endpoint = \"http://127.0.0.1:%d/health\"\ninterval = \"1s\"\n",
			b.roleCommand("http-flip", fmt.Sprintf("127.0.0.1:%d", ports[i]), "2", trueFile), i*1000/n, ports[i])
		files[dep] = fmt.Sprintf("command = %q\nstart-after = [%q]\n", b.roleCommand("stamp", depFile), srv)
	}
	h, err := b.startHorust(dir, files, true)
	if err != nil {
		return err
	}
	defer h.stop()
	trues, err := waitStamps(trueFiles, 60*time.Second)
	if err != nil {
		return err
	}
	deps, err := waitStamps(depFiles, 30*time.Second)
	if err != nil {
		return err
	}
	lt, err := h.parseLog()
	if err != nil {
		return err
	}
	var toRunning, toExec, toMain []float64
	for i := range n {
		srv, dep := fmt.Sprintf("srv-%02d.toml", i), fmt.Sprintf("dep-%02d.toml", i)
		run, ok1 := lt.running[srv]
		execd, ok2 := lt.started[dep]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s or %s: missing from horust's log", srv, dep)
		}
		toRunning = append(toRunning, ms(run.Sub(trues[i])))
		toExec = append(toExec, ms(execd.Sub(trues[i])))
		toMain = append(toMain, ms(deps[i].Sub(trues[i])))
	}
	b.httpRunning = report("200 sent -> Running (horust log)", "http_check_to_running", toRunning)
	b.httpDep = report("200 sent -> dependent exec'd (horust log)", "http_check_to_dependent_exec", toExec)
	report("200 sent -> dependent's main entered", "http_check_to_dependent_main", toMain)
	return nil
}

// fileLatency: a file check every 1s. A round of checks is due at the
// service's start time plus whole intervals (horust starts the first round
// at the spawn, and each next one an interval after the start of the one
// before, when it is not late). The benchmark creates the file 5 ms before
// the second round is due and measures from the due time, so the wait for
// the probe (the 5 ms) is not counted; what horust adds by probing late is.
func (b *bench) fileLatency() error {
	n := b.opt.samples
	const lead = 5 * time.Millisecond
	fmt.Printf("\nfile: %d file checks (interval 1s); the file appears %v before a round is due\n", n, lead)
	dir := b.dir("file")
	files := map[string]string{}
	var readyFiles, depFiles []string
	for i := range n {
		svc, dep := fmt.Sprintf("file-%02d.toml", i), fmt.Sprintf("dep-%02d.toml", i)
		ready, depFile := filepath.Join(dir, fmt.Sprintf("ready-%02d", i)), filepath.Join(dir, fmt.Sprintf("dep-%02d", i))
		readyFiles, depFiles = append(readyFiles, ready), append(depFiles, depFile)
		files[svc] = fmt.Sprintf("command = %q\nstart-delay = \"%dms\"\n[healthiness]\nfile-path = %q\ninterval = \"1s\"\n",
			b.roleCommand("idle"), i*1000/n, ready)
		files[dep] = fmt.Sprintf("command = %q\nstart-after = [%q]\n", b.roleCommand("stamp", depFile), svc)
	}
	h, err := b.startHorust(dir, files, true)
	if err != nil {
		return err
	}
	defer h.stop()
	// The start time of every service, as horust noted it.
	started := make([]time.Time, n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, cancel := ctx(5 * time.Second)
		list, err := h.client.List(c)
		cancel()
		if err != nil {
			return err
		}
		have := 0
		for _, st := range list {
			var i int
			if _, err := fmt.Sscanf(st.Name, "file-%02d.toml", &i); err == nil && i < n && !st.StartedAt.IsZero() {
				started[i] = st.StartedAt
			}
		}
		for _, s := range started {
			if !s.IsZero() {
				have++
			}
		}
		if have == n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d services started after 30s", have, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	due := make([]time.Time, n)
	order := make([]int, n)
	for i := range n {
		due[i] = started[i].Add(time.Second)
		order[i] = i
	}
	sort.Slice(order, func(a, c int) bool { return due[order[a]].Before(due[order[c]]) })
	late := map[int]bool{}
	for _, i := range order {
		time.Sleep(time.Until(due[i].Add(-lead)))
		writeAtomic(readyFiles[i], "ok")
		if time.Now().After(due[i]) {
			late[i] = true // the benchmark woke too late: the round may have missed the file
		}
	}
	deps, err := waitStamps(depFiles, 30*time.Second)
	if err != nil {
		return err
	}
	lt, err := h.parseLog()
	if err != nil {
		return err
	}
	var toRunning, toExec, toMain []float64
	for i := range n {
		if late[i] {
			continue
		}
		svc, dep := fmt.Sprintf("file-%02d.toml", i), fmt.Sprintf("dep-%02d.toml", i)
		run, ok1 := lt.running[svc]
		execd, ok2 := lt.started[dep]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s or %s: missing from horust's log", svc, dep)
		}
		toRunning = append(toRunning, ms(run.Sub(due[i])))
		toExec = append(toExec, ms(execd.Sub(due[i])))
		toMain = append(toMain, ms(deps[i].Sub(due[i])))
	}
	if len(late) > 0 {
		fmt.Printf("  (%d samples left out: the benchmark created the file after the round was due)\n", len(late))
	}
	b.fileRunning = report("round due -> Running (horust log)", "file_probe_to_running", toRunning)
	b.fileDep = report("round due -> dependent exec'd (horust log)", "file_probe_to_dependent_exec", toExec)
	report("round due -> dependent's main entered", "file_probe_to_dependent_main", toMain)
	return nil
}

// notifyLatency: services send READY=1 one after another. Half of them have
// a dependent, whose start is measured; for the other half a `wait`
// long-poll issued beforehand measures when Running is visible outside
// (with a dependent, the loop forks it before it answers waits, so those
// waits would measure the fork too).
func (b *bench) notifyLatency() error {
	n := b.opt.samples
	fmt.Printf("\nnotify: %d services send READY=1, one at a time\n", n)
	dir := b.dir("notify")
	files := map[string]string{}
	var sentFiles, depFiles, names []string
	hasDep := func(i int) bool { return i%2 == 0 }
	for i := range n {
		svc, dep := fmt.Sprintf("notify-%02d.toml", i), fmt.Sprintf("dep-%02d.toml", i)
		sent, depFile := filepath.Join(dir, fmt.Sprintf("sent-%02d", i)), filepath.Join(dir, fmt.Sprintf("dep-%02d", i))
		sentFiles, depFiles, names = append(sentFiles, sent), append(depFiles, depFile), append(names, svc)
		delay := fmt.Sprintf("%dms", 1500+i*1000/n)
		files[svc] = fmt.Sprintf("command = %q\n[healthiness]\nnotify = true\n", b.roleCommand("notify-stamp", delay, sent))
		if hasDep(i) {
			files[dep] = fmt.Sprintf("command = %q\nstart-after = [%q]\n", b.roleCommand("stamp", depFile), svc)
		}
	}
	h, err := b.startHorust(dir, files, true)
	if err != nil {
		return err
	}
	defer h.stop()
	issued := make([]time.Time, n)
	answered := make([]time.Time, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		if hasDep(i) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := ctx(60 * time.Second)
			defer cancel()
			issued[i] = time.Now()
			if _, err := h.client.Wait(c, []string{names[i]}, control.WaitRunning, 50*time.Second); err != nil {
				errs <- fmt.Errorf("wait %s: %w", names[i], err)
				return
			}
			answered[i] = time.Now()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	sent, err := waitStamps(sentFiles, 30*time.Second)
	if err != nil {
		return err
	}
	var withDep []string
	for i := range n {
		if hasDep(i) {
			withDep = append(withDep, depFiles[i])
		}
	}
	depStamps, err := waitStamps(withDep, 30*time.Second)
	if err != nil {
		return err
	}
	lt, err := h.parseLog()
	if err != nil {
		return err
	}
	var toRunning, toWait, toExec, toMain []float64
	early := 0
	for i := range n {
		run, ok := lt.running[names[i]]
		if !ok {
			return fmt.Errorf("%s: no Running in horust's log", names[i])
		}
		toRunning = append(toRunning, ms(run.Sub(sent[i])))
		if hasDep(i) {
			dep := fmt.Sprintf("dep-%02d.toml", i)
			execd, ok := lt.started[dep]
			if !ok {
				return fmt.Errorf("%s: no start in horust's log", dep)
			}
			toExec = append(toExec, ms(execd.Sub(sent[i])))
			toMain = append(toMain, ms(depStamps[i/2].Sub(sent[i])))
			continue
		}
		// Only a wait that was in place before the send measures anything.
		// (issued is taken before the request goes out, so a wait issued
		// just before the send could still arrive after it; READY=1 comes
		// 1.5s after the start, so that does not happen in practice.)
		if issued[i].Before(sent[i]) {
			toWait = append(toWait, ms(answered[i].Sub(sent[i])))
		} else {
			early++
		}
	}
	if early > 0 {
		fmt.Printf("  (%d wait samples left out: READY=1 came before the wait was issued)\n", early)
	}
	b.notifyRunning = report("READY=1 sent -> Running (horust log)", "notify_ready_to_running", toRunning)
	b.notifyWait = report("READY=1 sent -> wait long-poll answered", "notify_ready_to_wait", toWait)
	b.notifyDep = report("READY=1 sent -> dependent exec'd (horust log)", "notify_ready_to_dependent_exec", toExec)
	report("READY=1 sent -> dependent's main entered", "notify_ready_to_dependent_main", toMain)
	return nil
}

// cpu: services with an http check every second, their servers in one
// helper service, and the same services without checks as the baseline.
func (b *bench) cpu() error {
	n := b.opt.cpuServices
	fmt.Printf("\ncpu: %d services, an http check each every 1s; horust's CPU over %v\n", n, b.opt.cpuWindow)
	checked, err := b.cpuRun(n, true)
	if err != nil {
		return err
	}
	b.cpuPct = checked
	idle, err := b.cpuRun(n, false)
	if err != nil {
		return err
	}
	result("cpu_100_http_checks_pct", checked)
	result("cpu_100_services_no_checks_pct", idle)
	return nil
}

// cpuRun measures horust's CPU (% of one core) with n services, with or
// without an http check each.
func (b *bench) cpuRun(n int, checks bool) (float64, error) {
	dir := b.dir(map[bool]string{true: "cpu-checks", false: "cpu-idle"}[checks])
	ports, err := freePorts(n)
	if err != nil {
		return 0, err
	}
	portsFile, readyFile := filepath.Join(dir, "ports"), filepath.Join(dir, "servers-ready")
	var sb strings.Builder
	for _, p := range ports {
		fmt.Fprintln(&sb, p)
	}
	if err := os.WriteFile(portsFile, []byte(sb.String()), 0o644); err != nil {
		return 0, err
	}
	// The servers say they listen with READY=1: no check of their own adds
	// to horust's work. The baseline has no servers at all.
	files := map[string]string{}
	var names []string
	if checks {
		files["servers.toml"] = fmt.Sprintf("command = %q\n[healthiness]\nnotify = true\n", b.roleCommand("http-many", portsFile, readyFile))
		names = append(names, "servers.toml")
	}
	for i := range n {
		name := fmt.Sprintf("svc-%03d.toml", i)
		names = append(names, name)
		body := "command = \"/bin/sleep 1000000\"\n"
		if checks {
			body += "start-after = [\"servers.toml\"]\n"
			body += fmt.Sprintf("[healthiness]\nhttp-endpoint = \"http://127.0.0.1:%d/health\"\ninterval = \"1s\"\n", ports[i])
		}
		files[name] = body
	}
	h, err := b.startHorust(dir, files, false)
	if err != nil {
		return 0, err
	}
	defer h.stop()
	c, cancel := ctx(90 * time.Second)
	_, err = h.client.Wait(c, names, control.WaitRunning, 80*time.Second)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("waiting for %d services to run: %w", len(names), err)
	}
	time.Sleep(3 * time.Second) // warm up: connections open, buffers grown
	fails0, err := healthFailures(h)
	if err != nil {
		return 0, err
	}
	req0, conn0 := serverStats(ports[0])
	pid := h.cmd.Process.Pid
	t0, ns0, at0 := mustTicks(pid), mustNanos(pid), time.Now()
	time.Sleep(b.opt.cpuWindow)
	t1, ns1, at1 := mustTicks(pid), mustNanos(pid), time.Now()
	req1, conn1 := serverStats(ports[0])
	fails1, err := healthFailures(h)
	if err != nil {
		return 0, err
	}
	window := at1.Sub(at0).Seconds()
	pct := float64(t1-t0) / userHZ / window * 100
	schedPct := float64(ns1-ns0) / 1e9 / window * 100
	if checks {
		checksPerSec := float64(req1-req0) / window
		newConns := float64(conn1-conn0) / float64(max(req1-req0, 1))
		fmt.Printf("  with checks:    horust %.3f%% of one core (%d ticks in %.1fs; schedstat %.3f%%, %.0f µs per check); %.1f checks/s, %.4f new connections per check, %d failed rounds\n",
			pct, t1-t0, window, schedPct, float64(ns1-ns0)/1e3/max(float64(req1-req0), 1), checksPerSec, newConns, fails1-fails0)
		result("cpu_checks_per_second", checksPerSec)
		result("cpu_new_connections_per_check", newConns)
		result("cpu_100_http_checks_schedstat_pct", schedPct)
		result("cpu_per_check_us", float64(ns1-ns0)/1e3/max(float64(req1-req0), 1))
		if fails1 != fails0 {
			return 0, fmt.Errorf("%d failed rounds of checks during the window", fails1-fails0)
		}
		if checksPerSec < 0.9*float64(n) {
			return 0, fmt.Errorf("only %.1f checks a second, want about %d", checksPerSec, n)
		}
	} else {
		fmt.Printf("  without checks: horust %.3f%% of one core (%d ticks in %.1fs; schedstat %.3f%%)\n", pct, t1-t0, window, schedPct)
	}
	return pct, nil
}

func mustNanos(pid int) int64 {
	n, err := cpuNanos(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu time:", err)
	}
	return n
}

func mustTicks(pid int) int64 {
	t, err := cpuTicks(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu ticks:", err)
	}
	return t
}

// healthFailures sums every service's failed rounds.
func healthFailures(h *horustRun) (int, error) {
	c, cancel := ctx(10 * time.Second)
	defer cancel()
	list, err := h.client.List(c)
	if err != nil {
		return 0, err
	}
	sum := 0
	for _, s := range list {
		if s.State != status.Running {
			return 0, fmt.Errorf("%s is %s", s.Name, s.State.API())
		}
		sum += s.HealthFailures
	}
	return sum, nil
}

// serverStats asks the helper how many check requests and new connections
// it has seen (0, 0 when it cannot say).
func serverStats(port int) (requests, conns int64) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(c, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/stats", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	_, _ = fmt.Sscan(string(body), &requests, &conns)
	return requests, conns
}
