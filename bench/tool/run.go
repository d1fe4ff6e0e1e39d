package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench is one run of the matrix.
type bench struct {
	k       *knobs
	out     string // results directory
	raw     *os.File
	rep     int
	workTop string
	nwork   int
}

func (b *bench) res(scen, sup, metric string, v any) {
	var s string
	switch x := v.(type) {
	case float64:
		s = strconv.FormatFloat(x, 'f', 3, 64)
	default:
		s = fmt.Sprint(x)
	}
	fmt.Fprintf(b.raw, "RESULT %s %s %s %s\n", scen, sup, metric, s)
}

// work makes a fresh work directory.
func (b *bench) work(scen, sup string) (string, error) {
	b.nwork++
	d := filepath.Join(b.workTop, fmt.Sprintf("%s.%s.%d", scen, sup, b.nwork))
	return d, os.MkdirAll(d, 0o755)
}

// keepConfig stores a configuration for the report (first repetition only).
func (b *bench) keepConfig(name string, st *setup, dir string, maxFiles int) {
	if b.rep != 1 {
		return
	}
	if len(st.files) > maxFiles {
		more := len(st.files) - maxFiles
		st = &setup{argv: st.argv, stop: st.stop, files: st.files[:maxFiles]}
		defer func() {
			f, err := os.OpenFile(filepath.Join(b.out, "configs", name+".txt"), os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				fmt.Fprintf(f, "... and %d more files like these\n", more)
				f.Close()
			}
		}()
	}
	_ = os.MkdirAll(filepath.Join(b.out, "configs"), 0o755)
	_ = os.WriteFile(filepath.Join(b.out, "configs", name+".txt"), []byte(b.generic(st.describe(dir))), 0o644)
}

// generic writes the paths of this run's binaries as their names.
func (b *bench) generic(s string) string {
	s = strings.ReplaceAll(s, b.k.horustCopy, "horust")
	s = strings.ReplaceAll(s, b.k.horust, "horust")
	if i := strings.Index(s, b.k.logDir+"/hbench-log-"); i >= 0 {
		j := i + len(b.k.logDir+"/hbench-log-")
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		s = strings.ReplaceAll(s, s[i:j], "$LOGDIR")
	}
	return s
}

func uptime() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	out := fs.String("out", "", "results directory")
	_ = fs.Parse(args)
	if *out == "" {
		return errors.New("-out DIR is required")
	}
	k, err := loadKnobs()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	// Children inherit this limit (1,000 services need more than 1,024 fds
	// in some supervisors).
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	startReaper()
	raw, err := os.OpenFile(filepath.Join(*out, "raw.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer raw.Close()
	top, err := os.MkdirTemp("", "hbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(top)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		s := <-sigc
		logf("got %v: killing everything started, then exiting", s)
		killAll(10 * time.Second)
		os.RemoveAll(top)
		os.Exit(130)
	}()
	k.horustCopy = filepath.Join(top, "horust")
	if err := copyFile(k.horust, k.horustCopy); err != nil {
		return err
	}
	b := &bench{k: k, out: *out, raw: raw, workTop: top}
	t0 := time.Now()
	meta := fmt.Sprintf("started: %s\nload_start: %s\n%s", t0.UTC().Format(time.RFC3339), uptime(), k.describe())
	for b.rep = 1; b.rep <= k.reps; b.rep++ {
		// rotate the supervisor order each repetition, so that no peer
		// always runs first or last after another scenario
		order := slices.Clone(k.sups)
		for i := 1; i < b.rep; i++ {
			order = append(order[1:], order[0])
		}
		for _, scen := range k.scenarios {
			fmt.Fprintf(raw, "# rep=%d scen=%s load=%s\n", b.rep, scen, uptime())
			logf("rep %d/%d %s (load %s)", b.rep, k.reps, scen, uptime())
			b.scenario(scen, order)
			killAll(10 * time.Second)
		}
	}
	meta += fmt.Sprintf("load_end: %s\nelapsed_s: %.0f\n", uptime(), time.Since(t0).Seconds())
	return os.WriteFile(filepath.Join(*out, "meta.txt"), []byte(meta), 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (b *bench) scenario(scen string, order []string) {
	if scen == "idle" {
		for _, n := range b.k.idleNs {
			b.idle(n, order)
		}
		return
	}
	for _, sup := range order {
		var err error
		switch scen {
		case "restart":
			err = b.restart(sup)
		case "startup":
			ns := b.k.peerStartup
			if sup == "floor" || isHorust(sup) {
				ns = b.k.startupNs
			}
			for _, n := range ns {
				if err = b.startup(sup, n); err != nil {
					break
				}
			}
		case "shutdown":
			err = b.shutdown(sup, b.k.shutdownN)
		case "chain":
			err = b.chain(sup)
		case "reap":
			err = b.reap(sup)
		case "log":
			for _, m := range b.k.logModes {
				if err = b.logRun(sup, m); err != nil {
					break
				}
			}
		case "oneshot":
			err = b.oneshot(sup)
		}
		if err != nil {
			logf("%s %s: %v", scen, sup, err)
			b.res(scen, sup, "status", "fail")
		}
		killAll(10 * time.Second)
	}
}

// sup returns the argv of a supervisor binary that must exist, or false.
func available(sup string, k *knobs) bool {
	bin := map[string]string{"floor": "sh", "horust": k.horust, "horust-nocg": k.horust, "tini": "tini",
		"dumb-init": "dumb-init", "s6": "s6-svscan", "runit": "runsvdir", "supervisord": "supervisord"}[sup]
	_, err := lookPath(bin)
	return err == nil
}

// launch renders and starts sup with svcs; horust-nocg runs the copy.
func (b *bench) launch(sup string, svcs []svc, dir string, o spawnOpts) (*child, *setup, error) {
	st, err := render(sup, svcs, filepath.Join(dir, "conf"), b.k)
	if err != nil {
		return nil, nil, err
	}
	argv := slices.Clone(st.argv)
	if sup == "horust-nocg" {
		argv[0] = b.k.horustCopy
	}
	if o.stderr == "" {
		o.stderr = filepath.Join(dir, "sup.err")
	}
	c, err := spawn(argv, o)
	return c, st, err
}

// ---------------------------------------------------------------- idle

// idle starts every supervisor that can express n services at once (one
// instance of each, so no two share a binary's pages), waits until all run,
// settles 2 s, and measures all of them over the same idle window.
func (b *bench) idle(n int, order []string) {
	type inst struct {
		sup    string
		c      *child
		st     *setup
		before map[int]usage
		up     time.Duration
		ok     bool
	}
	var insts []*inst
	for _, sup := range order {
		if sup == "floor" {
			continue
		}
		if n > 1 && !multi(sup) {
			continue
		}
		if !available(sup, b.k) {
			b.res("idle", sup, "status", "unavailable")
			continue
		}
		dir, err := b.work("idle", sup)
		if err != nil {
			logf("idle: %v", err)
			continue
		}
		svcs := make([]svc, n)
		for i := range svcs {
			svcs[i] = svc{name: fmt.Sprintf("s%d", i+1), argv: []string{"/bin/sleep", "infinity"}, restart: true}
		}
		c, st, err := b.launch(sup, svcs, dir, spawnOpts{})
		if err != nil {
			logf("idle %s n=%d: %v", sup, n, err)
			b.res("idle", sup, "status", "fail")
			continue
		}
		if n <= 2 {
			b.keepConfig(fmt.Sprintf("idle.%s", sup), st, dir, 4)
		}
		insts = append(insts, &inst{sup: sup, c: c, st: st})
	}
	for _, in := range insts {
		err := waitServices(in.c, "sleep", n, 120*time.Second+time.Duration(n)*50*time.Millisecond)
		in.up = time.Since(in.c.start)
		if err != nil {
			logf("idle %s n=%d: %v", in.sup, n, err)
			b.res("idle", in.sup, "status", "fail")
			continue
		}
		in.ok = true
	}
	time.Sleep(2 * time.Second)
	own := func(c *child) []int {
		var pids []int
		for _, p := range subtree(scanProcs(), c.pid, true) {
			if p.comm != "sleep" && p.state != 'Z' {
				pids = append(pids, p.pid)
			}
		}
		return pids
	}
	for _, in := range insts {
		in.before = map[int]usage{}
		for _, p := range own(in.c) {
			in.before[p] = sampleUsage(p)
		}
	}
	time.Sleep(b.k.idleWindow)
	for _, in := range insts {
		if !in.ok {
			continue
		}
		var tot usage
		procs := 0
		for _, p := range own(in.c) {
			u := sampleUsage(p)
			bu := in.before[p]
			tot.pssKB += u.pssKB
			tot.rssKB += u.rssKB
			tot.threads += u.threads
			tot.ctxsw += u.ctxsw - bu.ctxsw
			tot.cpuNS += u.cpuNS - bu.cpuNS
			procs++
		}
		sfx := fmt.Sprintf(".n%d", n)
		b.res("idle", in.sup, "pss_kb"+sfx, tot.pssKB)
		b.res("idle", in.sup, "rss_kb"+sfx, tot.rssKB)
		b.res("idle", in.sup, "ctxsw"+sfx, tot.ctxsw)
		b.res("idle", in.sup, "cpu_ms"+sfx, float64(tot.cpuNS)/1e6)
		b.res("idle", in.sup, "procs"+sfx, procs)
		b.res("idle", in.sup, "threads"+sfx, tot.threads)
		b.res("idle", in.sup, "up_ms"+sfx, float64(in.up.Microseconds())/1e3)
	}
	// All are asked to stop before any is waited for: stop's final sweep
	// SIGKILLs everything below hbench, which would kill the supervisors
	// not yet stopped (horust's cgroups would then stay behind).
	for _, in := range insts {
		if !in.c.exited() {
			_ = syscall.Kill(in.c.pid, in.st.stop)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, in := range insts {
		in.c.wait(time.Until(deadline))
	}
	killAll(10 * time.Second)
}

// ---------------------------------------------------------------- restart

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// restart runs a service that exits at once with restart always and the
// smallest delay the supervisor allows, for RESTART_SECS, and times every
// crash to the next fork (and exec) of the service from kernel process
// events.
func (b *bench) restart(sup string) error {
	const scen = "restart"
	if !multi(sup) && sup != "floor" {
		b.res(scen, sup, "restarts_per_s", "n/a")
		return nil
	}
	if !available(sup, b.k) {
		b.res(scen, sup, "status", "unavailable")
		return nil
	}
	dir, err := b.work(scen, sup)
	if err != nil {
		return err
	}
	count := filepath.Join(dir, "count")
	s := svc{name: "r", sh: "echo x >> " + count, restart: true}
	rec, err := startRecorder()
	if err != nil {
		return err
	}
	var c *child
	depth := 1
	if sup == "floor" {
		c, err = spawn([]string{b.k.self, "restart-floor", "-dur", b.k.restartWindow.String(), "--", "/bin/sh", "-c", s.sh}, spawnOpts{stderr: filepath.Join(dir, "err")})
		if err == nil {
			c.wait(b.k.restartWindow + 30*time.Second)
		}
	} else {
		var st *setup
		c, st, err = b.launch(sup, []svc{s}, dir, spawnOpts{})
		if err == nil {
			depth = st.depth
			b.keepConfig("restart."+sup, st, dir, 4)
			time.Sleep(b.k.restartWindow)
		}
	}
	evs, lost := rec.stop()
	if err != nil {
		return err
	}
	if !c.exited() {
		c.stop(syscall.SIGTERM, 10*time.Second)
		if sup == "runit" {
			killAll(time.Second)
		}
	}
	// a service run execs the service; s6-supervise also forks a helper
	// that does not (it is not a run)
	var runs []*runRec
	for _, r := range serviceRuns(evs, c.pid, depth) {
		if r.exec != 0 {
			runs = append(runs, r)
		}
	}
	if os.Getenv("HBENCH_DEBUG") != "" {
		for _, r := range runs {
			logf("run pid=%d parent=%d fork=%d exec=%d exit=%d", r.pid, r.parent, r.fork, r.exec, r.exit)
		}
	}
	var fork, execd, life []float64
	for _, r := range runs {
		if r.exit > r.exec {
			life = append(life, float64(r.exit-r.exec)/1e6)
		}
	}
	for i := 1; i < len(runs); i++ {
		prev, cur := runs[i-1], runs[i]
		if prev.exit == 0 || cur.fork < prev.exit {
			continue
		}
		fork = append(fork, float64(cur.fork-prev.exit)/1e6)
		if cur.exec > cur.fork {
			execd = append(execd, float64(cur.exec-prev.exit)/1e6)
		}
	}
	b.res(scen, sup, "runs", len(runs))
	if data, err := os.ReadFile(count); err == nil {
		b.res(scen, sup, "starts_counted", strings.Count(string(data), "\n"))
	}
	if lost {
		b.res(scen, sup, "events_lost", 1)
	}
	if len(runs) < 2 {
		b.res(scen, sup, "restarts_per_s", 0.0)
		return nil
	}
	span := float64(runs[len(runs)-1].fork-runs[0].fork) / 1e9
	b.res(scen, sup, "restarts_per_s", float64(len(runs)-1)/span)
	if len(fork) > 0 {
		b.res(scen, sup, "crash_to_fork_ms", median(fork))
		b.res(scen, sup, "crash_to_fork_p90_ms", percentile(fork, 0.9))
	}
	if len(execd) > 0 {
		b.res(scen, sup, "crash_to_exec_ms", median(execd))
	}
	if len(life) > 0 {
		b.res(scen, sup, "exec_to_exit_ms", median(life))
	}
	return nil
}

// ---------------------------------------------------------------- startup

// readyWatch counts files created in dir (inotify) and reports the time
// the want-th distinct one appeared.
type readyWatch struct {
	f    *os.File
	done chan time.Time
}

func watchReady(dir string, want int) (*readyWatch, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	w := &readyWatch{f: os.NewFile(uintptr(fd), "inotify"), done: make(chan time.Time, 1)}
	go func() {
		seen := map[string]bool{}
		buf := make([]byte, 64<<10)
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				l := int(uint32(buf[off+12]) | uint32(buf[off+13])<<8 | uint32(buf[off+14])<<16 | uint32(buf[off+15])<<24)
				name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+l]), "\x00")
				off += syscall.SizeofInotifyEvent + l
				if !seen[name] {
					seen[name] = true
					if len(seen) == want {
						w.done <- now
						return
					}
				}
			}
		}
	}()
	return w, nil
}

// shellStarter writes the floor of starting services: one /bin/sh that
// starts every command in the background, then waits.
func shellStarter(path string, svcs []svc) error {
	var b strings.Builder
	for _, s := range svcs {
		fmt.Fprintf(&b, "%s &\n", s.cmdline())
	}
	b.WriteString("wait\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func readySvcs(dir string, n int, chain bool) []svc {
	svcs := make([]svc, n)
	for i := range svcs {
		svcs[i] = svc{name: fmt.Sprintf("s%04d", i+1), sh: fmt.Sprintf("touch %s/ready.%d; exec /bin/sleep infinity", dir, i+1), restart: true}
		if chain && i > 0 {
			svcs[i].after = svcs[i-1].name
		}
	}
	return svcs
}

// startTimed starts sup with svcs (or, for the floor, forks them itself,
// or from one /bin/sh when shell is set) and returns the time until n ready
// files exist.
func (b *bench) startTimed(scen, sup string, n int, chain, shell bool) (float64, error) {
	dir, err := b.work(scen, sup)
	if err != nil {
		return 0, err
	}
	ready := filepath.Join(dir, "ready")
	if err := os.MkdirAll(ready, 0o755); err != nil {
		return 0, err
	}
	svcs := readySvcs(ready, n, chain)
	w, err := watchReady(ready, n)
	if err != nil {
		return 0, err
	}
	defer w.f.Close()
	var c *child
	var st *setup
	stop := syscall.SIGTERM
	switch {
	case sup == "floor" && shell:
		script := filepath.Join(dir, "start.sh")
		if err := shellStarter(script, svcs); err != nil {
			return 0, err
		}
		c, err = spawn([]string{"/bin/sh", script}, spawnOpts{})
	case sup == "floor":
		// the physical floor: fork/exec every service directly
		t0 := time.Now()
		for _, s := range svcs {
			if _, err := spawn([]string{"/bin/sh", "-c", s.sh}, spawnOpts{}); err != nil {
				return 0, err
			}
		}
		defer killAll(10 * time.Second)
		select {
		case t := <-w.done:
			return float64(t.Sub(t0).Microseconds()) / 1e3, nil
		case <-time.After(60 * time.Second):
			return 0, fmt.Errorf("not all %d services ready after 60 s", n)
		}
	default:
		c, st, err = b.launch(sup, svcs, dir, spawnOpts{})
		if st != nil {
			stop = st.stop
			b.keepConfig(fmt.Sprintf("%s.%s", scen, sup), st, dir, 2)
		}
	}
	if err != nil {
		return 0, err
	}
	defer c.stop(stop, 20*time.Second)
	select {
	case t := <-w.done:
		return float64(t.Sub(c.start).Microseconds()) / 1e3, nil
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("not all %d services ready after 60 s", n)
	}
}

func (b *bench) startup(sup string, n int) error {
	if !multi(sup) && sup != "floor" {
		b.res("startup", sup, fmt.Sprintf("startup_ms.n%d", n), "n/a")
		return nil
	}
	if !available(sup, b.k) {
		b.res("startup", sup, "status", "unavailable")
		return nil
	}
	ms, err := b.startTimed("startup", sup, n, false, false)
	if err != nil {
		return err
	}
	b.res("startup", sup, fmt.Sprintf("startup_ms.n%d", n), ms)
	if sup == "floor" {
		if ms, err = b.startTimed("startup", sup, n, false, true); err != nil {
			return err
		}
		b.res("startup", sup, fmt.Sprintf("shell_ms.n%d", n), ms)
	}
	return nil
}

// chain: CHAIN_N services, each start-after the one before (horust only;
// the floor starts as many from a shell with no ordering).
func (b *bench) chain(sup string) error {
	if !isHorust(sup) && sup != "floor" {
		b.res("chain", sup, "chain_ms", "n/a")
		return nil
	}
	ms, err := b.startTimed("chain", sup, b.k.chainN, sup != "floor", false)
	if err != nil {
		return err
	}
	b.res("chain", sup, "chain_ms", ms)
	return nil
}

// ---------------------------------------------------------------- shutdown

// shutdown: n services that exit on SIGTERM; once all run (+1 s), the stop
// signal; times to the supervisor's exit and to the last service's exit,
// from kernel process events.
func (b *bench) shutdown(sup string, n int) error {
	const scen = "shutdown"
	if !multi(sup) && sup != "floor" {
		b.res(scen, sup, "shutdown_ms", "n/a")
		return nil
	}
	if !available(sup, b.k) {
		b.res(scen, sup, "status", "unavailable")
		return nil
	}
	dir, err := b.work(scen, sup)
	if err != nil {
		return err
	}
	svcs := make([]svc, n)
	for i := range svcs {
		svcs[i] = svc{name: fmt.Sprintf("s%d", i+1), argv: []string{"/bin/sleep", "infinity"}, restart: true}
	}
	var root *child
	var kids []*child
	stop := syscall.SIGTERM
	if sup == "floor" {
		for i := 0; i < n; i++ {
			c, err := spawn([]string{"/bin/sleep", "infinity"}, spawnOpts{})
			if err != nil {
				return err
			}
			kids = append(kids, c)
		}
	} else {
		var st *setup
		root, st, err = b.launch(sup, svcs, dir, spawnOpts{})
		if err != nil {
			return err
		}
		stop = st.stop
		if err := waitServices(root, "sleep", n, 120*time.Second); err != nil {
			root.stop(stop, 10*time.Second)
			return err
		}
	}
	time.Sleep(time.Second)
	var svcPids []int
	for _, p := range subtree(scanProcs(), os.Getpid(), false) {
		if p.comm == "sleep" && p.state != 'Z' {
			svcPids = append(svcPids, p.pid)
		}
	}
	if len(svcPids) < n {
		return fmt.Errorf("%d/%d services up", len(svcPids), n)
	}
	rec, err := startRecorder()
	if err != nil {
		return err
	}
	t0 := monoNS()
	if root != nil {
		_ = syscall.Kill(root.pid, stop)
	} else {
		for _, c := range kids {
			_ = syscall.Kill(c.pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		left := countLive(subtree(scanProcs(), os.Getpid(), false), "sleep")
		if left == 0 && (root == nil || root.exited()) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	evs, lost := rec.stop()
	if lost {
		b.res(scen, sup, "events_lost", 1)
	}
	var last uint64
	gone := 0
	set := map[int]bool{}
	for _, p := range svcPids {
		set[p] = true
	}
	for _, e := range evs {
		if e.what == evExit && e.pid == e.tgid && set[e.pid] {
			gone++
			last = max(last, e.ts)
		}
	}
	if gone < len(svcPids) {
		b.res(scen, sup, "services_left", len(svcPids)-gone)
		b.res(scen, sup, "services_gone_ms", "timeout")
	} else {
		b.res(scen, sup, "services_gone_ms", float64(last-t0)/1e6)
	}
	if root == nil {
		b.res(scen, sup, "shutdown_ms", float64(last-t0)/1e6)
		return nil
	}
	if te := exitTime(evs, root.pid); te > 0 && root.exited() {
		b.res(scen, sup, "shutdown_ms", float64(te-t0)/1e6)
		b.res(scen, sup, "exit_code", root.exit.status.ExitStatus())
	} else {
		b.res(scen, sup, "shutdown_ms", "timeout")
	}
	root.stop(stop, 10*time.Second)
	return nil
}

// ---------------------------------------------------------------- reap

// reap: the supervisor is PID 1 of a new pid namespace; its one service
// starts REAP_N orphans (`sh -c "sleep 0.01 &"`), touches a marker and
// idles. From the host's /proc, every 10 ms: most zombies at once, and the
// time from the marker until no zombie and no orphan is left.
func (b *bench) reap(sup string) error {
	const scen = "reap"
	if !available(sup, b.k) {
		b.res(scen, sup, "status", "unavailable")
		return nil
	}
	dir, err := b.work(scen, sup)
	if err != nil {
		return err
	}
	idle := filepath.Join(dir, "idle")
	if err := os.Symlink("/bin/sleep", idle); err != nil {
		return err
	}
	marker := filepath.Join(dir, "spawned")
	script := filepath.Join(dir, "orphans.sh")
	body := fmt.Sprintf("i=0\nwhile [ $i -lt %d ]; do\n\t/bin/sh -c '/bin/sleep 0.01 &'\n\ti=$((i+1))\ndone\ntouch %s\nexec %s infinity\n", b.k.reapN, marker, idle)
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		return err
	}
	s := svc{name: "orphans", argv: []string{"/bin/sh", script}, restart: false}
	var argv []string
	stop := syscall.SIGTERM
	if sup == "floor" {
		argv = []string{b.k.self, "minit", "--", "/bin/sh", script}
	} else {
		st, err := render(sup, []svc{s}, filepath.Join(dir, "conf"), b.k)
		if err != nil {
			return err
		}
		b.keepConfig("reap."+sup, st, dir, 4)
		argv = slices.Clone(st.argv)
		if sup == "horust-nocg" {
			argv[0] = b.k.horustCopy
		}
		stop = st.stop
	}
	argv = append([]string{"unshare", "--pid", "--fork", "--kill-child", "--mount-proc"}, argv...)
	c, err := spawn(argv, spawnOpts{stderr: filepath.Join(dir, "sup.err")})
	if err != nil {
		return err
	}
	defer func() {
		// stop PID 1 of the namespace gracefully (horust removes its cgroups)
		for _, p := range subtree(scanProcs(), c.pid, false) {
			if p.ppid == c.pid {
				_ = syscall.Kill(p.pid, stop)
			}
		}
		c.wait(10 * time.Second)
		killAll(10 * time.Second)
	}()
	maxZ := 0
	var tMarker time.Time
	deadline := time.Now().Add(300 * time.Second)
	for {
		z := 0
		for _, p := range subtree(scanProcs(), c.pid, false) {
			if p.state == 'Z' {
				z++
			}
		}
		maxZ = max(maxZ, z)
		now := time.Now()
		if _, err := os.Stat(marker); err == nil {
			// No orphan is made after the marker: follow the ones left
			// (zombies and live sleeps) pid by pid, every millisecond,
			// until none is left.
			tMarker = now
			b.res(scen, sup, "spawn_ms", float64(now.Sub(c.start).Microseconds())/1e3)
			left := map[int]bool{}
			for _, p := range subtree(scanProcs(), c.pid, false) {
				if p.state == 'Z' || p.comm == "sleep" {
					left[p.pid] = true
				}
			}
			buf := make([]byte, 512)
			for end := now.Add(30 * time.Second); len(left) > 0 && time.Now().Before(end); {
				z := 0
				for pid := range left {
					f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
					if err != nil {
						delete(left, pid)
						continue
					}
					k, _ := f.Read(buf)
					f.Close()
					if p, ok := parseStat(buf[:max(k, 0)]); ok && p.state == 'Z' {
						z++
					}
				}
				maxZ = max(maxZ, z)
				if len(left) > 0 {
					time.Sleep(time.Millisecond)
				}
			}
			if len(left) > 0 {
				b.res(scen, sup, "reap_ms", "timeout")
				b.res(scen, sup, "zombies_left", len(left))
			} else {
				b.res(scen, sup, "reap_ms", float64(time.Since(tMarker).Microseconds())/1e3)
				b.res(scen, sup, "total_ms", float64(time.Since(c.start).Microseconds())/1e3)
			}
			b.res(scen, sup, "max_zombies", maxZ)
			return nil
		}
		if c.exited() {
			return fmt.Errorf("the namespace's PID 1 exited early (%v)", c.exit.status)
		}
		if now.After(deadline) {
			return errors.New("the service did not finish spawning orphans")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- log

// logRun: one service writes LOG_BYTES of 100-byte lines, in LOG_CHUNK
// writes, then lingers. mode direct: its stdout is a file (opened by the
// supervisor, or the supervisor's own stdout); rotate: chunks of
// LOG_ROTATE_MB; prefix: "<name> | " lines on horust's stdout, a file. The
// floor is the same writer opening the file itself. MB/s from the writer's
// first write until every byte is in the files.
func (b *bench) logRun(sup, mode string) error {
	const scen = "log"
	metric := func(m string) string { return m + "." + mode }
	ok := false
	switch mode {
	case "direct":
		ok = sup != "horust-nocg"
	case "rotate":
		ok = sup == "horust" || sup == "s6" || sup == "runit" || sup == "supervisord"
	case "prefix":
		ok = sup == "horust"
	}
	if !ok {
		b.res(scen, sup, metric("mb_per_s"), "n/a")
		return nil
	}
	if !available(sup, b.k) {
		b.res(scen, sup, "status", "unavailable")
		return nil
	}
	dir, err := b.work(scen, sup)
	if err != nil {
		return err
	}
	logd, err := os.MkdirTemp(b.k.logDir, "hbench-log-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logd)
	// warm-up: make the file system allocate and free 200 MB first
	warm := filepath.Join(logd, "warm")
	if f, err := os.Create(warm); err == nil {
		blk := make([]byte, 1<<20)
		for i := 0; i < 200; i++ {
			_, _ = f.Write(blk)
		}
		f.Close()
		os.Remove(warm)
	}
	writer := filepath.Join(dir, "logwriter")
	if err := os.Symlink(b.k.self, writer); err != nil {
		return err
	}
	file := filepath.Join(logd, "out.log")
	report := filepath.Join(dir, "report")
	wargv := []string{writer, "writer", "-bytes", fmt.Sprint(b.k.logBytes), "-chunk", fmt.Sprint(b.k.logChunk), "-report", report}
	s := svc{name: "writer", argv: append(slices.Clone(wargv), "-linger")}
	expect := b.k.logBytes
	o := spawnOpts{appendOut: true}
	switch {
	case sup == "floor":
	case mode == "prefix":
		s.prefix = true
		o.stdout = file
		lines := b.k.logBytes / 100
		expect = lines * (100 + int64(len(s.name+".toml | ")))
	case mode == "rotate" && (sup == "s6" || sup == "runit"):
		s.logDir, s.rotate = logd, b.k.logRotate
	case mode == "rotate":
		s.stdout, s.rotate = file, b.k.logRotate
	case isHorust(sup) || sup == "supervisord":
		s.stdout = file
	default: // the supervisor's own stdout is the file; the service inherits it
		o.stdout = file
	}
	var c *child
	if sup == "floor" {
		c, err = spawn(append(wargv, "-o", file), spawnOpts{stderr: filepath.Join(dir, "err")})
	} else {
		var st *setup
		c, st, err = b.launch(sup, []svc{s}, dir, o)
		if st != nil {
			b.keepConfig(fmt.Sprintf("log.%s.%s", mode, sup), st, dir, 4)
		}
	}
	if err != nil {
		return err
	}
	defer c.stop(syscall.SIGTERM, 10*time.Second)
	size := func() int64 {
		var t int64
		ents, _ := os.ReadDir(logd)
		for _, e := range ents {
			switch e.Name() {
			case "lock", "state", "config":
				continue
			}
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				t += fi.Size()
			}
		}
		return t
	}
	deadline := time.Now().Add(600 * time.Second)
	var rep []byte
	for {
		if rep, err = os.ReadFile(report); err == nil {
			break
		}
		if time.Now().After(deadline) || (c.exited() && sup != "floor") {
			return fmt.Errorf("the writer did not finish (%d bytes written)", size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	var ws, we, nb int64
	if _, err := fmt.Sscan(string(rep), &ws, &we, &nb); err != nil {
		return fmt.Errorf("writer report %q: %w", rep, err)
	}
	end := time.Unix(0, we)
	got := size()
	if got < expect {
		last, lastGrow := got, time.Now()
		for {
			time.Sleep(time.Millisecond)
			got = size()
			now := time.Now()
			if got >= expect {
				end = now
				break
			}
			if got > last {
				last, lastGrow = got, now
			} else if now.Sub(lastGrow) > 5*time.Second {
				break
			}
		}
	}
	complete := 0
	if got >= expect {
		complete = 1
	}
	secs := end.Sub(time.Unix(0, ws)).Seconds()
	b.res(scen, sup, metric("complete"), complete)
	b.res(scen, sup, metric("file_bytes"), got)
	if complete == 1 {
		b.res(scen, sup, metric("mb_per_s"), float64(b.k.logBytes)/1e6/secs)
	} else {
		b.res(scen, sup, metric("mb_per_s"), "fail")
	}
	if sup != "floor" {
		var cpu float64
		if isHorust(sup) {
			cpu = procCPUSeconds(c.pid)
		} else {
			for _, p := range subtree(scanProcs(), c.pid, true) {
				if p.comm != "logwriter" && p.state != 'Z' {
					cpu += procCPUSeconds(p.pid)
				}
			}
		}
		b.res(scen, sup, metric("cpu_s_per_gb"), cpu/(float64(b.k.logBytes)/1e9))
	}
	return nil
}

// ---------------------------------------------------------------- oneshot

// oneshot: `SUP -- /bin/true` ONESHOT_N times back to back; median wall
// time, fork to reaped. The floor column also runs the minimal static Go
// program that forks, execs and waits (bench/oneshotfloor, metrics go_*):
// the least a supervisor written in Go can cost.
func (b *bench) oneshot(sup string) error {
	const scen = "oneshot"
	var argv []string
	switch sup {
	case "floor":
		argv = []string{"/bin/true"}
	case "tini":
		argv = []string{"tini", "--", "/bin/true"}
	case "dumb-init":
		argv = []string{"dumb-init", "/bin/true"}
	case "horust":
		argv = []string{b.k.horust, "--", "/bin/true"}
	case "horust-nocg":
		argv = []string{b.k.horustCopy, "--no-cgroups", "--", "/bin/true"}
	default:
		b.res(scen, sup, "median_us", "n/a")
		return nil
	}
	if !available(sup, b.k) {
		b.res(scen, sup, "status", "unavailable")
		return nil
	}
	dir, err := b.work(scen, sup)
	if err != nil {
		return err
	}
	if err := b.oneshotLoop(sup, "", argv, dir); err != nil {
		return err
	}
	if sup == "floor" && b.k.goFloor != "" {
		return b.oneshotLoop(sup, "go_", []string{b.k.goFloor, "/bin/true"}, dir)
	}
	return nil
}

// oneshotLoop runs argv through `hbench oneshot-loop` and records its
// figures for sup, each metric's name prefixed with prefix.
func (b *bench) oneshotLoop(sup, prefix string, argv []string, dir string) error {
	const scen = "oneshot"
	outp := filepath.Join(dir, prefix+"out")
	c, err := spawn(append([]string{b.k.self, "oneshot-loop", "-n", fmt.Sprint(b.k.oneshotN), "-warmup", "5", "--"}, argv...),
		spawnOpts{stdout: outp, stderr: filepath.Join(dir, prefix+"err")})
	if err != nil {
		return err
	}
	if !c.wait(300 * time.Second) {
		return errors.New("oneshot loop timed out")
	}
	if b.rep == 1 {
		_ = os.MkdirAll(filepath.Join(b.out, "configs"), 0o755)
		_ = os.WriteFile(filepath.Join(b.out, "configs", "oneshot."+sup+"."+prefix+"txt"), []byte(b.generic("argv: "+strings.Join(argv, " ")+"\n")), 0o644)
	}
	f, err := os.Open(outp)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) == 2 {
			b.res(scen, sup, prefix+fl[0], fl[1])
		}
	}
	return nil
}
