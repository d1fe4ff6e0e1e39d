package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/server"
	"github.com/horust-go/horust/internal/status"
)

// bin is the horustctl built once for all tests.
var bin string

// The version and commit stamped into the test build, as the release build does.
const (
	testVersion = "1.2.3-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// wantVersion is what --version prints for the test build.
var wantVersion = "horustctl " + testVersion + " (commit " + testCommit + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "horustctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "horustctl")
	out, err := exec.Command("go", "build", "-ldflags",
		"-X github.com/horust-go/horust/internal/buildinfo.version="+testVersion+
			" -X github.com/horust-go/horust/internal/buildinfo.commit="+testCommit, "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building horustctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// backend is an in-memory server.Backend, only to give horustctl a server
// to talk to.
type backend struct {
	mu        sync.Mutex
	services  []status.ServiceStatus
	changed   chan struct{}
	signals   []string
	shutdowns int
	// problems, when set, make Reload refuse the configuration.
	problems []string
	config   control.ConfigStatus
}

func newBackend(services ...status.ServiceStatus) *backend {
	return &backend{services: services, changed: make(chan struct{})}
}

func (b *backend) find(name string) int {
	return slices.IndexFunc(b.services, func(s status.ServiceStatus) bool { return s.Name == name })
}

func (b *backend) set(name string, f func(*status.ServiceStatus)) (status.ServiceStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.find(name)
	if i < 0 {
		return status.ServiceStatus{}, fmt.Errorf("%w '%s'", control.ErrNotFound, name) // as the supervisor says it
	}
	f(&b.services[i])
	close(b.changed)
	b.changed = make(chan struct{})
	return b.services[i], nil
}

func (b *backend) List(context.Context) ([]status.ServiceStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.services), nil
}

func (b *backend) Get(_ context.Context, name string) (status.ServiceStatus, error) {
	return b.set(name, func(*status.ServiceStatus) {})
}

func (b *backend) Start(_ context.Context, name string) (status.ServiceStatus, error) {
	return b.set(name, func(s *status.ServiceStatus) { s.State = status.Starting })
}

func (b *backend) Stop(_ context.Context, name string) (status.ServiceStatus, error) {
	return b.set(name, func(s *status.ServiceStatus) { s.State = status.InKilling })
}

func (b *backend) Restart(_ context.Context, name string) (status.ServiceStatus, error) {
	return b.set(name, func(s *status.ServiceStatus) { s.State = status.Running; s.Restarts++ })
}

func (b *backend) Signal(_ context.Context, name string, sig syscall.Signal) error {
	_, err := b.set(name, func(*status.ServiceStatus) {})
	if err == nil {
		b.mu.Lock()
		b.signals = append(b.signals, name+":"+control.SignalName(sig))
		b.mu.Unlock()
	}
	return err
}

func (b *backend) Shutdown(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shutdowns++
	return nil
}

func (b *backend) Wait(ctx context.Context, names []string, cond control.WaitFor) ([]status.ServiceStatus, error) {
	for {
		b.mu.Lock()
		changed := b.changed
		var out []status.ServiceStatus
		for _, n := range names {
			i := b.find(n)
			if i < 0 {
				b.mu.Unlock()
				return nil, fmt.Errorf("service '%s': %w", n, control.ErrNotFound)
			}
			if cond == control.WaitRunning && b.services[i].State == status.FinishedFailed {
				b.mu.Unlock()
				return nil, fmt.Errorf("service '%s' is FINISHEDFAILED: %w", n, control.ErrUnreachable)
			}
			if cond.Met(b.services[i]) {
				out = append(out, b.services[i])
			}
		}
		b.mu.Unlock()
		if len(out) == len(names) {
			return out, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *backend) snapshot() ([]string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.signals), b.shutdowns
}

// shortDir is a temporary folder whose path leaves room for a socket name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// serve runs a control server for b on dir/horust-<pid>.sock until the
// test ends, and returns the socket path.
func serve(t *testing.T, b server.Backend, dir string, pid int) string {
	t.Helper()
	path := filepath.Join(dir, control.SocketName(pid))
	l, err := server.ListenUnix(path, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, l, server.Options{Backend: b}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

// horustctl runs the binary with args, in an environment where the
// fallback folders are empty.
func horustctl(t *testing.T, args ...string) result {
	t.Helper()
	return horustctlEnv(t, nil, args...)
}

// horustctlEnv is horustctl with more variables in the environment.
func horustctlEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + shortDir(t)}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("horustctl %q: %v", args, err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// wantError checks a failure: the exit code and one line on stderr.
func wantError(t *testing.T, r result, code int, line string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if code == 1 {
		if r.stderr != line+"\n" {
			t.Errorf("stderr %q, want the one line %q", r.stderr, line)
		}
	} else if first, _, _ := strings.Cut(r.stderr, "\n"); first != line {
		t.Errorf("stderr starts %q, want %q", first, line)
	}
}

func exitCode(n int) *int { return &n }

func TestCommands(t *testing.T) {
	started := time.Now().Add(-(2*time.Hour + 3*time.Minute))
	newB := func() *backend {
		return newBackend(
			status.ServiceStatus{Name: "web.toml", State: status.Running, PID: 321, Restarts: 2, StartedAt: started,
				UptimeSeconds: (2*time.Hour + 3*time.Minute).Seconds(), Health: "healthy"},
			status.ServiceStatus{Name: "db.toml", State: status.FinishedFailed, LastExitCode: exitCode(137), LastSignal: "KILL",
				Reason: "killed: out of memory"},
			status.ServiceStatus{Name: "job/x.toml", State: status.Finished, LastExitCode: exitCode(0)},
		)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string // exact, unless "" and contains is used
		has     []string
		stderr  string // the one line expected on stderr
		signals []string
		shut    int
	}{
		{name: "status of one service prints the original's line", args: []string{"status", "web.toml"},
			stdout: "Current status for 'web.toml' is: 'RUNNING'.\n"},
		{name: "status of a name with a slash", args: []string{"status", "job/x.toml"},
			stdout: "Current status for 'job/x.toml' is: 'FINISHED'.\n"},
		{name: "status of several services", args: []string{"status", "web.toml", "db.toml"},
			stdout: "Current status for 'web.toml' is: 'RUNNING'.\nCurrent status for 'db.toml' is: 'FINISHEDFAILED'.\n"},
		{name: "status of an unknown service", args: []string{"status", "nope"}, code: 1,
			stderr: "horustctl: no such service 'nope'"},
		{name: "status of a near miss suggests the name", args: []string{"status", "web"}, code: 1,
			stderr: "horustctl: no such service 'web'; did you mean 'web.toml'?"},
		{name: "stop of a near miss with a letter too many", args: []string{"stop", "dbb.toml"}, code: 1,
			stderr: "horustctl: no such service 'dbb.toml'; did you mean 'db.toml'?"},
		{name: "status alone prints a table", args: []string{"status"},
			has: []string{"NAME", "EXIT/REASON", "web.toml", "321", "2h3m", "healthy", "killed by KILL: killed: out of memory", "exit 0"}},
		{name: "start prints the new status", args: []string{"start", "job/x.toml"},
			stdout: "Current status for 'job/x.toml' is: 'STARTING'.\n"},
		{name: "stop prints the new status", args: []string{"stop", "web.toml"},
			stdout: "Current status for 'web.toml' is: 'INKILLING'.\n"},
		{name: "restart prints the new status", args: []string{"restart", "web.toml"},
			stdout: "Current status for 'web.toml' is: 'RUNNING'.\n"},
		{name: "restart an unknown service", args: []string{"restart", "nope"}, code: 1,
			stderr: "horustctl: no such service 'nope'"},
		{name: "kill sends TERM by default", args: []string{"kill", "web.toml"}, signals: []string{"web.toml:TERM"}},
		{name: "kill -s HUP", args: []string{"kill", "-s", "HUP", "web.toml"}, signals: []string{"web.toml:HUP"}},
		{name: "kill -s SIGUSR1 to two services", args: []string{"kill", "-s", "SIGUSR1", "web.toml", "db.toml"},
			signals: []string{"web.toml:USR1", "db.toml:USR1"}},
		{name: "kill with an unknown signal is a usage error", args: []string{"kill", "-s", "BOGUS", "web.toml"}, code: 2,
			stderr: `horustctl: unknown signal "BOGUS"; use one of HUP, INT, QUIT, ILL, TRAP, ABRT, BUS, FPE, KILL, USR1, SEGV, USR2, PIPE, ALRM, TERM, STKFLT, CHLD, CONT, STOP, TSTP, TTIN, TTOU, URG, XCPU, XFSZ, VTALRM, PROF, WINCH, IO, PWR, SYS`},
		{name: "shutdown", args: []string{"shutdown"}, shut: 1},
		{name: "wait for a running service", args: []string{"wait", "web.toml", "job/x.toml", "--for", "running"}},
		{name: "wait for a finished service", args: []string{"wait", "job/x.toml", "--for", "finished", "--timeout", "1s"}},
		{name: "wait that times out", args: []string{"wait", "web.toml", "--for", "finished", "--timeout", "200ms"}, code: 1,
			stderr: "horustctl: timed out after 200ms waiting for 'web.toml' (RUNNING) to be finished"},
		{name: "wait that can never succeed", args: []string{"wait", "db.toml"}, code: 1,
			stderr: "horustctl: service 'db.toml' is FINISHEDFAILED: the condition can never be met"},
		{name: "wait for an unknown service", args: []string{"wait", "nope"}, code: 1,
			stderr: "horustctl: service 'nope': no such service"},
		{name: "wait for a near miss", args: []string{"wait", "web.toml", "DB"}, code: 1,
			stderr: "horustctl: service 'DB': no such service; did you mean 'db.toml'?"},
		{name: "wait for something else is a usage error", args: []string{"wait", "web.toml", "--for", "dead"}, code: 2,
			stderr: `horustctl: --for "dead": running or finished`},
		{name: "start without a name is a usage error", args: []string{"start"}, code: 2,
			stderr: "horustctl: start needs at least one service name"},
		{name: "unknown command is a usage error", args: []string{"frobnicate"}, code: 2,
			stderr: `horustctl: unknown command "frobnicate" for "horustctl"`},
		{name: "unknown flag is a usage error", args: []string{"status", "--bogus"}, code: 2,
			stderr: "horustctl: unknown flag: --bogus"},
		{name: "no command is a usage error", args: []string{}, code: 2, stderr: "horustctl: a command is required"},
		{name: "version", args: []string{"--version"}, stdout: wantVersion},
		{name: "version short flag", args: []string{"-V"}, stdout: wantVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newB()
			path := serve(t, b, shortDir(t), 1)
			r := horustctl(t, append([]string{"--socket-path", path}, tc.args...)...)
			if tc.code != 0 {
				wantError(t, r, tc.code, tc.stderr)
			} else {
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
				}
				if tc.has == nil && r.stdout != tc.stdout {
					t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
				}
				for _, s := range tc.has {
					if !strings.Contains(r.stdout, s) {
						t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
					}
				}
			}
			signals, shut := b.snapshot()
			if !slices.Equal(signals, tc.signals) || shut != tc.shut {
				t.Errorf("backend got signals %q and %d shutdowns, want %q and %d", signals, shut, tc.signals, tc.shut)
			}
		})
	}
}

func TestStatusTable(t *testing.T) {
	b := newBackend(
		status.ServiceStatus{Name: "a", State: status.Running, PID: 7, UptimeSeconds: 75, StartedAt: time.Now(),
			Notify: &status.NotifyStatus{Ready: true}},
		status.ServiceStatus{Name: "bb", State: status.Initial, Reason: "waiting for 'a'"},
	)
	path := serve(t, b, shortDir(t), 1)
	r := horustctl(t, "--socket-path", path, "status")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	want := [][]string{
		{"NAME", "STATE", "PID", "RESTARTS", "UPTIME", "HEALTH", "EXIT/REASON"},
		{"a", "RUNNING", "7", "0", "1m15s", "notify:", "ready", "-"},
		{"bb", "INITIAL", "-", "0", "-", "-", "waiting", "for", "'a'"},
	}
	if r.code != 0 || len(lines) != len(want) {
		t.Fatalf("exit %d, %d lines:\n%s%s", r.code, len(lines), r.stdout, r.stderr)
	}
	for i, l := range lines {
		if got := strings.Fields(l); !slices.Equal(got, want[i]) {
			t.Errorf("line %d: %q, want fields %q", i, l, want[i])
		}
	}
	// The columns line up.
	if strings.Index(lines[0], "STATE") != strings.Index(lines[1], "RUNNING") {
		t.Errorf("columns do not line up:\n%s", r.stdout)
	}
}

func TestJSONOutput(t *testing.T) {
	b := newBackend(
		status.ServiceStatus{Name: "a", State: status.Running, PID: 7},
		status.ServiceStatus{Name: "b", State: status.Finished},
	)
	path := serve(t, b, shortDir(t), 1)
	decode := func(t *testing.T, args []string, v any) {
		t.Helper()
		r := horustctl(t, append([]string{"--socket-path", path, "--json"}, args...)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("%q: not JSON: %v\n%s", args, err, r.stdout)
		}
	}
	var list control.ServicesReply
	decode(t, []string{"status"}, &list)
	if len(list.Services) != 2 || list.Services[0].PID != 7 {
		t.Errorf("status --json: %+v", list)
	}
	var st status.ServiceStatus
	decode(t, []string{"status", "b"}, &st)
	if st.Name != "b" || st.State != status.Finished {
		t.Errorf("status b --json: %+v", st)
	}
	decode(t, []string{"restart", "a"}, &st)
	if st.Restarts != 1 {
		t.Errorf("restart --json: %+v", st)
	}
	var sig control.SignalReply
	decode(t, []string{"kill", "-s", "1", "a"}, &sig)
	if sig != (control.SignalReply{Name: "a", Signal: "HUP"}) {
		t.Errorf("kill --json: %+v", sig)
	}
	var w control.ServicesReply
	decode(t, []string{"wait", "a", "b"}, &w)
	if len(w.Services) != 2 {
		t.Errorf("wait --json: %+v", w)
	}
	var sd control.ShutdownReply
	decode(t, []string{"shutdown"}, &sd)
	if sd.Status != "shutting down" {
		t.Errorf("shutdown --json: %+v", sd)
	}
	// Errors stay one line on stderr, not JSON on stdout.
	wantError(t, horustctl(t, "--socket-path", path, "--json", "status", "nope"), 1, "horustctl: no such service 'nope'")
}

func TestWaitReturnsWhenTheServiceRuns(t *testing.T) {
	b := newBackend(status.ServiceStatus{Name: "a", State: status.Starting})
	path := serve(t, b, shortDir(t), 1)
	done := make(chan result, 1)
	go func() {
		cmd := exec.Command(bin, "--socket-path", path, "wait", "a", "--timeout", "30s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- result{code: code, stderr: stderr.String()}
	}()
	select {
	case r := <-done:
		t.Fatalf("wait returned while the service was STARTING: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := b.set("a", func(s *status.ServiceStatus) { s.State = status.Running }); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("wait: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("wait did not return after the service ran")
	}
}

// noSocketHint ends every error that found no socket.
const noSocketHint = " (point horustctl at horust with -u/--uds-folder-path or $HORUST_UDS_FOLDER_PATH, --pid, or --socket-path)"

func TestSocketDiscovery(t *testing.T) {
	b := newBackend(status.ServiceStatus{Name: "a", State: status.Running})
	t.Run("the one socket in the folder", func(t *testing.T) {
		dir := shortDir(t)
		serve(t, b, dir, 7)
		r := horustctl(t, "-u", dir, "status", "a")
		if r.code != 0 || r.stdout != "Current status for 'a' is: 'RUNNING'.\n" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("long flag names", func(t *testing.T) {
		dir := shortDir(t)
		serve(t, b, dir, 7)
		r := horustctl(t, "--uds-folder-path", dir, "--pid", "7", "status", "a")
		if r.code != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		dir := shortDir(t)
		wantError(t, horustctl(t, "-u", dir, "status", "a"), 1, "horustctl: no horust socket found in "+dir+noSocketHint)
	})
	t.Run("missing folder", func(t *testing.T) {
		dir := filepath.Join(shortDir(t), "gone")
		wantError(t, horustctl(t, "-u", dir, "status"), 1, "horustctl: no horust socket found in "+dir+": the folder does not exist"+noSocketHint)
	})
	t.Run("HORUST_UDS_FOLDER_PATH without -u", func(t *testing.T) {
		dir := shortDir(t)
		serve(t, b, dir, 7)
		r := horustctlEnv(t, []string{"HORUST_UDS_FOLDER_PATH=" + dir}, "status", "a")
		if r.code != 0 || r.stdout != "Current status for 'a' is: 'RUNNING'.\n" {
			t.Fatalf("%+v", r)
		}
		// -u wins over the variable.
		empty := shortDir(t)
		wantError(t, horustctlEnv(t, []string{"HORUST_UDS_FOLDER_PATH=" + dir}, "-u", empty, "status", "a"), 1,
			"horustctl: no horust socket found in "+empty+noSocketHint)
	})
	t.Run("several sockets", func(t *testing.T) {
		dir := shortDir(t)
		serve(t, b, dir, 1)
		serve(t, b, dir, 7)
		wantError(t, horustctl(t, "-u", dir, "status", "a"), 1,
			"horustctl: several horust sockets in "+dir+" (horust-1.sock, horust-7.sock): pick one with --pid")
	})
	t.Run("several sockets and --pid", func(t *testing.T) {
		dir := shortDir(t)
		serve(t, b, dir, 1)
		other := newBackend(status.ServiceStatus{Name: "a", State: status.Started})
		serve(t, other, dir, 7)
		r := horustctl(t, "-u", dir, "-p", "7", "status", "a")
		if r.code != 0 || r.stdout != "Current status for 'a' is: 'STARTED'.\n" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("--pid of no horust", func(t *testing.T) {
		dir := shortDir(t)
		serve(t, b, dir, 1)
		wantError(t, horustctl(t, "-u", dir, "-p", "9", "status", "a"), 1,
			"horustctl: no horust socket at "+filepath.Join(dir, "horust-9.sock")+noSocketHint)
	})
	t.Run("--socket-path to nothing", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "x.sock")
		wantError(t, horustctl(t, "--socket-path", path, "status"), 1, "horustctl: no horust socket at "+path+noSocketHint)
	})
	t.Run("--socket-path wins over the others", func(t *testing.T) {
		path := serve(t, b, shortDir(t), 3)
		r := horustctl(t, "-u", "/nonexistent", "-p", "99", "--socket-path", path, "status", "a")
		if r.code != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("a stale socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "horust-1.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		_ = l.Close()
		wantError(t, horustctl(t, "--socket-path", path, "status"), 1,
			"horustctl: nothing answers on "+path+" (horust is gone and left its socket)")
	})
	t.Run("horust gone mid-request", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "horust-1.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_ = c.Close()
		}()
		wantError(t, horustctl(t, "--socket-path", path, "status"), 1,
			"horustctl: horust at "+path+" closed the connection before answering (did it exit, or does it refuse this user?)")
	})
	t.Run("the temporary folder is a fallback", func(t *testing.T) {
		if _, err := os.Stat(control.DefaultSocketDir); err == nil {
			t.Skipf("%s exists here: the fallback is not reached", control.DefaultSocketDir)
		}
		tmp := shortDir(t)
		dir := filepath.Join(tmp, "horust-"+strconv.Itoa(os.Getuid()))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		serve(t, b, dir, 5)
		cmd := exec.Command(bin, "status", "a")
		cmd.Env = []string{"TMPDIR=" + tmp}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "Current status for 'a' is: 'RUNNING'.\n" {
			t.Fatalf("%v: %s", err, out)
		}
	})
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := horustctl(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "horustctl") {
			t.Errorf("completion %s: exit %d, %d bytes", shell, r.code, len(r.stdout))
		}
	}
	// Service names complete from the running horust.
	b := newBackend(status.ServiceStatus{Name: "web.toml", State: status.Running}, status.ServiceStatus{Name: "db.toml", State: status.Running})
	path := serve(t, b, shortDir(t), 1)
	r := horustctl(t, "__complete", "--socket-path", path, "restart", "")
	if r.code != 0 || !strings.Contains(r.stdout, "web.toml\n") || !strings.Contains(r.stdout, "db.toml\n") {
		t.Errorf("name completion: %+v", r)
	}
	// -u is honoured too (cobra runs no PersistentPreRun for completion).
	r = horustctl(t, "__complete", "-u", filepath.Dir(path), "status", "w")
	if r.code != 0 || !strings.Contains(r.stdout, "web.toml\n") {
		t.Errorf("name completion with -u: %+v", r)
	}
}

// TestWaitForTheSocket: a wait started before horust has made its socket
// waits for it within --timeout, and fails with the "no socket" error when
// none comes.
func TestWaitForTheSocket(t *testing.T) {
	dir := filepath.Join(shortDir(t), "later") // not even the folder yet
	done := make(chan result, 1)
	go func() {
		cmd := exec.Command(bin, "-u", dir, "wait", "a", "--timeout", "30s")
		cmd.Env = []string{"TMPDIR=" + shortDir(t)}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- result{code: code, stderr: stderr.String()}
	}()
	select {
	case r := <-done:
		t.Fatalf("wait returned before there was a socket: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	serve(t, newBackend(status.ServiceStatus{Name: "a", State: status.Running}), dir, 5)
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("wait: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("wait did not return once the socket was there")
	}

	empty := shortDir(t)
	start := time.Now()
	wantError(t, horustctl(t, "-u", empty, "wait", "a", "--timeout", "300ms"), 1,
		"horustctl: no horust socket found in "+empty+noSocketHint)
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before the timeout", waited)
	}
}

// TestHelpSaysWhatCommandsDo: the usage line needs a command (horustctl
// alone is a usage error), and stop's and wait's help say what they do.
func TestHelpSaysWhatCommandsDo(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		has, lack []string
	}{
		{[]string{"--help"}, []string{"Usage:\n  horustctl [command]\n", "top "}, []string{"horustctl [flags]"}},
		{[]string{"stop", "--help"}, []string{"FINISHEDFAILED if SIGKILL was needed"}, []string{"they end FINISHED)"}},
		{[]string{"wait", "--help"}, []string{"only once FINISHED", "fails after --timeout"}, nil},
		{[]string{"status", "--help"}, []string{"-w, --watch"}, nil},
	} {
		r := horustctl(t, tc.args...)
		if r.code != 0 {
			t.Errorf("%q: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
		for _, s := range tc.has {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%q: the help lacks %q:\n%s", tc.args, s, r.stdout)
			}
		}
		for _, s := range tc.lack {
			if strings.Contains(r.stdout, s) {
				t.Errorf("%q: the help still says %q:\n%s", tc.args, s, r.stdout)
			}
		}
	}
}
