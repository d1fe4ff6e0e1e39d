package server

import (
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape gets /metrics from the server and parses it with Prometheus's own
// text parser.
func scrape(t *testing.T, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	r := call(t, unixHTTP(ts.path), "GET", "/metrics", "")
	if r.code != 200 {
		t.Fatalf("/metrics: %d: %s", r.code, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("the Prometheus text parser rejects /metrics: %v\n%s", err, r.body)
	}
	return mfs
}

// value is the sample of family name whose labels include want, and
// whether there is one.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsParseAndFollowTheServices(t *testing.T) {
	code := 137
	started := time.Unix(1700000123, 500_000_000)
	b := newMemBackend(
		status.ServiceStatus{Name: "web", State: status.Running, PID: 10, StartedAt: started, HealthFailures: 4, Health: "healthy"},
		status.ServiceStatus{Name: "job/x", State: status.FinishedFailed, LastExitCode: &code, LastSignal: "KILL"},
		status.ServiceStatus{Name: "loop", State: status.Starting, QuickExits: 6, NextStart: time.Unix(1700000200, 0)},
	)
	ts := startServer(t, b, Options{Version: "9.9.9"})

	mfs := scrape(t, ts)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"horust_service_state", map[string]string{"service": "web", "state": "RUNNING"}, 1},
		{"horust_service_state", map[string]string{"service": "web", "state": "STARTING"}, 0},
		{"horust_service_state", map[string]string{"service": "job/x", "state": "FINISHEDFAILED"}, 1},
		{"horust_service_state", map[string]string{"service": "job/x", "state": "RUNNING"}, 0},
		{"horust_service_restarts_total", map[string]string{"service": "web"}, 0},
		{"horust_service_last_exit_code", map[string]string{"service": "job/x"}, 137},
		{"horust_service_start_time_seconds", map[string]string{"service": "web"}, 1700000123.5},
		{"horust_service_health_check_failures_total", map[string]string{"service": "web"}, 4},
		{"horust_build_info", map[string]string{"version": "9.9.9"}, 1},
		{"horust_service_quick_exits", map[string]string{"service": "loop"}, 6},
		{"horust_service_quick_exits", map[string]string{"service": "web"}, 0},
		{"horust_service_next_start_time_seconds", map[string]string{"service": "loop"}, 1700000200},
	}
	for _, c := range checks {
		got, ok := value(mfs, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	var ones int
	for _, m := range mfs["horust_service_state"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			ones++
		}
	}
	if n := len(mfs["horust_service_state"].GetMetric()); ones != 3 || n != 3*int(status.NumStates) {
		t.Errorf("horust_service_state: %d series with %d ones, want %d with 3", n, ones, 3*int(status.NumStates))
	}
	if _, ok := value(mfs, "horust_service_next_start_time_seconds", map[string]string{"service": "web"}); ok {
		t.Error("a running service has a next start time")
	}
	if _, ok := value(mfs, "horust_service_last_exit_code", map[string]string{"service": "web"}); ok {
		t.Error("a service that never exited has a last exit code")
	}
	if _, ok := value(mfs, "horust_service_start_time_seconds", map[string]string{"service": "job/x"}); ok {
		t.Error("a service that is not alive has a start time")
	}
	for _, own := range []string{"process_resident_memory_bytes", "process_start_time_seconds", "go_goroutines"} {
		if _, ok := mfs[own]; !ok {
			t.Errorf("horust's own metric %s is missing", own)
		}
	}
	// The Go figures are this test process's own: at least one thread,
	// some memory from the system, the heap in use within it.
	threads, _ := value(mfs, "go_threads", nil)
	if threads < 1 {
		t.Errorf("go_threads = %v, want at least 1", threads)
	}
	sys, _ := value(mfs, "go_memstats_sys_bytes", nil)
	heap, ok := value(mfs, "go_memstats_heap_alloc_bytes", nil)
	if !ok || heap <= 0 || sys < heap {
		t.Errorf("go_memstats_heap_alloc_bytes = %v (present %v), go_memstats_sys_bytes = %v", heap, ok, sys)
	}
	if mfs["go_gc_cycles_total"].GetType() != dto.MetricType_COUNTER {
		t.Error("go_gc_cycles_total is not a counter")
	}
	if mfs["horust_service_restarts_total"].GetType() != dto.MetricType_COUNTER {
		t.Error("horust_service_restarts_total is not a counter")
	}

	// The restart counter follows the restarts that happen.
	hc := unixHTTP(ts.path)
	for range 3 {
		if r := call(t, hc, "POST", "/v1/services/web/restart", ""); r.code != 200 {
			t.Fatalf("restart: %d %s", r.code, r.body)
		}
	}
	mfs = scrape(t, ts)
	if got, _ := value(mfs, "horust_service_restarts_total", map[string]string{"service": "web"}); got != 3 {
		t.Errorf("horust_service_restarts_total after 3 restarts = %v", got)
	}
}

func TestMetricsWhenTheLoopDoesNotAnswer(t *testing.T) {
	b := newMemBackend(svc("a", status.Running))
	block := make(chan struct{})
	defer close(block)
	b.setBlock(block)
	ts := startServer(t, b, Options{CallTimeout: 100 * time.Millisecond})
	if r := call(t, unixHTTP(ts.path), "GET", "/metrics", ""); r.code != 504 {
		t.Fatalf("got %d: %s", r.code, r.body)
	}
}
