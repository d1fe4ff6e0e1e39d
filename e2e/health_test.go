//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
)

// Roles of the health-check tests.
func init() {
	// health-http ADDR DELAY DIR: an HTTP server on ADDR that answers 503
	// until DELAY after its start, 500 while DIR/fail exists, 200 otherwise.
	// It writes its pid to DIR/pid once it listens, appends the status of
	// every answer to DIR/answers, and writes the time (unix ns) just before
	// its first 200 to DIR/healthy-at.
	registerRole("health-http", func(args []string) int {
		addr, dir := args[0], args[2]
		delay, _ := time.ParseDuration(args[1])
		start := time.Now()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "health-http:", err)
			return 5
		}
		var (
			mu    sync.Mutex
			first = true
		)
		handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			code := http.StatusOK
			switch {
			case time.Since(start) < delay:
				code = http.StatusServiceUnavailable
			case healthExists(filepath.Join(dir, "fail")):
				code = http.StatusInternalServerError
			case first:
				first = false
				healthWriteAtomic(filepath.Join(dir, "healthy-at"), strconv.FormatInt(time.Now().UnixNano(), 10))
			}
			appendLine(filepath.Join(dir, "answers"), strconv.Itoa(code))
			w.WriteHeader(code)
		})
		ready(filepath.Join(dir, "pid"))
		_ = (&http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}).Serve(ln)
		return 6
	})
	// health-check FILE MODE N: a check command. It counts its calls in
	// FILE and exits 1 (unhealthy) or 0:
	//   first N: fails the first N calls, then passes;
	//   every N: fails every Nth call (N, 2N, ...), passes the others.
	registerRole("health-check", func(args []string) int {
		file, mode := args[0], args[1]
		n, _ := strconv.Atoi(args[2])
		calls, _ := strconv.Atoi(strings.TrimSpace(readFile(file)))
		calls++
		healthWriteAtomic(file, strconv.Itoa(calls))
		switch {
		case mode == "first" && calls <= n, mode == "every" && calls%n == 0:
			return 1
		}
		return 0
	})
	// health-touch FILE PIDFILE: create FILE (the service's health file),
	// write the pid to PIDFILE, then run until signalled.
	registerRole("health-touch", func(args []string) int {
		healthWriteAtomic(args[0], "ok")
		ready(args[1])
		select {}
	})
	// health-touch-after DELAY FILE: create FILE after DELAY, then run.
	registerRole("health-touch-after", func(args []string) int {
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
		healthWriteAtomic(args[1], "ok")
		select {}
	})
	// health-notify-on-usr1 FILE: create FILE, then on SIGUSR1 send
	// READY=1 with STATUS=usr1, then run.
	registerRole("health-notify-on-usr1", func(args []string) int {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		healthWriteAtomic(args[0], "ok")
		<-ch
		if err := sdNotify("READY=1\nSTATUS=usr1"); err != nil {
			fmt.Fprintln(os.Stderr, "health-notify-on-usr1:", err)
			return 4
		}
		select {}
	})
	// health-stamp FILE: append the time (unix ns) to FILE at once, then
	// run until signalled.
	registerRole("health-stamp", func(args []string) int {
		appendLine(args[0], strconv.FormatInt(time.Now().UnixNano(), 10))
		select {}
	})
}

func healthExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func healthWriteAtomic(path, content string) {
	_ = os.WriteFile(path+".tmp", []byte(content), 0o644)
	_ = os.Rename(path+".tmp", path)
}

// healthStart starts horust for a health test. Check commands inherit
// horust's environment: GORACE=atexit_sleep_ms=0 keeps a role built with
// -race from sleeping a second when it exits with 0, which would make every
// passing check command time out.
func healthStart(t *testing.T, files map[string]string, env ...string) *horust {
	t.Helper()
	return startHorust(t, runOpts{files: files, env: append([]string{"GORACE=atexit_sleep_ms=0"}, env...)})
}

// healthKeepAlive is a service that keeps horust running when every
// service under test has finished.
func healthKeepAlive() string { return svc(role("sleep")) }

// healthFreeAddr returns a loopback address with a port that was free a
// moment ago.
func healthFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// healthStamp reads the first unix-ns time in file (0 when none yet).
func healthStamp(file string) int64 {
	line, _, _ := strings.Cut(readFile(file), "\n")
	n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	return n
}

// healthList returns every service's status, all taken in one turn of the
// supervisor loop, by name.
func healthList(t *testing.T, h *horust) map[string]status.ServiceStatus {
	t.Helper()
	list, err := h.client().List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	m := make(map[string]status.ServiceStatus, len(list))
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}

func TestHealthHTTPCheckGatesDependent(t *testing.T) {
	tmp := t.TempDir()
	addr := healthFreeAddr(t)
	h := healthStart(t, map[string]string{
		"hg-web.toml": svc(role("health-http", addr, "1500ms", tmp),
			"[healthiness]", `http-endpoint = "http://`+addr+`/health"`, `interval = "100ms"`),
		"hg-app.toml": svc(role("health-stamp", filepath.Join(tmp, "app")), `start-after = ["hg-web.toml"]`),
	})
	// While the web service answers 503 it is Started and unhealthy, and
	// its dependent has not started.
	sawUnhealthy := false
	eventually(t, 20*time.Second, "hg-web.toml to be RUNNING", func() bool {
		m := healthList(t, h)
		web, app := m["hg-web.toml"], m["hg-app.toml"]
		if web.State != status.Running && app.State != status.Initial {
			t.Fatalf("the dependent is %s while hg-web.toml is %s", app.State, web.State)
		}
		if web.State == status.Started && web.Health == "unhealthy" {
			sawUnhealthy = true
		}
		return web.State == status.Running
	})
	if web := h.status("hg-web.toml"); web.Health != "healthy" || web.Restarts != 0 {
		t.Fatalf("hg-web.toml: health %q, restarts %d; want healthy, 0", web.Health, web.Restarts)
	}
	h.waitState("hg-app.toml", 10*time.Second, "RUNNING")
	var appAt int64
	eventually(t, 10*time.Second, "the dependent's start time", func() bool { appAt = healthStamp(filepath.Join(tmp, "app")); return appAt > 0 })
	healthyAt := healthStamp(filepath.Join(tmp, "healthy-at"))
	if healthyAt == 0 || appAt <= healthyAt {
		t.Fatalf("the dependent started at %d, the web service first answered 200 at %d", appAt, healthyAt)
	}
	answers := readFile(filepath.Join(tmp, "answers"))
	if !strings.HasPrefix(answers, "503\n") || !sawUnhealthy {
		t.Fatalf("horust never saw the service unhealthy (saw unhealthy in status: %v); answers:\n%s", sawUnhealthy, answers)
	}
}

func TestHealthUnhealthyServiceIsKilledByPolicy(t *testing.T) {
	cases := []struct {
		name     string
		check    string // "file" or "http"
		strategy string
		restarts bool // restarted (true) or FINISHEDFAILED
	}{
		{name: "health file removed, restart always", check: "file", strategy: "always", restarts: true},
		{name: "server answers 500, restart on-failure", check: "http", strategy: "on-failure", restarts: true},
		{name: "server answers 500, restart never", check: "http", strategy: "never", restarts: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			var command, check string
			healthFile := filepath.Join(tmp, "healthy")
			pidFile := filepath.Join(tmp, "pid")
			if tc.check == "file" {
				command = role("health-touch", healthFile, pidFile)
				check = fmt.Sprintf("file-path = %q", healthFile)
			} else {
				addr := healthFreeAddr(t)
				command = role("health-http", addr, "0s", tmp)
				check = `http-endpoint = "http://` + addr + `/"`
			}
			const name = "hk-svc.toml"
			h := healthStart(t, map[string]string{
				name: svc(command, "[healthiness]", check, `interval = "100ms"`, "max-failed = 2",
					"[restart]", fmt.Sprintf("strategy = %q", tc.strategy)),
				"hk-keep.toml": healthKeepAlive(),
			})
			h.waitState(name, 20*time.Second, "RUNNING")
			pid := readPid(t, pidFile)
			if st := h.status(name); st.PID != pid {
				t.Fatalf("pid %d in status, %d in the pid file", st.PID, pid)
			}
			_ = os.Remove(pidFile)
			if tc.check == "file" {
				if err := os.Remove(healthFile); err != nil {
					t.Fatal(err)
				}
			} else {
				healthWriteAtomic(filepath.Join(tmp, "fail"), "")
			}
			if !tc.restarts {
				h.waitState(name, 20*time.Second, "FINISHEDFAILED")
				st := h.status(name)
				if st.Restarts != 0 || !strings.Contains(st.Reason, "unhealthy") || st.LastSignal != "TERM" {
					t.Fatalf("status %s; want no restart, an unhealthy reason, killed by TERM", jsonOf(st))
				}
				if pidAlive(pid) {
					t.Fatalf("pid %d still runs", pid)
				}
				return
			}
			eventually(t, 20*time.Second, "a restart", func() bool { return h.status(name).Restarts >= 1 })
			if tc.check == "http" {
				// The new run is not healthy while the server answers 500,
				// but it is Started, not killed again.
				_ = os.Remove(filepath.Join(tmp, "fail"))
			}
			h.waitState(name, 20*time.Second, "RUNNING")
			st := h.status(name)
			newPid := readPid(t, pidFile)
			if st.Restarts != 1 || st.PID != newPid || newPid == pid || st.LastSignal != "TERM" {
				t.Fatalf("status %s (old pid %d, pid file %d); want 1 restart, a new pid, the last run killed by TERM", jsonOf(st), pid, newPid)
			}
			if st.HealthFailures < 2 {
				t.Fatalf("%d failed rounds, want at least max-failed = 2", st.HealthFailures)
			}
		})
	}
}

func TestHealthFlakyCheckNeverKills(t *testing.T) {
	tmp := t.TempDir()
	calls := filepath.Join(tmp, "calls")
	const name = "hf-svc.toml"
	// Every second round fails: never two in a row, so max-failed = 2 is
	// never reached, although the failures add up to far more than 2.
	h := healthStart(t, map[string]string{
		name: svc(role("append-sleep", filepath.Join(tmp, "runs"), "run"), "[healthiness]",
			fmt.Sprintf("command = %q", role("health-check", calls, "every", "2")),
			`interval = "100ms"`, "max-failed = 2", "[restart]", `strategy = "always"`),
	})
	h.waitState(name, 20*time.Second, "RUNNING")
	pid := h.status(name).PID
	eventually(t, 30*time.Second, "8 failed rounds", func() bool { return h.status(name).HealthFailures >= 8 })
	st := h.status(name)
	if st.State != status.Running || st.Restarts != 0 || st.PID != pid || readFile(filepath.Join(tmp, "runs")) != "run\n" {
		t.Fatalf("status %s (first pid %d): a flaky check killed the service", jsonOf(st), pid)
	}
}

func TestHealthHangingCommandCheck(t *testing.T) {
	// A check that hangs is killed at its timeout, round after round, while
	// another service keeps restarting: the loop never waits for the check.
	const hangArg = "1013" // seconds; tells this test's sleeps apart
	h := healthStart(t, map[string]string{
		"hh-hang.toml": svc(role("sleep"), "[healthiness]", `command = "sleep `+hangArg+`"`,
			`interval = "100ms"`, `timeout = "300ms"`),
		"hh-crash.toml": svc(role("exit", "1", "50ms"), "[restart]", `strategy = "always"`, `min-uptime = "0s"`),
	}, "HORUST_LOG=warn")
	horustPid := h.cmd.Process.Pid
	h.waitState("hh-hang.toml", 10*time.Second, "STARTED")
	// Wait for the first check to be running, so the counting below starts
	// with a hanging check in place.
	eventually(t, 10*time.Second, "a hanging check", func() bool { return len(healthSleeps(horustPid, hangArg)) == 1 })
	start := time.Now()
	r0 := h.status("hh-crash.toml").Restarts
	seen := map[int]bool{}
	eventually(t, 30*time.Second, "4 timed-out checks", func() bool {
		pids := healthSleeps(horustPid, hangArg)
		if len(pids) > 1 {
			t.Fatalf("%d hanging checks at once: %v", len(pids), pids)
		}
		for _, p := range pids {
			seen[p] = true
		}
		return h.status("hh-hang.toml").HealthFailures >= 4
	})
	elapsed := time.Since(start)
	if elapsed < 3*300*time.Millisecond {
		t.Fatalf("4 failed rounds in %v: the checks did not hang for their 300ms timeout", elapsed)
	}
	r1 := h.status("hh-crash.toml").Restarts
	// The crashing service restarts every ~50ms (plus its start); over the
	// 4 rounds of at least 300ms each, a few restarts at the very least.
	if r1-r0 < 3 {
		t.Fatalf("hh-crash.toml restarted %d times while 4 checks hung for %v", r1-r0, elapsed)
	}
	if len(seen) < 3 {
		t.Fatalf("saw %d distinct check processes, want a new one per round", len(seen))
	}
	for p := range seen {
		eventually(t, 10*time.Second, fmt.Sprintf("check %d to be killed", p), func() bool { return !pidAlive(p) || !healthIsSleep(p, hangArg) })
	}
	if st := h.status("hh-hang.toml"); st.State != status.Started || st.Restarts != 0 {
		t.Fatalf("hh-hang.toml: %s; want STARTED, never restarted", jsonOf(st))
	}
	if !strings.Contains(h.stderr.String(), "command check timed out after 300ms") {
		t.Fatalf("no log line about the timeout:\n%s", h.stderr)
	}
	// A hanging check does not hold up the shutdown, nor outlive horust.
	eventually(t, 10*time.Second, "a hanging check", func() bool { return len(healthSleeps(horustPid, hangArg)) == 1 })
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if left := healthSleeps(0, hangArg); len(left) > 0 {
		t.Fatalf("hanging checks left behind: %v", left)
	}
}

// healthSleeps lists the live children of parent (0: any process) that run
// `sleep ARG`.
func healthSleeps(parent int, arg string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, _ := healthPPid(pid)
		if (parent == 0 || ppid == parent) && pidAlive(pid) && healthIsSleep(pid, arg) {
			out = append(out, pid)
		}
	}
	return out
}

func healthIsSleep(pid int, arg string) bool {
	cmdline := readFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.HasSuffix(cmdline, "sleep\x00"+arg+"\x00")
}

func healthPPid(pid int) (int, bool) {
	stat := readFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}

func TestHealthTCPCheck(t *testing.T) {
	tmp := t.TempDir()
	addr := healthFreeAddr(t)
	h := healthStart(t, map[string]string{
		"ht-db.toml":  svc(role("listen", addr, "1s"), "[healthiness]", `tcp-endpoint = "`+addr+`"`, `interval = "100ms"`),
		"ht-app.toml": svc(role("health-stamp", filepath.Join(tmp, "app")), `start-after = ["ht-db.toml"]`),
	})
	sawRefused := false
	eventually(t, 20*time.Second, "ht-db.toml to be RUNNING", func() bool {
		m := healthList(t, h)
		db, app := m["ht-db.toml"], m["ht-app.toml"]
		if db.State != status.Running && app.State != status.Initial {
			t.Fatalf("the dependent is %s while ht-db.toml is %s", app.State, db.State)
		}
		if db.State == status.Started && db.Health == "unhealthy" {
			sawRefused = true
		}
		return db.State == status.Running
	})
	if !sawRefused {
		t.Fatal("never saw ht-db.toml unhealthy before it listened")
	}
	h.waitState("ht-app.toml", 10*time.Second, "RUNNING")
	// The check really connects: it passes while something listens there.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("nothing listens on %s: %v", addr, err)
	}
	_ = c.Close()
}

func TestHealthFileCheck(t *testing.T) {
	tmp := t.TempDir()
	ready := filepath.Join(tmp, "db.ready")
	stale := filepath.Join(tmp, "stale.ready")
	// Files left by an earlier run: horust deletes them before the start.
	for _, f := range []string{ready, stale} {
		if err := os.WriteFile(f, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := healthStart(t, map[string]string{
		"hfc-db.toml":        svc(role("health-touch-after", "800ms", ready), "[healthiness]", fmt.Sprintf("file-path = %q", ready), `interval = "100ms"`),
		"hfc-app.toml":       svc(role("health-stamp", filepath.Join(tmp, "app")), `start-after = ["hfc-db.toml"]`),
		"hfc-never.toml":     svc(role("sleep"), "[healthiness]", fmt.Sprintf("file-path = %q", stale), `interval = "100ms"`),
		"hfc-never-dep.toml": svc(role("health-stamp", filepath.Join(tmp, "never-dep")), `start-after = ["hfc-never.toml"]`),
	})
	h.waitState("hfc-app.toml", 20*time.Second, "RUNNING")
	if healthExists(stale) {
		t.Fatal("the stale health file was not deleted before the start")
	}
	m := healthList(t, h)
	if st := m["hfc-never.toml"]; st.State != status.Started || st.Health != "unhealthy" {
		t.Fatalf("hfc-never.toml: %s; want STARTED and unhealthy", jsonOf(st))
	}
	if st := m["hfc-never-dep.toml"]; st.State != status.Initial || healthExists(filepath.Join(tmp, "never-dep")) {
		t.Fatalf("hfc-never-dep.toml: %s; want INITIAL, not started", jsonOf(st))
	}
	if st := m["hfc-db.toml"]; st.Health != "healthy" || st.HealthFailures == 0 {
		t.Fatalf("hfc-db.toml: %s; want healthy after some failed rounds", jsonOf(st))
	}
	// Creating the file makes the service healthy, and its dependent starts.
	healthWriteAtomic(stale, "now")
	h.waitState("hfc-never-dep.toml", 20*time.Second, "RUNNING")
}

func TestHealthNotify(t *testing.T) {
	tmp := t.TempDir()
	envFile, plainEnv := filepath.Join(tmp, "env"), filepath.Join(tmp, "plain-env")
	// The main process is a shell; READY=1 comes from its child.
	fromChild := fmt.Sprintf("/bin/sh -c \"%s role:notify 0s from-child; true\"", selfBin)
	h := healthStart(t, map[string]string{
		"hn-plain.toml":     svc(role("env", plainEnv)),
		"hn-child.toml":     svc(fromChild, "[healthiness]", "notify = true"),
		"hn-ready.toml":     svc(role("notify", "300ms", "serving 3 clients"), "[healthiness]", "notify = true"),
		"hn-ready-dep.toml": svc(role("health-stamp", filepath.Join(tmp, "ready-dep")), `start-after = ["hn-ready.toml"]`),
		// Never sends READY=1 itself; the test sends one from outside.
		"hn-silent.toml":     svc(role("env", envFile), "[healthiness]", "notify = true"),
		"hn-silent-dep.toml": svc(role("health-stamp", filepath.Join(tmp, "silent-dep")), `start-after = ["hn-silent.toml"]`),
	})
	h.waitState("hn-ready-dep.toml", 20*time.Second, "RUNNING")
	st := h.status("hn-ready.toml")
	if st.State != status.Running || st.Notify == nil || !st.Notify.Ready || st.Notify.Status != "serving 3 clients" {
		t.Fatalf("hn-ready.toml: %s; want RUNNING, ready, status %q", jsonOf(st), "serving 3 clients")
	}
	h.waitState("hn-child.toml", 20*time.Second, "RUNNING")
	if st := h.status("hn-child.toml"); st.Notify == nil || st.Notify.Status != "from-child" {
		t.Fatalf("hn-child.toml: %s; want the status its child sent", jsonOf(st))
	}
	eventually(t, 10*time.Second, "the plain service's environment", func() bool { return healthExists(plainEnv) })
	if env := readFile(plainEnv); strings.Contains(env, "NOTIFY_SOCKET=") {
		t.Fatalf("a service without notify = true got NOTIFY_SOCKET:\n%s", env)
	}
	// A READY=1 from a process that is not the service (this test) is
	// ignored.
	eventually(t, 10*time.Second, "the silent service's environment", func() bool { return healthExists(envFile) })
	var sock string
	for _, kv := range strings.Split(readFile(envFile), "\n") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			sock = v
		}
	}
	if !strings.HasPrefix(sock, "@") {
		t.Fatalf("NOTIFY_SOCKET is %q, want an abstract socket", sock)
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := sdNotify("READY=1\nSTATUS=forged"); err != nil {
		t.Fatal(err)
	}
	// The loop handles messages in order: once a later message of the
	// ready service is in (through a restart that makes it send another),
	// the forged one has been handled too.
	if _, err := h.client().Restart(context.Background(), "hn-ready.toml"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "hn-ready.toml to be RUNNING again", func() bool {
		st := h.status("hn-ready.toml")
		return st.Restarts == 1 && st.State == status.Running
	})
	m := healthList(t, h)
	if st := m["hn-silent.toml"]; st.State != status.Started || st.Notify == nil || st.Notify.Ready || st.Notify.Status != "" {
		t.Fatalf("hn-silent.toml: %s; want STARTED, not ready, no status", jsonOf(st))
	}
	if st := m["hn-silent-dep.toml"]; st.State != status.Initial || healthExists(filepath.Join(tmp, "silent-dep")) {
		t.Fatalf("hn-silent-dep.toml: %s; want INITIAL, not started", jsonOf(st))
	}
}

func TestHealthNotifyAndChecksBothNeeded(t *testing.T) {
	tmp := t.TempDir()
	fileA, fileB := filepath.Join(tmp, "a.ready"), filepath.Join(tmp, "b.ready")
	h := healthStart(t, map[string]string{
		// READY=1 at once; the file is the test's to create.
		"hnc-ready-first.toml": svc(role("notify", "0s", "ready-first"), "[healthiness]", "notify = true",
			fmt.Sprintf("file-path = %q", fileA), `interval = "100ms"`),
		// Creates its file at once; READY=1 on SIGUSR1.
		"hnc-file-first.toml": svc(role("health-notify-on-usr1", fileB), "[healthiness]", "notify = true",
			fmt.Sprintf("file-path = %q", fileB), `interval = "100ms"`),
		"hnc-keep.toml": healthKeepAlive(),
	})
	eventually(t, 20*time.Second, "READY=1 from hnc-ready-first.toml", func() bool {
		st := h.status("hnc-ready-first.toml")
		return st.Notify != nil && st.Notify.Ready && st.Health == "unhealthy"
	})
	eventually(t, 20*time.Second, "hnc-file-first.toml to pass its check", func() bool { return h.status("hnc-file-first.toml").Health == "healthy" })
	m := healthList(t, h)
	if st := m["hnc-ready-first.toml"]; st.State != status.Started {
		t.Fatalf("hnc-ready-first.toml: %s; want STARTED: ready, but its check fails", jsonOf(st))
	}
	if st := m["hnc-file-first.toml"]; st.State != status.Started || st.Notify == nil || st.Notify.Ready {
		t.Fatalf("hnc-file-first.toml: %s; want STARTED: healthy, but no READY=1 yet", jsonOf(st))
	}
	healthWriteAtomic(fileA, "ok")
	h.waitState("hnc-ready-first.toml", 20*time.Second, "RUNNING")
	if err := h.client().Signal(context.Background(), "hnc-file-first.toml", syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	h.waitState("hnc-file-first.toml", 20*time.Second, "RUNNING")
	if st := h.status("hnc-file-first.toml"); st.Notify == nil || st.Notify.Status != "usr1" || st.Health != "healthy" {
		t.Fatalf("hnc-file-first.toml: %s", jsonOf(st))
	}
}

func TestHealthSlowStarterIsNotKilled(t *testing.T) {
	tmp := t.TempDir()
	const name = "hs-db.toml"
	// Ten failed rounds before the first healthy one, with max-failed = 2:
	// a Started service is not killed for failing.
	h := healthStart(t, map[string]string{
		name: svc(role("append-sleep", filepath.Join(tmp, "runs"), "run"), "[healthiness]",
			fmt.Sprintf("command = %q", role("health-check", filepath.Join(tmp, "calls"), "first", "10")),
			`interval = "100ms"`, "max-failed = 2", "[restart]", `strategy = "always"`),
	})
	h.waitState(name, 30*time.Second, "RUNNING")
	st := h.status(name)
	if st.HealthFailures != 10 || st.Restarts != 0 || st.Health != "healthy" || readFile(filepath.Join(tmp, "runs")) != "run\n" {
		t.Fatalf("status %s; want healthy after exactly 10 failed rounds, never restarted", jsonOf(st))
	}
}

func TestHealthStartTimeoutExhaustsAttempts(t *testing.T) {
	tmp := t.TempDir()
	runs := filepath.Join(tmp, "runs")
	h := healthStart(t, map[string]string{
		"hst-db.toml": svc(role("append-sleep", runs, "run"), "[healthiness]",
			fmt.Sprintf("file-path = %q", filepath.Join(tmp, "never")), `interval = "100ms"`, `start-timeout = "500ms"`,
			"[restart]", `strategy = "always"`, "attempts = 2", "[termination]", `wait = "1s"`),
		"hst-app.toml":  svc(role("health-stamp", filepath.Join(tmp, "app")), `start-after = ["hst-db.toml"]`),
		"hst-keep.toml": healthKeepAlive(),
	})
	h.waitState("hst-db.toml", 30*time.Second, "FINISHEDFAILED")
	st := h.status("hst-db.toml")
	if n := lines(runs); n != 3 {
		t.Fatalf("%d runs, want 1 + attempts = 3", n)
	}
	if st.Restarts != 2 || !strings.Contains(st.Reason, "start-timeout") || st.LastSignal != "TERM" {
		t.Fatalf("status %s; want 2 restarts, a start-timeout reason, killed by TERM", jsonOf(st))
	}
	h.waitState("hst-app.toml", 10*time.Second, "FINISHEDFAILED")
	if healthExists(filepath.Join(tmp, "app")) {
		t.Fatal("the dependent of a service that never became healthy started")
	}
}

func TestHealthMissingCheckCommand(t *testing.T) {
	tmp := t.TempDir()
	cases := []string{"/nonexistent/hm-check --now", "hm-no-such-check-command"}
	files := map[string]string{
		"hm-ok.toml": svc(role("health-stamp", filepath.Join(tmp, "ok"))),
	}
	for i, c := range cases {
		files[fmt.Sprintf("hm-%d.toml", i)] = svc(role("sleep"), "[healthiness]", fmt.Sprintf("command = %q", c), `interval = "100ms"`)
	}
	h := healthStart(t, files)
	h.waitState("hm-ok.toml", 10*time.Second, "RUNNING")
	for i, c := range cases {
		name := fmt.Sprintf("hm-%d.toml", i)
		eventually(t, 10*time.Second, name+" to fail 3 rounds", func() bool { return h.status(name).HealthFailures >= 3 })
		prog, _, _ := strings.Cut(c, " ")
		eventually(t, 10*time.Second, "a log line naming "+prog, func() bool {
			for _, l := range strings.Split(h.stderr.String(), "\n") {
				if strings.Contains(l, name) && strings.Contains(l, prog) && strings.Contains(l, "check") {
					return true
				}
			}
			return false
		})
		if st := h.status(name); st.State != status.Started || st.Health != "unhealthy" {
			t.Fatalf("%s: %s; want STARTED and unhealthy", name, jsonOf(st))
		}
	}
	if h.exited() {
		t.Fatal("horust exited")
	}
	if st := h.status("hm-ok.toml"); st.State != status.Running {
		t.Fatalf("hm-ok.toml: %s", jsonOf(st))
	}
}

func TestHealthBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		line  string
		wants []string // in stderr, besides the file name
	}{
		{"malformed URL", `http-endpoint = "http://[::1/health"`, []string{"http-endpoint"}},
		{"unknown scheme", `http-endpoint = "ftp://127.0.0.1/health"`, []string{"http-endpoint", "ftp://"}},
		{"URL without host", `http-endpoint = "http:///health"`, []string{"http-endpoint"}},
		{"tcp without port", `tcp-endpoint = "127.0.0.1"`, []string{"tcp-endpoint"}},
		{"tcp port out of range", `tcp-endpoint = "127.0.0.1:70000"`, []string{"tcp-endpoint", "70000"}},
		{"tcp without host", `tcp-endpoint = ":5432"`, []string{"tcp-endpoint"}},
		{"negative interval", `interval = "-1s"`, []string{"interval"}},
		{"zero interval", `interval = "0s"`, []string{"interval"}},
		{"negative timeout", `timeout = "-500ms"`, []string{"timeout"}},
		{"unparsable timeout", `timeout = "soon"`, []string{"timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "started")
			h := healthStart(t, map[string]string{
				"hb-good.toml": svc(role("append", marker, "x")),
				"hb-bad.toml":  svc(role("sleep"), "[healthiness]", tc.line),
			})
			if code := h.wait(20 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			errOut := h.stderr.String()
			for _, want := range append([]string{"hb-bad.toml"}, tc.wants...) {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr does not name %q:\n%s", want, errOut)
				}
			}
			if healthExists(marker) {
				t.Fatal("a service started although the configuration is invalid")
			}
		})
	}
}
