package control

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// States are the states a service can be in, in the order of its life.
var States = []string{"INITIAL", "STARTING", "STARTED", "RUNNING", "INKILLING", "SUCCESS", "FAILED", "FINISHED", "FINISHEDFAILED"}

// processRegistry holds horust's own process and Go runtime metrics. It is
// private (not prometheus's default registry) and built on the first
// /metrics request, so that a horust nobody scrapes never pays for it.
var processRegistry = sync.OnceValue(func() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	return reg
})

// The per-service metrics.
var (
	descState = prometheus.NewDesc("horust_service_state",
		"Current state of the service: 1 for the state it is in, 0 for the others.",
		[]string{"service", "state"}, nil)
	descRestarts = prometheus.NewDesc("horust_service_restarts_total",
		"Starts of the service after its first one.",
		[]string{"service"}, nil)
	descExitCode = prometheus.NewDesc("horust_service_last_exit_code",
		"Exit code of the service's last run; 128+N for a death by signal N.",
		[]string{"service"}, nil)
	descStartTime = prometheus.NewDesc("horust_service_start_time_seconds",
		"Start of the service's current run, in seconds since the Unix epoch.",
		[]string{"service"}, nil)
	descHealthFailures = prometheus.NewDesc("horust_service_health_check_failures_total",
		"Failed rounds of health checks of the service since horust started.",
		[]string{"service"}, nil)
	descBuildInfo = prometheus.NewDesc("horust_build_info",
		"Always 1; the version label is horust's version.",
		[]string{"version"}, nil)
)

// serviceMetrics turns one List answer into metrics. It is built per
// request, so nothing per service outlives a scrape.
type serviceMetrics struct {
	version  string
	services []ServiceStatus
}

func (m serviceMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRestarts, descExitCode, descStartTime, descHealthFailures, descBuildInfo} {
		ch <- d
	}
}

func (m serviceMetrics) Collect(ch chan<- prometheus.Metric) {
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		metric, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			metric = prometheus.NewInvalidMetric(d, err)
		}
		ch <- metric
	}
	send(descBuildInfo, prometheus.GaugeValue, 1, m.version)
	for _, st := range m.services {
		for _, state := range States {
			v := 0.0
			if state == st.State {
				v = 1
			}
			send(descState, prometheus.GaugeValue, v, st.Name, state)
		}
		if !slices.Contains(States, st.State) {
			send(descState, prometheus.GaugeValue, 1, st.Name, st.State)
		}
		send(descRestarts, prometheus.CounterValue, float64(st.Restarts), st.Name)
		if st.LastExitCode != nil {
			send(descExitCode, prometheus.GaugeValue, float64(*st.LastExitCode), st.Name)
		}
		if !st.StartedAt.IsZero() {
			send(descStartTime, prometheus.GaugeValue, float64(st.StartedAt.UnixNano())/1e9, st.Name)
		}
		send(descHealthFailures, prometheus.CounterValue, float64(st.HealthFailures), st.Name)
	}
}

// metrics serves GET /metrics in the Prometheus exposition format.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.callCtx(r)
	defer cancel()
	list, err := s.o.Backend.List(ctx)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	services := prometheus.NewRegistry()
	if err := services.Register(serviceMetrics{version: s.o.Version, services: list}); err != nil {
		s.fail(w, r, fmt.Errorf("metrics: %w", err), "")
		return
	}
	promhttp.HandlerFor(prometheus.Gatherers{processRegistry(), services}, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.o.Log.Handler(), slog.LevelWarn),
		// A process metric that cannot be read must not hide the others.
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP(w, r)
}
