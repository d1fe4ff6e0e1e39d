package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestSampleServiceGolden(t *testing.T) {
	golden := filepath.Join("testdata", "sample-service.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(SampleService()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := SampleService(); got != string(want) {
		t.Fatalf("SampleService() differs from %s (run go test -run Sample -update if the change is meant):\n%s", golden, got)
	}
}

// TestSampleServiceValidates loads the sample alone, in an environment
// without USER: it names no other service and needs no variable.
func TestSampleServiceValidates(t *testing.T) {
	dir := writeDir(t, map[string]string{"sample.toml": SampleService()})
	svcs, probs := loadDir(t, dir, map[string]string{})
	if probs != nil {
		t.Fatal(probs)
	}
	if got := names(svcs); !reflect.DeepEqual(got, []string{"sample.toml"}) {
		t.Fatalf("order %v", got)
	}
	s := svcs[0]
	// The original's sample values (spec 5.11), but for the keys commented
	// out so that the sample validates alone.
	checks := map[string]bool{
		"command":     s.Command == "/bin/bash -c 'echo hello world'",
		"start-delay": s.StartDelay == 2*time.Second,
		"start-after": s.StartAfter == nil,
		"stdout":      s.Stdout == "/var/logs/hello_world_svc/stdout.log" && s.StdoutRotateSize == 100_000_000,
		"user":        s.User == User{},
		"working-dir": s.WorkingDirectory == "/tmp/",
		"restart":     s.Restart == Restart{Strategy: RestartNever, MinUptime: 10 * time.Second, MaxBackoff: 10 * time.Second} && !s.Oneshot,
		"healthiness": s.Healthiness.HTTPEndpoint == "http://localhost:8080/healthcheck" &&
			s.Healthiness.FilePath == "/var/myservice/up" &&
			s.Healthiness.Command == "curl -s http://localhost:8080/healthcheck" && s.Healthiness.MaxFailed == 3,
		"failure":     reflect.DeepEqual(s.Failure, Failure{SuccessfulExitCodes: []int{0, 1, 255}, Strategy: FailureIgnore}),
		"environment": reflect.DeepEqual(s.Environment, Environment{ReExport: []string{"PATH", "DB_PASS"}, Additional: map[string]string{"key": "value"}}),
		"termination": SignalName(s.Termination.Signal) == "TERM" && s.Termination.Wait == 10*time.Second &&
			s.Termination.DieIfFailed == nil,
		"resource": s.Resource == Resource{CPU: 0.5, Memory: 100 << 20, PidsMax: 100},
	}
	for key, ok := range checks {
		if !ok {
			t.Errorf("sample %s: got %+v", key, s)
		}
	}
}

// TestSampleServiceMentionsEveryKey keeps the sample complete: every key the
// decoder knows appears in it (set or commented out).
func TestSampleServiceMentionsEveryKey(t *testing.T) {
	for _, key := range []string{
		"name", "command", "start-delay", "start-after", "shutdown-after", "stdout", "stdout-rotate-size",
		"stdout-rotate-keep", "stdout-should-append-timestamp-to-filename", "stderr", "stderr-rotate-size",
		"stderr-rotate-keep", "stdout-prefix", "stdout-timestamps", "user", "working-directory",
		"[restart]", "strategy", "backoff", "attempts",
		"[healthiness]", "http-endpoint", "file-path", "tcp-endpoint", "interval", "timeout", "start-timeout", "notify", "max-failed",
		"[failure]", "successful-exit-code",
		"[environment]", "keep-env", "re-export", "additional",
		"[termination]", "signal", "wait", "die-if-failed",
		"[resource-limit]", "cpu", "cpu-percent", "memory", "pids-max",
	} {
		if !strings.Contains(SampleService(), key) {
			t.Errorf("the sample does not mention %s", key)
		}
	}
}
