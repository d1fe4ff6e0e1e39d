package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// results holds every value of every repetition: scen → sup → metric.
type results struct {
	vals  map[string]map[string]map[string][]float64
	words map[string]map[string]map[string]string // last non-numeric value (n/a, fail, timeout)
	sups  []string
	reps  int
}

func (r *results) put(scen, sup, metric, v string) {
	if r.vals[scen] == nil {
		r.vals[scen] = map[string]map[string][]float64{}
		r.words[scen] = map[string]map[string]string{}
	}
	if r.vals[scen][sup] == nil {
		r.vals[scen][sup] = map[string][]float64{}
		r.words[scen][sup] = map[string]string{}
	}
	if !contains(r.sups, sup) {
		r.sups = append(r.sups, sup)
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		r.vals[scen][sup][metric] = append(r.vals[scen][sup][metric], f)
	} else {
		r.words[scen][sup][metric] = v
	}
}

func readResults(paths ...string) (*results, error) {
	r := &results{vals: map[string]map[string]map[string][]float64{}, words: map[string]map[string]map[string]string{}}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			switch {
			case len(fl) >= 2 && fl[0] == "#" && strings.HasPrefix(fl[1], "rep="):
				n, _ := strconv.Atoi(strings.TrimPrefix(fl[1], "rep="))
				r.reps = max(r.reps, n)
			case len(fl) == 5 && fl[0] == "RESULT":
				r.put(fl[1], fl[2], fl[3], fl[4])
			case len(fl) == 4 && fl[0] == "RESULT": // RESULT health <metric> <value>
				r.put(fl[1], "horust", fl[2], fl[3])
			}
		}
		f.Close()
	}
	return r, nil
}

// med is the median of a cell and whether it has numbers.
func (r *results) med(scen, sup, metric string) (float64, bool) {
	xs := r.vals[scen][sup][metric]
	if len(xs) == 0 {
		return 0, false
	}
	return median(xs), true
}

// cell is a cell's text: the median, or the word (n/a, fail, timeout).
func (r *results) cell(scen, sup, metric string) string {
	if v, ok := r.med(scen, sup, metric); ok {
		return num(v)
	}
	if w := r.words[scen][sup][metric]; w != "" {
		return w
	}
	if w := r.words[scen][sup]["status"]; w != "" {
		return w
	}
	return ""
}

func num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func ratio(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f×", v)
	case v >= 10:
		return fmt.Sprintf("%.1f×", v)
	default:
		return fmt.Sprintf("%.2f×", v)
	}
}

// metrics lists the metrics of a scenario in a stable order: the given
// ones first, then the rest sorted.
func (r *results) metrics(scen string, first []string) []string {
	seen := map[string]bool{}
	for _, m := range r.vals[scen] {
		for k := range m {
			// up_ms: the idle instances are waited for in turn, so it is
			// not a start-up time (the startup scenario is)
			if !strings.HasPrefix(k, "up_ms") {
				seen[k] = true
			}
		}
	}
	for _, m := range r.words[scen] {
		for k := range m {
			if k != "status" {
				seen[k] = true
			}
		}
	}
	var out []string
	for _, f := range first {
		if seen[f] {
			out = append(out, f)
			delete(seen, f)
		}
	}
	var rest []string
	for k := range seen {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// table writes one scenario as markdown: a row per metric, a column per
// supervisor, each cell the median and its ratio to horust's.
func (r *results) table(b *strings.Builder, scen string, metrics []string) {
	var sups []string
	for _, s := range allSups {
		if r.vals[scen][s] != nil || r.words[scen][s] != nil {
			sups = append(sups, s)
		}
	}
	if len(sups) == 0 {
		b.WriteString("(not run)\n\n")
		return
	}
	fmt.Fprintf(b, "| metric | %s |\n|---|%s\n", strings.Join(sups, " | "), strings.Repeat("---:|", len(sups)))
	for _, m := range metrics {
		fmt.Fprintf(b, "| %s |", m)
		h, hok := r.med(scen, "horust", m)
		for _, s := range sups {
			c := r.cell(scen, s, m)
			if v, ok := r.med(scen, s, m); ok && hok && s != "horust" && h != 0 && v != 0 && ratioed(m) {
				c += " (" + ratio(v/h) + ")"
			}
			fmt.Fprintf(b, " %s |", c)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// ratioed reports whether a ratio to horust means something for metric m
// (not for counts, exit codes and checks).
func ratioed(m string) bool {
	for _, p := range []string{"procs", "threads", "runs", "starts_counted", "exit_code", "complete", "file_bytes", "fails", "events_lost", "services_left", "zombies_left"} {
		if strings.HasPrefix(m, p) {
			return false
		}
	}
	return true
}

// target is one number to reach.
type target struct {
	what   string
	value  string // horust's figure
	versus string // what it is compared with
	ratio  string
	met    string
}

func (r *results) targets() []target {
	var ts []target
	get := func(scen, sup, m string) (float64, bool) { return r.med(scen, sup, m) }
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	add := func(what string, hv float64, hok bool, unit, versus string, rv float64, rok bool, pass func(h, ref float64) bool) {
		t := target{what: what, versus: versus}
		if !hok {
			t.value, t.met = "missing", "not measured"
			ts = append(ts, t)
			return
		}
		t.value = num(hv) + unit
		if rok {
			if rv != 0 {
				t.ratio = ratio(hv / rv)
			}
			t.versus = fmt.Sprintf("%s: %s%s", versus, num(rv), unit)
		} else if versus != "" {
			t.versus = versus + ": missing"
		}
		t.met = verdict(pass(hv, rv))
		ts = append(ts, t)
	}
	h, hok := get("restart", "horust", "restarts_per_s")
	f, fok := get("restart", "floor", "restarts_per_s")
	add("restarts/s of a service that exits at once, backoff 0s, min-uptime 0s: ≥ 0.5× the bare fork/exec/wait loop", h, hok, "/s", "floor", f, fok,
		func(h, f float64) bool { return fok && h >= 0.5*f })
	h, hok = get("restart", "horust", "crash_to_fork_ms")
	add("median crash → new process < 2 ms", h, hok, " ms", "", 0, false, func(h, _ float64) bool { return h < 2 })
	h, hok = get("startup", "horust", "startup_ms.n100")
	f, fok = get("startup", "floor", "startup_ms.n100")
	add("start 100 services until all run: ≤ 1.2× the floor (direct fork/exec)", h, hok, " ms", "floor", f, fok,
		func(h, f float64) bool { return fok && h <= 1.2*f })
	f2, f2ok := get("startup", "floor", "shell_ms.n100")
	add("the same against starting them from one /bin/sh: ≤ 1.2×", h, hok, " ms", "shell floor", f2, f2ok,
		func(h, f float64) bool { return f2ok && h <= 1.2*f })
	h, hok = get("startup", "horust", "startup_ms.n1000")
	add("1,000 services all running within 1.5 s", h, hok, " ms", "", 0, false, func(h, _ float64) bool { return h <= 1500 })
	h, hok = get("shutdown", "horust", "shutdown_ms")
	add("stop 100 services: SIGTERM → horust exited < 50 ms", h, hok, " ms", "", 0, false, func(h, _ float64) bool { return h < 50 })
	h, hok = get("chain", "horust", "chain_ms")
	add("chain of 20 start-after services all running < 100 ms", h, hok, " ms", "", 0, false, func(h, _ float64) bool { return h < 100 })
	h, hok = get("reap", "horust", "total_ms")
	f, fok = get("reap", "floor", "total_ms")
	add("as PID 1, 2,000 orphans: all reaped (start → none left) within 1.2× the floor", h, hok, " ms", "floor", f, fok,
		func(h, f float64) bool { return fok && h <= 1.2*f })
	_, hok = get("reap", "horust", "max_zombies")
	add("as PID 1: never more than 10 zombies at once (largest of the repetitions)", maxOf(r.vals["reap"]["horust"]["max_zombies"]), hok, "", "", 0, false,
		func(h, _ float64) bool { return h <= 10 })
	h, hok = get("idle", "horust", "ctxsw.n100")
	add("idle, 100 services: zero context switches of horust's threads in the window", h, hok, "", "", 0, false, func(h, _ float64) bool { return h == 0 })
	h, hok = get("idle", "horust", "cpu_ms.n100")
	add("idle, 100 services: no CPU time in the window", h, hok, " ms", "", 0, false, func(h, _ float64) bool { return h == 0 })
	h, hok = get("idle", "horust", "pss_kb.n100")
	add("PSS with 100 services < 8 MB (8192 kB)", h, hok, " kB", "", 0, false, func(h, _ float64) bool { return h < 8192 })
	h, hok = get("idle", "horust", "pss_kb.n1000")
	add("PSS with 1,000 services < 16 MB (16384 kB)", h, hok, " kB", "", 0, false, func(h, _ float64) bool { return h < 16384 })
	h, hok = get("oneshot", "horust", "median_us")
	f, fok = get("oneshot", "tini", "median_us")
	add("one-shot `horust -- /bin/true` within 1.3× `tini -- /bin/true`", h, hok, " µs", "tini", f, fok,
		func(h, f float64) bool { return fok && h <= 1.3*f })
	g, gok := get("oneshot", "floor", "go_median_us")
	add("the same for the minimal Go program that forks, execs and waits (bench/oneshotfloor): the floor for a Go supervisor", g, gok, " µs", "tini", f, fok,
		func(g, f float64) bool { return fok && g <= 1.3*f })
	f, fok = get("log", "floor", "mb_per_s.direct")
	for _, m := range []struct {
		mode string
		min  float64
		what string
	}{{"direct", 0.95, "log, direct file: 100 % of the program writing the file itself (met: ≥ 95 %, the noise of this machine)"},
		{"rotate", 0.7, "log, rotation: ≥ 70 % of that"}, {"prefix", 0.7, "log, prefix: ≥ 70 % of that"}} {
		h, hok = get("log", "horust", "mb_per_s."+m.mode)
		lim := m.min
		add(m.what, h, hok, " MB/s", "floor", f, fok, func(h, f float64) bool { return fok && h >= lim*f })
	}
	for _, mode := range []string{"rotate", "prefix"} {
		h, hok = get("log", "horust", "cpu_s_per_gb."+mode)
		add("log, "+mode+": horust CPU < 0.5 s per GB", h, hok, " s/GB", "", 0, false, func(h, _ float64) bool { return h < 0.5 })
	}
	return ts
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// cmdReport writes the summary of a run (machine, targets, plot) into the
// page a person reads, between the markers (creating the file when
// missing), the per-scenario tables into a file of their own, and the PNG.
func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	out := fs.String("out", "", "results directory (raw.txt, meta.txt, versions.txt, configs/, micro.txt)")
	md := fs.String("md", "", "markdown page to update between the markers: machine, targets, plot")
	tables := fs.String("tables", "", "markdown file to write whole: every scenario's table, spread, versions, configurations")
	png := fs.String("png", "", "PNG file to write")
	_ = fs.Parse(args)
	if *out == "" || *md == "" || *tables == "" {
		return errors.New("-out, -md and -tables are required")
	}
	r, err := readResults(filepath.Join(*out, "raw.txt"), filepath.Join(*out, "health.txt"))
	if err != nil {
		return err
	}
	if *png != "" {
		if err := plot(r, *png); err != nil {
			return err
		}
	}
	if err := os.WriteFile(*tables, []byte(r.tablesPage(*out)), 0o644); err != nil {
		return err
	}
	return spliceGenerated(*md, r.summary(*out, relPath(*md, *png), relPath(*md, *tables)))
}

// relPath is how the markdown file md refers to the file target.
func relPath(md, target string) string {
	rel, err := filepath.Rel(filepath.Dir(md), target)
	if err != nil {
		return target
	}
	return filepath.ToSlash(rel)
}

const (
	beginMark = "<!-- BEGIN GENERATED (bench/run.sh) -->"
	endMark   = "<!-- END GENERATED -->"
)

func spliceGenerated(path, gen string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	var doc string
	if i >= 0 && j > i {
		doc = s[:i] + beginMark + "\n" + gen + s[j:]
	} else {
		doc = s + "\n" + beginMark + "\n" + gen + endMark + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

func readKV(path string) map[string]string {
	m := map[string]string{}
	data, _ := os.ReadFile(path)
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			m[k] = v
		}
	}
	return m
}

// runLine says when the run was and how loaded the machine was.
func (r *results) runLine(out string) string {
	meta := readKV(filepath.Join(out, "meta.txt"))
	return fmt.Sprintf("Run of %s: %d repetitions, %s s, load average (1, 5, 15 min) %s at the start and %s at the end.\n\n",
		meta["started"], r.reps, meta["elapsed_s"], meta["load_start"], meta["load_end"])
}

// summary is the generated part of the page a person reads: the run, the
// machine, the targets and the plot, and where the tables are.
func (r *results) summary(out, pngRef, tablesRef string) string {
	var b strings.Builder
	b.WriteString(r.runLine(out))
	vers := readKV(filepath.Join(out, "versions.txt"))
	fmt.Fprintf(&b, "Machine: %s, %s, %s, kernel %s. horust: %s.\n\n", vers["CPU"], vers["memory"], vers["OS"], vers["kernel"], vers["horust"])
	b.WriteString("| target | horust | compared with | ratio | verdict |\n|---|---:|---|---:|---|\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.what, t.value, t.versus, t.ratio, t.met)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "![restart latency and memory per service count](%s)\n\n", pngRef)
	fmt.Fprintf(&b, "Every scenario's table (all supervisors, every metric), the spread over the repetitions, the "+
		"versions, the knobs and the exact configurations of this run: [%s](%s).\n", filepath.Base(tablesRef), tablesRef)
	return b.String()
}

// tablesPage is the whole generated file of per-scenario tables.
func (r *results) tablesPage(out string) string {
	var b strings.Builder
	b.WriteString("# Benchmark tables of the last full run\n\n" +
		"Generated by `bench/run.sh` (`hbench report`): do not edit. The page to read, with the method, " +
		"the targets and the findings, is [benchmarks.md](benchmarks.md).\n\n")
	b.WriteString(r.runLine(out))
	b.WriteString("Every figure is the **median over the repetitions**, measured in this one run on a shared, noisy 2-core VM: " +
		"compare columns of this run with each other (the ratios in parentheses are to horust's median), not with other runs.\n\n")

	sections := []struct {
		scen, title, note string
		first             []string
	}{
		{"idle", "Idle footprint", "PSS and RSS (kB) summed over the supervisor's own processes (its process tree minus the services); context switches and CPU time (ms) of all their threads during the idle window; `.nN` = with N services.",
			[]string{"pss_kb.n1", "pss_kb.n10", "pss_kb.n100", "pss_kb.n1000", "ctxsw.n1", "ctxsw.n10", "ctxsw.n100", "ctxsw.n1000", "cpu_ms.n1", "cpu_ms.n10", "cpu_ms.n100", "cpu_ms.n1000"}},
		{"restart", "Restart of a service that exits at once", "Smallest delay each allows (see the enforced minimums). Times from kernel process events: the old process's exit to the fork (and the exec) of the new one.",
			[]string{"restarts_per_s", "crash_to_fork_ms", "crash_to_exec_ms", "crash_to_fork_p90_ms"}},
		{"startup", "Start-up of N services until all run", "ms from launching the supervisor until every service has created its ready file. floor: `startup_ms` forks them directly, `shell_ms` from one /bin/sh with `&`.",
			[]string{"startup_ms.n100", "startup_ms.n1000", "shell_ms.n100", "shell_ms.n1000"}},
		{"shutdown", "Shutdown of N services", "ms from the stop signal (SIGTERM; SIGHUP for runsvdir) to the supervisor's exit and to the last service's exit (kernel process events).",
			[]string{"shutdown_ms", "services_gone_ms", "exit_code"}},
		{"chain", "Chain of start-after services", "ms until all of a chain of services, each `start-after` the previous, run. Only horust can express it (s6 alone, runit and supervisord have no start dependencies); the floor starts as many with no ordering.",
			[]string{"chain_ms"}},
		{"reap", "Reaping orphans as PID 1", "The supervisor is PID 1 of a new pid namespace; its service leaves orphans behind. total_ms = launch → no zombie and no orphan left; reap_ms = the spawner's last orphan → none left; max_zombies = most zombies seen at once.",
			[]string{"total_ms", "reap_ms", "max_zombies", "spawn_ms"}},
		{"log", "Log throughput", "MB/s of payload from the writer's first write until every byte is in the file(s); CPU = the supervisor's processes (for horust, horust itself) per GB written.",
			[]string{"mb_per_s.direct", "mb_per_s.rotate", "mb_per_s.prefix", "cpu_s_per_gb.direct", "cpu_s_per_gb.rotate", "cpu_s_per_gb.prefix"}},
		{"oneshot", "One-shot overhead", "µs per run of `SUP -- /bin/true`, fork to reaped, median of the runs. The floor is `/bin/true` alone; its go_* figures are the minimal static Go program that forks, execs and waits for `/bin/true` (bench/oneshotfloor).",
			[]string{"median_us", "p90_us", "go_median_us", "go_p90_us"}},
		{"health", "Health checks (bench/health)", "Figures printed by bench/health, one run.", nil},
	}
	for _, s := range sections {
		if r.vals[s.scen] == nil && r.words[s.scen] == nil {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", s.title, s.note)
		r.table(&b, s.scen, r.metrics(s.scen, s.first))
	}

	b.WriteString("## Spread\n\n(max − min) / median over the repetitions of the main metrics, in percent: how noisy each cell was.\n\n")
	b.WriteString("| scenario / metric | " + strings.Join(allSups, " | ") + " |\n|---|" + strings.Repeat("---:|", len(allSups)) + "\n")
	for _, sm := range [][2]string{{"idle", "pss_kb.n100"}, {"restart", "restarts_per_s"}, {"restart", "crash_to_fork_ms"}, {"startup", "startup_ms.n100"},
		{"shutdown", "shutdown_ms"}, {"chain", "chain_ms"}, {"reap", "total_ms"}, {"log", "mb_per_s.direct"}, {"log", "mb_per_s.rotate"},
		{"log", "mb_per_s.prefix"}, {"oneshot", "median_us"}} {
		fmt.Fprintf(&b, "| %s / %s |", sm[0], sm[1])
		for _, s := range allSups {
			xs := r.vals[sm[0]][s][sm[1]]
			if len(xs) < 2 || median(xs) == 0 {
				b.WriteString(" |")
				continue
			}
			fmt.Fprintf(&b, " %.0f%% |", 100*(slices.Max(xs)-slices.Min(xs))/median(xs))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	if data, err := os.ReadFile(filepath.Join(out, "micro.txt")); err == nil && len(data) > 0 {
		b.WriteString("## Go micro-benchmarks\n\n`go test -run '^$' -bench . -benchmem` of the hot paths (input for benchstat):\n\n```\n")
		b.Write(data)
		b.WriteString("```\n\n")
	}

	b.WriteString("## Machine and versions\n\n| component | version |\n|---|---|\n")
	vers := readKV(filepath.Join(out, "versions.txt"))
	var keys []string
	for k := range vers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %s |\n", k, vers[k])
	}
	b.WriteString("\nKnobs of this run:\n\n```\n")
	data, _ := os.ReadFile(filepath.Join(out, "meta.txt"))
	for line := range strings.SplitSeq(string(data), "\n") {
		if line != "" && !strings.Contains(line, ": ") {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("```\n\n")

	ents, _ := os.ReadDir(filepath.Join(out, "configs"))
	if len(ents) > 0 {
		b.WriteString("## Exact configurations\n\n`$WORK` is the run's work directory; for N services, the first files and a count of the rest.\n\n")
		for _, e := range ents {
			data, _ := os.ReadFile(filepath.Join(out, "configs", e.Name()))
			fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n```\n%s```\n\n</details>\n\n", strings.TrimSuffix(e.Name(), ".txt"), data)
		}
	}
	return b.String()
}
