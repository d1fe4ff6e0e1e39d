package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// knobs are the run's settings, from the environment (run.sh passes them
// on). Defaults are the full run.
type knobs struct {
	reps          int
	scenarios     []string
	sups          []string
	horust        string // path of the horust binary under test
	horustCopy    string // a copy of it for horust-nocg (so the two never share page-cache pages in PSS)
	goFloor       string // path of bench/oneshotfloor, the Go floor of the one-shot scenario ("" = not measured)
	idleNs        []int
	idleWindow    time.Duration
	restartWindow time.Duration
	startupNs     []int // horust and floor; peers run the first only
	peerStartup   []int
	shutdownN     int
	chainN        int
	reapN         int
	logBytes      int64
	logDir        string
	logChunk      int
	logRotate     int64
	logModes      []string
	oneshotN      int
	self          string // this binary
}

// allScenarios in the order they run.
var allScenarios = []string{"idle", "restart", "startup", "shutdown", "chain", "reap", "log", "oneshot"}

// allSups are the columns, horust first.
var allSups = []string{"horust", "horust-nocg", "floor", "tini", "dumb-init", "s6", "runit", "supervisord"}

func envStr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int64) (int64, error) {
	v := envStr(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a number", name, v)
	}
	return int64(n), nil
}

func envInts(name, def string) ([]int, error) {
	var out []int
	for f := range strings.FieldsSeq(envStr(name, def)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func loadKnobs() (*knobs, error) {
	k := &knobs{}
	var err error
	get := func(name string, def int64) int64 {
		if err != nil {
			return 0
		}
		var v int64
		v, err = envInt(name, def)
		return v
	}
	k.reps = int(get("REPS", 3))
	k.idleWindow = time.Duration(get("IDLE_SECS", 20)) * time.Second
	k.restartWindow = time.Duration(get("RESTART_SECS", 10)) * time.Second
	k.shutdownN = int(get("SHUTDOWN_N", 100))
	k.chainN = int(get("CHAIN_N", 20))
	k.reapN = int(get("REAP_N", 2000))
	k.logBytes = get("LOG_BYTES", 1e9)
	k.logChunk = int(get("LOG_CHUNK", 64<<10))
	k.logRotate = get("LOG_ROTATE_MB", 64) << 20
	k.oneshotN = int(get("ONESHOT_N", 200))
	if err != nil {
		return nil, err
	}
	if k.idleNs, err = envInts("IDLE_NS", "1 10 100 1000"); err != nil {
		return nil, err
	}
	if k.startupNs, err = envInts("STARTUP_NS", "100 1000"); err != nil {
		return nil, err
	}
	if k.peerStartup, err = envInts("PEER_STARTUP_NS", "100"); err != nil {
		return nil, err
	}
	k.scenarios = strings.Fields(envStr("SCENARIOS", strings.Join(allScenarios, " ")))
	k.sups = strings.Fields(envStr("SUPERVISORS", strings.Join(allSups, " ")))
	k.logModes = strings.Fields(envStr("LOG_MODES", "direct rotate prefix"))
	k.logDir = envStr("LOG_DIR", "/dev/shm")
	k.goFloor = envStr("GOFLOOR", "")
	k.horust = envStr("HORUST", "")
	if k.horust == "" {
		return nil, fmt.Errorf("HORUST (path of the horust binary) is not set")
	}
	if k.self, err = os.Executable(); err != nil {
		return nil, err
	}
	for _, s := range k.scenarios {
		if !contains(allScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(allScenarios, " "))
		}
	}
	for _, s := range k.sups {
		if !contains(allSups, s) {
			return nil, fmt.Errorf("unknown supervisor %q (known: %s)", s, strings.Join(allSups, " "))
		}
	}
	return k, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// describe is the knob settings as one line per knob, for the report.
func (k *knobs) describe() string {
	ints := func(xs []int) string { return strings.Trim(fmt.Sprint(xs), "[]") }
	return fmt.Sprintf(`REPS=%d
SCENARIOS="%s"
SUPERVISORS="%s"
IDLE_NS="%s" IDLE_SECS=%d
RESTART_SECS=%d
STARTUP_NS="%s" PEER_STARTUP_NS="%s"
SHUTDOWN_N=%d CHAIN_N=%d REAP_N=%d
LOG_BYTES=%d LOG_CHUNK=%d LOG_ROTATE_MB=%d LOG_DIR=%s LOG_MODES="%s"
ONESHOT_N=%d
`, k.reps, strings.Join(k.scenarios, " "), strings.Join(k.sups, " "), ints(k.idleNs), int(k.idleWindow.Seconds()),
		int(k.restartWindow.Seconds()), ints(k.startupNs), ints(k.peerStartup), k.shutdownN, k.chainN, k.reapN,
		k.logBytes, k.logChunk, k.logRotate>>20, k.logDir, strings.Join(k.logModes, " "), k.oneshotN)
}
