// Package metrics writes horust's /metrics exposition: the statuses of the
// services and horust's own process figures, in the Prometheus text format.
package metrics

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// Metrics are written in the Prometheus text exposition format (version
// 0.0.4) by the small writer below rather than with client_golang: linking
// client_golang (and the protobuf runtime it pulls in) costs every horust
// about 2.4 MB of memory and a millisecond of start-up, scraped or not,
// which a PID 1 that must stay under 8 MB with 100 services and start as
// fast as tini cannot afford. The tests parse the output with Prometheus's
// own parser (prometheus/common/expfmt).

// expo writes one exposition.
type expo struct {
	b *bytes.Buffer
}

// family starts a metric family.
func (e *expo) family(name, typ, help string) {
	e.b.WriteString("# HELP ")
	e.b.WriteString(name)
	e.b.WriteByte(' ')
	e.b.WriteString(strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help))
	e.b.WriteString("\n# TYPE ")
	e.b.WriteString(name)
	e.b.WriteByte(' ')
	e.b.WriteString(typ)
	e.b.WriteByte('\n')
}

// sample writes one sample; labels are name, value pairs.
func (e *expo) sample(name string, v float64, labels ...string) {
	e.b.WriteString(name)
	if len(labels) > 0 {
		e.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b.WriteByte(',')
			}
			e.b.WriteString(labels[i])
			e.b.WriteString(`="`)
			e.escape(labels[i+1])
			e.b.WriteByte('"')
		}
		e.b.WriteByte('}')
	}
	e.b.WriteByte(' ')
	e.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	e.b.WriteByte('\n')
}

// escape writes a label value as the text format wants it: backslash,
// double quote and newline escaped. (A strings.Replacer would be built at
// package initialization, in every start of horust.)
func (e *expo) escape(v string) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			e.b.WriteString(`\\`)
		case '"':
			e.b.WriteString(`\"`)
		case '\n':
			e.b.WriteString(`\n`)
		default:
			e.b.WriteByte(c)
		}
	}
}

// ContentType is the media type of what Write writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write appends the exposition for the services in list to b: per service
// state, restarts, last exit code, start time and failed health checks,
// the configuration's reloads (cfg), then horust's own process and Go
// runtime figures.
func Write(b *bytes.Buffer, version string, list []status.ServiceStatus, cfg control.ConfigStatus) {
	e := expo{b: b}
	writeServiceMetrics(&e, version, list)
	writeConfigMetrics(&e, cfg)
	writeProcessMetrics(&e)
}

func writeServiceMetrics(e *expo, version string, list []status.ServiceStatus) {
	e.family("horust_build_info", "gauge", "Always 1; the version label is horust's version.")
	e.sample("horust_build_info", 1, "version", version)

	e.family("horust_service_state", "gauge", "Current state of the service: 1 for the state it is in, 0 for the others.")
	for _, st := range list {
		for state := range status.NumStates {
			v := 0.0
			if state == st.State {
				v = 1
			}
			e.sample("horust_service_state", v, "service", st.Name, "state", state.API())
		}
	}
	e.family("horust_service_restarts_total", "counter", "Starts of the service after its first one.")
	for _, st := range list {
		e.sample("horust_service_restarts_total", float64(st.Restarts), "service", st.Name)
	}
	e.family("horust_service_last_exit_code", "gauge", "Exit code of the service's last run; 128+N for a death by signal N.")
	for _, st := range list {
		if st.LastExitCode != nil {
			e.sample("horust_service_last_exit_code", float64(*st.LastExitCode), "service", st.Name)
		}
	}
	e.family("horust_service_start_time_seconds", "gauge", "Start of the service's current run, in seconds since the Unix epoch.")
	for _, st := range list {
		if !st.StartedAt.IsZero() {
			e.sample("horust_service_start_time_seconds", float64(st.StartedAt.UnixNano())/1e9, "service", st.Name)
		}
	}
	e.family("horust_service_quick_exits", "gauge", "Runs of the service in a row that ended within min-uptime; 2 or more is a crash loop.")
	for _, st := range list {
		e.sample("horust_service_quick_exits", float64(st.QuickExits), "service", st.Name)
	}
	e.family("horust_service_next_start_time_seconds", "gauge", "When a service waiting to start (start-delay, backoff, crash loop) starts, in seconds since the Unix epoch.")
	for _, st := range list {
		if !st.NextStart.IsZero() {
			e.sample("horust_service_next_start_time_seconds", float64(st.NextStart.UnixNano())/1e9, "service", st.Name)
		}
	}
	e.family("horust_service_health_check_failures_total", "counter", "Failed rounds of health checks of the service since horust started.")
	for _, st := range list {
		e.sample("horust_service_health_check_failures_total", float64(st.HealthFailures), "service", st.Name)
	}
	e.family("horust_service_output_dropped_bytes_total", "counter", "Bytes of the service's output horust could not write (full disk, closed destination).")
	for _, st := range list {
		e.sample("horust_service_output_dropped_bytes_total", float64(st.OutputDropped), "service", st.Name)
	}
}

// writeProcessMetrics writes horust's own figures under the names the
// standard process and Go collectors use, so existing dashboards work.
func writeProcessMetrics(e *expo) {
	st, statOK := readSelfStat()
	if statOK {
		e.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
		e.sample("process_cpu_seconds_total", st.cpu)
		e.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
		e.sample("process_resident_memory_bytes", st.rss)
		e.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.")
		e.sample("process_virtual_memory_bytes", st.vsize)
		if st.start > 0 {
			e.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
			e.sample("process_start_time_seconds", st.start)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		e.family("process_open_fds", "gauge", "Number of open file descriptors.")
		e.sample("process_open_fds", float64(len(fds)))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		e.family("process_max_fds", "gauge", "Maximum number of open file descriptors.")
		e.sample("process_max_fds", float64(lim.Cur))
	}
	e.family("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	e.sample("go_goroutines", float64(runtime.NumGoroutine()))
	e.family("go_info", "gauge", "Information about the Go environment.")
	e.sample("go_info", 1, "version", runtime.Version())
	// runtime.ReadMemStats, not runtime/metrics: that package's init
	// builds its whole description table at every start of horust, a
	// tenth of a millisecond a one-shot run would pay for nothing.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	threads := -1.0
	if statOK {
		threads = st.threads
	}
	for _, m := range []struct {
		name, typ, help string
		v               float64
	}{
		{"go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.", float64(ms.HeapAlloc)},
		{"go_memstats_sys_bytes", "gauge", "Number of bytes obtained from the system.", float64(ms.Sys)},
		{"go_gc_cycles_total", "counter", "Number of completed GC cycles.", float64(ms.NumGC)},
		{"go_threads", "gauge", "Number of OS threads created.", threads},
	} {
		if m.v >= 0 {
			e.family(m.name, m.typ, m.help)
			e.sample(m.name, m.v)
		}
	}
}

type selfStat struct {
	cpu, rss, vsize, start, threads float64
}

// readSelfStat reads /proc/self/stat (and /proc/stat for the boot time).
func readSelfStat() (selfStat, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return selfStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return selfStat{}, false
	}
	// Fields after "pid (comm)": state is field 3; utime 14, stime 15,
	// starttime 22, vsize 23, rss 24 (1-based, as in proc(5)).
	f := strings.Fields(string(b[i+1:]))
	at := func(n int) float64 {
		if n-3 < len(f) {
			v, _ := strconv.ParseFloat(f[n-3], 64)
			return v
		}
		return 0
	}
	const ticks = 100 // USER_HZ on Linux
	st := selfStat{
		cpu:   (at(14) + at(15)) / ticks,
		vsize: at(23),
		rss:   at(24) * float64(os.Getpagesize()),
		// num_threads, every thread of horust: the runtime's own ones
		// are all of them.
		threads: at(20),
	}
	if boot := bootTime(); boot > 0 {
		st.start = boot + at(22)/ticks
	}
	return st, true
}

// bootTime is the btime line of /proc/stat, 0 when unknown.
func bootTime() float64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return 0
}

// writeConfigMetrics writes the reload counters under the names Prometheus
// and Alertmanager use for their own configuration reloads.
func writeConfigMetrics(e *expo, st control.ConfigStatus) {
	e.family("horust_config_reloads_total", "counter", "Configuration reloads, by result: ok (applied) or invalid (refused, nothing changed).")
	e.sample("horust_config_reloads_total", float64(st.ReloadsOK), "result", "ok")
	e.sample("horust_config_reloads_total", float64(st.ReloadsInvalid), "result", "invalid")
	e.family("horust_config_generation", "gauge", "Generation of the configuration horust runs: 1 at start, one more per applied reload.")
	e.sample("horust_config_generation", float64(st.Generation))
	e.family("horust_config_last_reload_success_timestamp_seconds", "gauge", "When the current configuration was applied (at start or by the last successful reload), in seconds since the Unix epoch.")
	e.sample("horust_config_last_reload_success_timestamp_seconds", float64(st.LoadedAt.UnixNano())/1e9)
}
