//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/status"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Tests of the control plane against a running horust: horustctl, the API
// on the Unix socket and the probes on --http-addr.

func init() {
	// ctl-hup FILE: write the pid to FILE, append "HUP" to FILE.hup at every
	// SIGHUP, run until another signal ends it.
	registerRole("ctl-hup", func(args []string) int {
		if len(args) < 1 {
			return 100
		}
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGHUP)
		ready(args[0])
		for range ch {
			appendLine(args[0]+".hup", "HUP")
		}
		return 0
	})
	// ctl-count FILE N: append a line to FILE; exit 1 while FILE has fewer
	// than N lines, 0 at the Nth run.
	registerRole("ctl-count", func(args []string) int {
		if len(args) < 2 {
			return 100
		}
		appendLine(args[0], "run")
		n, _ := strconv.Atoi(args[1])
		if lines(args[0]) < n {
			return 1
		}
		return 0
	})
}

// ctlSocket is the one control socket of h.
func ctlSocket(t *testing.T, h *horust) string {
	t.Helper()
	return ctlSocketIn(t, h.uds)
}

// ctlSocketIn waits for exactly one horust-*.sock in dir and returns it.
func ctlSocketIn(t *testing.T, dir string) string {
	t.Helper()
	var sock string
	eventually(t, 10*time.Second, "the control socket in "+dir, func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "horust-*.sock"))
		if len(m) == 1 {
			sock = m[0]
			return true
		}
		return false
	})
	return sock
}

// ctlHTTP is an HTTP client whose every request goes to the unix socket
// sock on a fresh connection.
func ctlHTTP(sock string) *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}

// ctlReply is one HTTP answer.
type ctlReply struct {
	code int
	body string
	kind string // the "code" of an error body
}

// ctlDo sends one request and reads the whole answer.
func ctlDo(t *testing.T, c *http.Client, method, url string, body io.Reader, header map[string]string) ctlReply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	r := ctlReply{code: resp.StatusCode, body: string(b)}
	var e control.ErrorReply
	if json.Unmarshal(b, &e) == nil {
		r.kind = e.Code
	}
	return r
}

// ctlExpect checks a horustctl run: its exit code, its exact stdout (when
// stdout is not nil) and that stderr contains errPart ("" for none at all).
func ctlExpect(t *testing.T, what string, out, errOut string, code int, wantCode int, stdout *string, errPart string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: exit code %d, want %d\nstdout: %s\nstderr: %s", what, code, wantCode, out, errOut)
	}
	if stdout != nil && out != *stdout {
		t.Fatalf("%s: stdout %q, want %q (stderr %q)", what, out, *stdout, errOut)
	}
	if errPart == "" && errOut != "" {
		t.Fatalf("%s: unexpected stderr %q", what, errOut)
	}
	if !strings.Contains(errOut, errPart) {
		t.Fatalf("%s: stderr %q does not contain %q", what, errOut, errPart)
	}
	if wantCode == 1 && (!strings.HasPrefix(errOut, "horustctl: ") || strings.Count(errOut, "\n") != 1) {
		t.Fatalf("%s: an error must be one line \"horustctl: ...\", got %q", what, errOut)
	}
}

func ptr(s string) *string { return &s }

// ctlNoSocketHint ends horustctl's errors that found no socket.
const ctlNoSocketHint = " (point horustctl at horust with -u/--uds-folder-path or $HORUST_UDS_FOLDER_PATH, --pid, or --socket-path)"

// ctlStatusLine is the line horustctl status NAME prints.
func ctlStatusLine(name, state string) string {
	return fmt.Sprintf("Current status for '%s' is: '%s'.\n", name, state)
}

// ctlConnected counts the connections horust accepted on its control
// socket in dir: the connected sockets in /proc/net/unix whose address is
// in dir (the address is the name the socket was bound to, a temporary name
// that horust then renames).
func ctlConnected(dir string) int {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path. The path is where
		// the socket was bound: a private folder inside dir, before the
		// rename to its final name.
		fields := strings.Fields(sc.Text())
		if len(fields) == 8 && fields[5] == "03" && strings.HasPrefix(fields[7], dir+"/") {
			n++
		}
	}
	return n
}

// ctlWaitState polls horustctl status until name is in state. Unlike
// h.waitState, it leaves no idle keep-alive connection behind, so that
// ctlConnected counts only what a test opens afterwards.
func ctlWaitState(t *testing.T, h *horust, name, state string) {
	t.Helper()
	eventually(t, 10*time.Second, name+" to be "+state, func() bool {
		out, _, _ := h.ctl("status", name)
		return out == ctlStatusLine(name, state)
	})
	eventually(t, 10*time.Second, "horust to close the connections of horustctl", func() bool { return ctlConnected(h.uds) == 0 })
}

// ctlStart runs horustctl in the background; the returned function waits
// for it and returns its output and exit code.
func ctlStart(t *testing.T, args ...string) func(timeout time.Duration) (string, string, int) {
	t.Helper()
	cmd := exec.Command(horustctlBin, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return func(timeout time.Duration) (string, string, int) {
		t.Helper()
		var err error
		select {
		case err = <-done:
			done <- err // for the cleanup
		case <-time.After(timeout):
			t.Fatalf("horustctl %v did not return within %v", args, timeout)
		}
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("horustctl: %v", err)
		}
		return out.String(), errb.String(), code
	}
}

func TestControlCommands(t *testing.T) {
	tmp := t.TempDir()
	hupPid := filepath.Join(tmp, "hup.pid")
	checkFile := filepath.Join(tmp, "never")
	h := startHorust(t, runOpts{files: map[string]string{
		"ctl-hup.toml":  svc(role("ctl-hup", hupPid)),
		"ctl-done.toml": svc(role("exit", "0")),
		"ctl-fail.toml": svc(role("exit", "3")),
		"ctl-slow.toml": svc(role("sleep"), "[healthiness]", fmt.Sprintf("file-path = %q", checkFile)),
	}})
	h.waitState("ctl-hup.toml", 10*time.Second, "RUNNING")
	h.waitState("ctl-done.toml", 10*time.Second, "FINISHED")
	h.waitState("ctl-fail.toml", 10*time.Second, "FINISHEDFAILED")
	h.waitState("ctl-slow.toml", 10*time.Second, "STARTED")
	pid := readPid(t, hupPid)

	t.Run("status NAME prints the original's line", func(t *testing.T) {
		out, errOut, code := h.ctl("status", "ctl-hup.toml")
		ctlExpect(t, "status", out, errOut, code, 0, ptr("Current status for 'ctl-hup.toml' is: 'RUNNING'.\n"), "")
		out, errOut, code = h.ctl("status", "ctl-fail.toml", "ctl-done.toml")
		ctlExpect(t, "status of two", out, errOut, code, 0,
			ptr(ctlStatusLine("ctl-fail.toml", "FINISHEDFAILED")+ctlStatusLine("ctl-done.toml", "FINISHED")), "")
	})
	t.Run("status prints a table of every service", func(t *testing.T) {
		out, errOut, code := h.ctl("status")
		ctlExpect(t, "status", out, errOut, code, 0, nil, "")
		rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(rows) != 5 {
			t.Fatalf("want a header and 4 rows:\n%s", out)
		}
		if f := strings.Fields(rows[0]); strings.Join(f, " ") != "NAME STATE PID RESTARTS UPTIME HEALTH EXIT/REASON" {
			t.Fatalf("header %q", rows[0])
		}
		byName := map[string][]string{}
		for _, r := range rows[1:] {
			f := strings.Fields(r)
			byName[f[0]] = f
		}
		want := map[string]string{
			"ctl-hup.toml":  fmt.Sprintf("ctl-hup.toml RUNNING %d 0", pid),
			"ctl-done.toml": "ctl-done.toml FINISHED - 0 - - exit 0",
			"ctl-fail.toml": "ctl-fail.toml FINISHEDFAILED - 0 - - exit 3",
			"ctl-slow.toml": "ctl-slow.toml STARTED",
		}
		for name, prefix := range want {
			if got := strings.Join(byName[name], " "); !strings.HasPrefix(got, prefix) {
				t.Errorf("row of %s is %q, want it to start with %q", name, got, prefix)
			}
		}
		if got := byName["ctl-slow.toml"]; len(got) < 6 || (got[5] != "unknown" && got[5] != "unhealthy") {
			t.Errorf("health of ctl-slow.toml in %v, want unknown or unhealthy", got)
		}
	})
	t.Run("status --json", func(t *testing.T) {
		out, errOut, code := h.ctl("--json", "status")
		ctlExpect(t, "status --json", out, errOut, code, 0, nil, "")
		var all control.ServicesReply
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if len(all.Services) != 4 {
			t.Fatalf("%d services, want 4: %s", len(all.Services), out)
		}
		out, errOut, code = h.ctl("status", "--json", "ctl-hup.toml")
		ctlExpect(t, "status --json NAME", out, errOut, code, 0, nil, "")
		var st status.ServiceStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if st.Name != "ctl-hup.toml" || st.State != status.Running || st.PID != pid || st.StartedAt.IsZero() {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("unknown service is exit 1 with one line", func(t *testing.T) {
		for _, args := range [][]string{
			{"status", "nope"}, {"start", "nope"}, {"stop", "nope"}, {"restart", "nope"},
			{"kill", "-s", "HUP", "nope"}, {"wait", "nope", "--timeout", "5s"},
		} {
			out, errOut, code := h.ctl(args...)
			ctlExpect(t, strings.Join(args, " "), out, errOut, code, 1, ptr(""), "horustctl: no such service 'nope'")
		}
	})
	t.Run("kill -s HUP reaches the service", func(t *testing.T) {
		out, errOut, code := h.ctl("kill", "-s", "HUP", "ctl-hup.toml")
		ctlExpect(t, "kill", out, errOut, code, 0, ptr(""), "")
		eventually(t, 10*time.Second, "the service to get HUP", func() bool { return lines(hupPid+".hup") >= 1 })
		out, errOut, code = h.ctl("--json", "kill", "-s", "SIGHUP", "ctl-hup.toml")
		ctlExpect(t, "kill --json", out, errOut, code, 0, nil, "")
		var rep control.SignalReply
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep != (control.SignalReply{Name: "ctl-hup.toml", Signal: "HUP"}) {
			t.Fatalf("kill --json printed %q (%v)", out, err)
		}
		eventually(t, 10*time.Second, "the service to get the second HUP", func() bool { return lines(hupPid+".hup") >= 2 })
		// Each process gets the signal once, not once for its process
		// group and again for its cgroup. A third HUP sent straight to the
		// process marks the end: every earlier one has been handled then.
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the service to get the direct HUP", func() bool { return lines(hupPid+".hup") >= 3 })
		if n := lines(hupPid + ".hup"); n != 3 {
			t.Fatalf("two horustctl kill -s HUP and one kill(2): the service handled %d HUPs, want 3", n)
		}
		if st := h.status("ctl-hup.toml"); st.State != status.Running || st.PID != pid {
			t.Fatalf("after HUP: %+v", st)
		}
	})
	t.Run("kill of a service without a process", func(t *testing.T) {
		out, errOut, code := h.ctl("kill", "-s", "HUP", "ctl-done.toml")
		ctlExpect(t, "kill", out, errOut, code, 1, ptr(""), "not running")
		r := ctlDo(t, ctlHTTP(ctlSocket(t, h)), "POST", "http://horust/v1/services/ctl-done.toml/signal",
			strings.NewReader(`{"signal":"HUP"}`), nil)
		if r.code != http.StatusConflict || r.kind != "not_running" || !strings.Contains(r.body, "ctl-done.toml") {
			t.Fatalf("signal to a finished service: %d %s", r.code, r.body)
		}
	})
	t.Run("wait", func(t *testing.T) {
		out, errOut, code := h.ctl("wait", "ctl-hup.toml", "ctl-done.toml", "--timeout", "10s")
		ctlExpect(t, "wait for running", out, errOut, code, 0, ptr(""), "")
		out, errOut, code = h.ctl("wait", "ctl-done.toml", "ctl-fail.toml", "--for", "finished", "--timeout", "10s")
		ctlExpect(t, "wait for finished", out, errOut, code, 0, ptr(""), "")
		out, errOut, code = h.ctl("--json", "wait", "ctl-hup.toml", "--timeout", "10s")
		ctlExpect(t, "wait --json", out, errOut, code, 0, nil, "")
		var rep control.ServicesReply
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Services) != 1 || rep.Services[0].State != status.Running {
			t.Fatalf("wait --json printed %q (%v)", out, err)
		}
		start := time.Now()
		out, errOut, code = h.ctl("wait", "ctl-slow.toml", "--timeout", "1s")
		ctlExpect(t, "wait that times out", out, errOut, code, 1, ptr(""),
			"horustctl: timed out after 1s waiting for 'ctl-slow.toml' (STARTED) to be running")
		if d := time.Since(start); d < time.Second {
			t.Fatalf("the wait returned after %v, before its timeout", d)
		}
		out, errOut, code = h.ctl("wait", "ctl-hup.toml", "--for", "finished", "--timeout", "1s")
		ctlExpect(t, "wait for finished that times out", out, errOut, code, 1, ptr(""), "(RUNNING) to be finished")
		start = time.Now()
		out, errOut, code = h.ctl("wait", "ctl-fail.toml", "--timeout", "60s")
		ctlExpect(t, "wait that can never succeed", out, errOut, code, 1, ptr(""), "'ctl-fail.toml' is FINISHEDFAILED")
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("an unreachable wait took %v: it must fail at once", d)
		}
	})
	t.Run("start a finished service", func(t *testing.T) {
		before := h.status("ctl-done.toml").Restarts
		out, errOut, code := h.ctl("start", "ctl-done.toml")
		ctlExpect(t, "start", out, errOut, code, 0, nil, "")
		if !strings.HasPrefix(out, "Current status for 'ctl-done.toml' is: '") || strings.Count(out, "\n") != 1 {
			t.Fatalf("start printed %q", out)
		}
		eventually(t, 10*time.Second, "the service to run again and finish", func() bool {
			st := h.status("ctl-done.toml")
			return st.State == status.Finished && st.Restarts == before+1
		})
		out, errOut, code = h.ctl("--json", "start", "ctl-done.toml")
		ctlExpect(t, "start --json", out, errOut, code, 0, nil, "")
		var st status.ServiceStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil || st.Name != "ctl-done.toml" {
			t.Fatalf("start --json printed %q (%v)", out, err)
		}
		eventually(t, 10*time.Second, "the service to run a third time", func() bool {
			st := h.status("ctl-done.toml")
			return st.State == status.Finished && st.Restarts == before+2
		})
	})
	t.Run("restart gives a new process", func(t *testing.T) {
		_ = os.Remove(hupPid)
		out, errOut, code := h.ctl("restart", "ctl-hup.toml")
		ctlExpect(t, "restart", out, errOut, code, 0, nil, "")
		if !strings.HasPrefix(out, "Current status for 'ctl-hup.toml' is: '") {
			t.Fatalf("restart printed %q", out)
		}
		newPid := readPid(t, hupPid)
		if newPid == pid {
			t.Fatalf("the pid is still %d after a restart", pid)
		}
		h.waitState("ctl-hup.toml", 10*time.Second, "RUNNING")
		if pidAlive(pid) {
			t.Fatalf("the old process %d still runs", pid)
		}
		if st := h.status("ctl-hup.toml"); st.Restarts != 1 || st.PID != newPid {
			t.Fatalf("after restart: %+v, want restarts 1 and pid %d", st, newPid)
		}
		pid = newPid
	})
	t.Run("stop stops for good", func(t *testing.T) {
		out, errOut, code := h.ctl("--json", "stop", "ctl-hup.toml")
		ctlExpect(t, "stop", out, errOut, code, 0, nil, "")
		var st status.ServiceStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil || st.Name != "ctl-hup.toml" {
			t.Fatalf("stop --json printed %q (%v)", out, err)
		}
		out, errOut, code = h.ctl("wait", "ctl-hup.toml", "--for", "finished", "--timeout", "20s")
		ctlExpect(t, "wait for the stop", out, errOut, code, 0, ptr(""), "")
		out, errOut, code = h.ctl("status", "ctl-hup.toml")
		ctlExpect(t, "status after stop", out, errOut, code, 0, ptr(ctlStatusLine("ctl-hup.toml", "FINISHED")), "")
		if pidAlive(pid) {
			t.Fatalf("the stopped process %d still runs", pid)
		}
		if st := h.status("ctl-hup.toml"); st.Restarts != 1 {
			t.Fatalf("a stopped service was restarted: %+v", st)
		}
	})
	t.Run("usage errors are exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{}, {"stop"}, {"bogus"}, {"--bogus-flag", "status"}, {"wait", "x", "--for", "ready"},
			{"kill", "-s", "NOSUCHSIG", "ctl-slow.toml"}, {"shutdown", "extra"},
		} {
			out, errOut, code := h.ctl(args...)
			if code != 2 || out != "" || !strings.HasPrefix(errOut, "horustctl: ") {
				t.Errorf("horustctl %v: exit %d, stdout %q, stderr %q; want 2 and a message", args, code, out, errOut)
			}
		}
		if h.state("ctl-slow.toml") != "STARTED" {
			t.Fatal("a usage error changed a service")
		}
	})
	t.Run("version", func(t *testing.T) {
		for _, flag := range []string{"--version", "-V"} {
			out, errOut, code := runCtl(t, flag)
			if code != 0 || !strings.HasPrefix(out, "horustctl ") || strings.Count(out, "\n") != 1 || errOut != "" {
				t.Fatalf("%s: exit %d, stdout %q, stderr %q", flag, code, out, errOut)
			}
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		out, errOut, code := h.ctl("shutdown")
		ctlExpect(t, "shutdown", out, errOut, code, 0, ptr(""), "")
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("horust exited %d after shutdown, want 0", code)
		}
		if m, _ := filepath.Glob(filepath.Join(h.uds, "*")); len(m) != 0 {
			t.Fatalf("left in the socket folder: %v", m)
		}
		out, errOut, code = h.ctl("status")
		ctlExpect(t, "status after exit", out, errOut, code, 1, ptr(""), "no horust socket found in "+h.uds)
	})
}

func TestControlSocketDiscovery(t *testing.T) {
	shared := t.TempDir()
	var hs []*horust
	for _, name := range []string{"ctl-first.toml", "ctl-second.toml"} {
		dir := servicesDir(t, map[string]string{name: svc(role("sleep"))})
		hs = append(hs, startHorust(t, runOpts{noArgs: true, args: []string{"--services-path", dir, "--uds-folder-path", shared}}))
	}
	eventually(t, 10*time.Second, "two sockets", func() bool {
		m, _ := filepath.Glob(filepath.Join(shared, "horust-*.sock"))
		return len(m) == 2
	})
	pids := []int{hs[0].cmd.Process.Pid, hs[1].cmd.Process.Pid}
	for i, name := range []string{"ctl-first.toml", "ctl-second.toml"} {
		p := strconv.Itoa(pids[i])
		sock := filepath.Join(shared, control.SocketName(pids[i]))
		eventually(t, 10*time.Second, name+" to run", func() bool {
			out, _, _ := runCtl(t, "-u", shared, "-p", p, "status", name)
			return out == ctlStatusLine(name, "RUNNING")
		})
		out, errOut, code := runCtl(t, "--uds-folder-path", shared, "--pid", p, "status", name)
		ctlExpect(t, "--pid", out, errOut, code, 0, ptr(ctlStatusLine(name, "RUNNING")), "")
		out, errOut, code = runCtl(t, "--socket-path", sock, "status", name)
		ctlExpect(t, "--socket-path", out, errOut, code, 0, ptr(ctlStatusLine(name, "RUNNING")), "")
		other := []string{"ctl-second.toml", "ctl-first.toml"}[i]
		out, errOut, code = runCtl(t, "-u", shared, "-p", p, "status", other)
		ctlExpect(t, "--pid of the other horust", out, errOut, code, 1, ptr(""), "no such service '"+other+"'")
	}

	empty := t.TempDir()
	missing := filepath.Join(empty, "missing")
	cases := []struct {
		name string
		args []string
		err  string
	}{
		{"several sockets", []string{"-u", shared, "status"}, fmt.Sprintf("several horust sockets in %s (%s, %s): pick one with --pid",
			shared, control.SocketName(min(pids[0], pids[1])), control.SocketName(max(pids[0], pids[1])))},
		{"no socket in the folder", []string{"-u", empty, "status"}, "horustctl: no horust socket found in " + empty + ctlNoSocketHint + "\n"},
		{"folder does not exist", []string{"-u", missing, "status"}, "horustctl: no horust socket found in " + missing + ": the folder does not exist" + ctlNoSocketHint + "\n"},
		{"pid without a socket", []string{"-u", shared, "-p", "999999999", "status"}, "no horust socket at " + filepath.Join(shared, "horust-999999999.sock")},
		{"socket path without a socket", []string{"--socket-path", filepath.Join(empty, "x.sock"), "status"}, "no horust socket at " + filepath.Join(empty, "x.sock")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCtl(t, tc.args...)
			ctlExpect(t, tc.name, out, errOut, code, 1, ptr(""), tc.err)
		})
	}
}

func TestControlHorustGoneMidRequest(t *testing.T) {
	tmp := t.TempDir()
	// No cgroups: this horust is killed and cannot clean them up.
	h := startHorust(t, runOpts{args: []string{"--no-cgroups"}, files: map[string]string{
		"ctl-gone.toml": svc(role("sleep"), "[healthiness]", fmt.Sprintf("file-path = %q", filepath.Join(tmp, "never"))),
	}})
	sock := ctlSocket(t, h)
	ctlWaitState(t, h, "ctl-gone.toml", "STARTED")
	wait := ctlStart(t, "-u", h.uds, "wait", "ctl-gone.toml", "--timeout", "2m")
	eventually(t, 10*time.Second, "horust to accept the wait's connection", func() bool { return ctlConnected(h.uds) == 1 })
	h.signal(syscall.SIGKILL)
	out, errOut, code := wait(20 * time.Second)
	ctlExpect(t, "wait while horust dies", out, errOut, code, 1, ptr(""), "closed the connection before answering")

	out, errOut, code = h.ctl("status")
	ctlExpect(t, "status on the socket left behind", out, errOut, code, 1, ptr(""),
		"nothing answers on "+sock+" (horust is gone and left its socket)")
}

func TestControlStaleSocketIsReplaced(t *testing.T) {
	requireRoot(t)
	uds := t.TempDir()
	stale := filepath.Join(uds, control.SocketName(1))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if c, err := net.Dial("unix", stale); err == nil {
		c.Close()
		t.Fatal("the stale socket accepts connections")
	}
	// As PID 1 of a new pid namespace, horust's socket has the stale one's
	// name. Replaced is told by a connection, not by the inode, which the
	// filesystem may give the new socket again.
	dir := servicesDir(t, map[string]string{"ctl-stale.toml": svc(role("sleep"))})
	h := startHorust(t, runOpts{pidNS: true, noArgs: true, args: []string{"--services-path", dir, "--uds-folder-path", uds}})
	eventually(t, 10*time.Second, "the stale socket to be replaced", func() bool {
		c, err := net.Dial("unix", stale)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	eventually(t, 10*time.Second, "the service to run", func() bool {
		out, _, _ := runCtl(t, "-u", uds, "status", "ctl-stale.toml")
		return out == ctlStatusLine("ctl-stale.toml", "RUNNING")
	})
	out, errOut, code := runCtl(t, "-u", uds, "-p", "1", "status", "ctl-stale.toml")
	ctlExpect(t, "status", out, errOut, code, 0, ptr(ctlStatusLine("ctl-stale.toml", "RUNNING")), "")
	if m, _ := filepath.Glob(filepath.Join(uds, "*")); len(m) != 1 {
		t.Fatalf("the socket folder holds %v, want the socket alone", m)
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exited %d", code)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket is still there after exit: %v", err)
	}
}

func TestControlConcurrentClientsDuringRestartLoop(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{
		// /bin/true, not a role: a race-enabled test binary that exits 0
		// lingers for a second (the race detector's exit hook).
		"ctl-loop.toml":   svc("/bin/true", "[restart]", `strategy = "always"`, `backoff = "0s"`),
		"ctl-steady.toml": svc(role("sleep")),
	}})
	h.waitState("ctl-steady.toml", 10*time.Second, "RUNNING")
	eventually(t, 20*time.Second, "the loop to restart", func() bool { return h.status("ctl-loop.toml").Restarts >= 3 })
	before := h.status("ctl-loop.toml").Restarts
	sock := ctlSocket(t, h)

	const clients, rounds = 200, 3
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds*4)
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(sock) // a connection of its own
			hc := ctlHTTP(sock)
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for r := range rounds {
				list, err := c.List(ctx)
				if err == nil && len(list) != 2 {
					err = fmt.Errorf("list of %d services", len(list))
				}
				if err != nil {
					errs <- fmt.Errorf("client %d list: %w", i, err)
				}
				if st, err := c.Get(ctx, "ctl-loop.toml"); err != nil || st.Name != "ctl-loop.toml" {
					errs <- fmt.Errorf("client %d get: %+v %v", i, st, err)
				}
				if _, err := c.Wait(ctx, []string{"ctl-steady.toml"}, control.WaitRunning, 30*time.Second); err != nil {
					errs <- fmt.Errorf("client %d wait: %w", i, err)
				}
				if r == 0 {
					resp, err := hc.Get("http://horust/healthz")
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil {
						errs <- fmt.Errorf("client %d healthz: %w", i, err)
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d requests failed", n, clients*(rounds*3+1))
	}
	if after := h.status("ctl-loop.toml").Restarts; after <= before {
		t.Fatalf("the service did not restart during the requests (restarts %d, then %d)", before, after)
	}
	if h.exited() {
		t.Fatal("horust exited")
	}
}

func TestControlSilentClientsDoNotBlockOthers(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{"ctl-quiet.toml": svc(role("sleep"))}})
	sock := ctlSocket(t, h)
	ctlWaitState(t, h, "ctl-quiet.toml", "RUNNING")
	var conns []net.Conn
	for i := range 10 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if i%2 == 1 { // half of them start a request and never finish it
			if _, err := io.WriteString(c, "GET /v1/services HTTP/1.1\r\nHost: horust\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	eventually(t, 10*time.Second, "horust to accept the silent connections", func() bool { return ctlConnected(h.uds) == 10 })

	out, errOut, code := h.ctl("status", "ctl-quiet.toml")
	ctlExpect(t, "status beside silent clients", out, errOut, code, 0, ptr(ctlStatusLine("ctl-quiet.toml", "RUNNING")), "")
	if _, err := h.client().Wait(context.Background(), []string{"ctl-quiet.toml"}, control.WaitRunning, 10*time.Second); err != nil {
		t.Fatalf("wait beside silent clients: %v", err)
	}
	// Had the others waited for the silent ones, horust would have closed
	// these first (after its 5 s header timeout).
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent connection %d was answered or closed before the others were served: %v", i, err)
		}
	}
	// And horust drops them once the header timeout passed.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("silent connection %d: %v", i, err)
		}
		if i%2 == 1 && len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
			t.Fatalf("a half-sent request got %q", b)
		}
	}
	if st := h.status("ctl-quiet.toml"); st.State != status.Running {
		t.Fatalf("after the silent clients: %+v", st)
	}
}

func TestControlBadRequests(t *testing.T) {
	tmp := t.TempDir()
	hupPid := filepath.Join(tmp, "pid")
	h := startHorust(t, runOpts{files: map[string]string{"ctl-target.toml": svc(role("ctl-hup", hupPid))}})
	h.waitState("ctl-target.toml", 10*time.Second, "RUNNING")
	pid := readPid(t, hupPid)
	sock := ctlSocket(t, h)
	hc := ctlHTTP(sock)
	const sigURL = "http://horust/v1/services/ctl-target.toml/signal"
	big := `{"signal":"HUP","pad":"` + strings.Repeat("x", 100<<10) + `"}`
	jsonType := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name   string
		method string
		url    string
		body   func() io.Reader
		header map[string]string
		code   int
		kind   string
	}{
		{"malformed JSON", "POST", sigURL, func() io.Reader { return strings.NewReader(`{"signal":`) }, jsonType, 400, "bad_request"},
		{"not an object", "POST", sigURL, func() io.Reader { return strings.NewReader(`"HUP"`) }, jsonType, 400, "bad_request"},
		{"unknown field", "POST", sigURL, func() io.Reader { return strings.NewReader(`{"signal":"HUP","x":1}`) }, jsonType, 400, "bad_request"},
		{"unknown signal", "POST", sigURL, func() io.Reader { return strings.NewReader(`{"signal":"NOPE"}`) }, jsonType, 400, "bad_request"},
		{"signal number out of range", "POST", sigURL, func() io.Reader { return strings.NewReader(`{"signal":99}`) }, jsonType, 400, "bad_request"},
		{"empty body", "POST", sigURL, func() io.Reader { return strings.NewReader("") }, jsonType, 400, "bad_request"},
		{"two objects", "POST", sigURL, func() io.Reader { return strings.NewReader(`{"signal":"HUP"}{"signal":"HUP"}`) }, jsonType, 400, "bad_request"},
		{"unknown wait parameter", "GET", "http://horust/v1/wait?services=ctl-target.toml", nil, nil, 400, "bad_request"},
		{"bad wait timeout", "GET", "http://horust/v1/wait?service=ctl-target.toml&timeout=soon", nil, nil, 400, "bad_request"},
		{"bad wait condition", "GET", "http://horust/v1/wait?service=ctl-target.toml&for=ever", nil, nil, 400, "bad_request"},
		{"unknown path", "GET", "http://horust/v1/nope", nil, nil, 404, "no_endpoint"},
		{"wrong method", "DELETE", "http://horust/v1/services/ctl-target.toml", nil, nil, 405, "method_not_allowed"},
		{"header over 16 KiB", "GET", "http://horust/v1/services", nil, map[string]string{"X-Big": strings.Repeat("y", 32<<10)}, 431, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			r := ctlDo(t, hc, tc.method, tc.url, body, tc.header)
			if r.code != tc.code || r.kind != tc.kind {
				t.Fatalf("%d %q, want %d %q: %s", r.code, r.kind, tc.code, tc.kind, r.body)
			}
		})
	}
	// Oversized bodies go on raw connections: horust answers 413 without
	// reading the rest and closes, so a client may fail to write the body
	// (EPIPE) before it reads the answer; the writes are not checked.
	oversized := []struct{ name, request string }{
		{"oversized body", "POST /v1/services/ctl-target.toml/signal HTTP/1.1\r\nHost: horust\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(big)) + big},
		{"oversized chunked body", "POST /v1/services/ctl-target.toml/signal HTTP/1.1\r\nHost: horust\r\nContent-Type: application/json\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)},
	}
	for _, tc := range oversized {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			go func() { _, _ = io.WriteString(c, tc.request) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e control.ErrorReply
			if resp.StatusCode != 413 || json.Unmarshal(b, &e) != nil || e.Code != "too_large" {
				t.Fatalf("%d %s, want 413 too_large", resp.StatusCode, b)
			}
		})
	}
	t.Run("garbage instead of HTTP", func(t *testing.T) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("\x00\x01\x02 hello horust\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 400")) {
			t.Fatalf("answer %q, want 400", b)
		}
	})
	if h.exited() {
		t.Fatal("horust exited")
	}
	if r := ctlDo(t, hc, "GET", "http://horust/healthz", nil, nil); r.code != 200 {
		t.Fatalf("healthz after the bad requests: %d %s", r.code, r.body)
	}
	if st := h.status("ctl-target.toml"); st.State != status.Running || st.PID != pid {
		t.Fatalf("the service changed: %+v", st)
	}
	if n := lines(hupPid + ".hup"); n != 0 {
		t.Fatalf("a rejected request delivered %d signals", n)
	}
}

// ctlFreeAddr is a local TCP address nothing listens on right now.
func ctlFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// ctlScrape gets /metrics and parses it with Prometheus's text parser.
func ctlScrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v\n%s", resp.StatusCode, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the Prometheus text parser rejects /metrics: %v\n%s", err, b)
	}
	return mfs
}

// ctlSample is the value of the sample of family name with the labels, and
// whether there is one.
func ctlSample(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func TestControlMetricsAndReadyz(t *testing.T) {
	tmp := t.TempDir()
	runs := filepath.Join(tmp, "runs")
	up := filepath.Join(tmp, "up")
	const wantRuns = 15
	addr := ctlFreeAddr(t)
	base := "http://" + addr
	h := startHorust(t, runOpts{args: []string{"--http-addr", addr}, files: map[string]string{
		"ctl-count.toml": svc(role("ctl-count", runs, strconv.Itoa(wantRuns)), "[restart]", `strategy = "on-failure"`, `backoff = "0s"`, `min-uptime = "0s"`),
		"ctl-ready.toml": svc(role("sleep"), "[healthiness]", fmt.Sprintf("file-path = %q", up), `interval = "100ms"`),
	}})
	h.waitState("ctl-ready.toml", 10*time.Second, "STARTED")
	get := func(path string) ctlReply { return ctlDo(t, http.DefaultClient, "GET", base+path, nil, nil) }

	r := get("/readyz")
	var ready control.ReadyReply
	if err := json.Unmarshal([]byte(r.body), &ready); err != nil || r.code != 503 || ready.Ready {
		t.Fatalf("/readyz with a service STARTED: %d %s", r.code, r.body)
	}
	if !strings.Contains(ready.Error, "'ctl-ready.toml' (STARTED)") {
		t.Fatalf("/readyz does not name the late service: %s", r.body)
	}
	if r := get("/healthz"); r.code != 200 || !strings.Contains(r.body, `"status": "ok"`) {
		t.Fatalf("/healthz: %d %s", r.code, r.body)
	}

	h.waitState("ctl-count.toml", 30*time.Second, "FINISHED")
	if n := lines(runs); n != wantRuns {
		t.Fatalf("the service ran %d times, want %d", n, wantRuns)
	}
	mfs := ctlScrape(t, base)
	if v, ok := ctlSample(mfs, "horust_service_restarts_total", "service", "ctl-count.toml"); !ok || v != wantRuns-1 {
		t.Fatalf("horust_service_restarts_total of ctl-count.toml = %v (present %v), want %d (runs - 1)", v, ok, wantRuns-1)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"horust_service_state", []string{"service", "ctl-count.toml", "state", "FINISHED"}, 1},
		{"horust_service_state", []string{"service", "ctl-count.toml", "state", "RUNNING"}, 0},
		{"horust_service_state", []string{"service", "ctl-ready.toml", "state", "STARTED"}, 1},
		{"horust_service_last_exit_code", []string{"service", "ctl-count.toml"}, 0},
		{"horust_service_restarts_total", []string{"service", "ctl-ready.toml"}, 0},
		{"horust_service_health_check_failures_total", []string{"service", "ctl-count.toml"}, 0},
	} {
		if v, ok := ctlSample(mfs, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if n := len(mfs["horust_service_state"].GetMetric()); n != 2*int(status.NumStates) {
		t.Errorf("%d horust_service_state samples, want %d", n, 2*int(status.NumStates))
	}
	if v, ok := ctlSample(mfs, "horust_service_start_time_seconds", "service", "ctl-ready.toml"); !ok || time.Since(time.Unix(int64(v), 0)) > time.Hour {
		t.Errorf("horust_service_start_time_seconds of the running service: %v (present %v)", v, ok)
	}
	if _, ok := ctlSample(mfs, "horust_service_start_time_seconds", "service", "ctl-count.toml"); ok {
		t.Error("a finished service has a start time")
	}
	for _, name := range []string{"horust_build_info", "process_resident_memory_bytes", "process_open_fds", "go_goroutines"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("no %s in /metrics", name)
		}
	}

	if err := os.WriteFile(up, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "/readyz to answer 200", func() bool { return get("/readyz").code == 200 })
	if r := get("/readyz"); r.code != 200 || json.Unmarshal([]byte(r.body), &ready) != nil || !ready.Ready {
		t.Fatalf("/readyz once every service runs: %d %s", r.code, r.body)
	}
	if st := h.status("ctl-ready.toml"); st.State != status.Running {
		t.Fatalf("/readyz is 200 but the service is %s", st.State)
	}
	mfs = ctlScrape(t, base)
	if v, _ := ctlSample(mfs, "horust_service_state", "service", "ctl-ready.toml", "state", "RUNNING"); v != 1 {
		t.Error("horust_service_state does not show the service RUNNING")
	}

	// The TCP listener changes nothing.
	if r := get("/v1/services"); r.code != 404 {
		t.Errorf("GET /v1/services on --http-addr: %d %s", r.code, r.body)
	}
	for _, path := range []string{"/v1/shutdown", "/v1/services/ctl-ready.toml/stop", "/healthz"} {
		resp, err := http.Post(base+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			t.Errorf("POST %s on --http-addr: %d", path, resp.StatusCode)
		}
	}
	if h.exited() || h.state("ctl-ready.toml") != "RUNNING" {
		t.Fatal("a request on --http-addr changed something")
	}
}

// ctlAsNobody runs a command as the user nobody (uid and gid 65534, no
// supplementary groups).
func ctlAsNobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	return cmd
}

// ctlRunAsNobody runs horustctl as nobody with env.
func ctlRunAsNobody(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := ctlAsNobody(exec.Command(horustctlBin, args...))
	cmd.Env = env
	cmd.Dir = "/"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("horustctl as nobody: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestControlSocketIsOwnerOnly(t *testing.T) {
	requireRoot(t)
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{"ctl-private.toml": svc(role("sleep"))}})
	h.waitState("ctl-private.toml", 10*time.Second, "RUNNING")
	sock := ctlSocket(t, h)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("socket %s: mode %v, owner %d; want a 0600 socket of root", sock, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	// Let nobody reach the folder, so that only the socket's mode stops it.
	for _, d := range []string{filepath.Dir(h.uds), h.uds} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=/usr/bin:/bin"}
	out, errOut, code := ctlRunAsNobody(t, env, "--socket-path", sock, "status", "ctl-private.toml")
	ctlExpect(t, "status as nobody", out, errOut, code, 1, ptr(""), "no permission to connect to "+sock)
	out, errOut, code = ctlRunAsNobody(t, env, "-u", h.uds, "-p", strconv.Itoa(h.cmd.Process.Pid), "shutdown")
	ctlExpect(t, "shutdown as nobody", out, errOut, code, 1, ptr(""), "no permission")
	if h.exited() || h.state("ctl-private.toml") != "RUNNING" {
		t.Fatal("nobody changed something")
	}
	// With the mode opened up, nobody connects, and horust's check of its
	// peer (SO_PEERCRED) closes the connection unanswered.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = ctlRunAsNobody(t, env, "--socket-path", sock, "status", "ctl-private.toml")
	ctlExpect(t, "status as nobody on a 0666 socket", out, errOut, code, 1, ptr(""), "closed the connection before answering")
	out, errOut, code = ctlRunAsNobody(t, env, "--socket-path", sock, "shutdown")
	ctlExpect(t, "shutdown as nobody on a 0666 socket", out, errOut, code, 1, ptr(""), "closed the connection before answering")
	if h.exited() || h.state("ctl-private.toml") != "RUNNING" {
		t.Fatal("nobody changed something")
	}
	if !strings.Contains(h.stderr.String(), "control socket: connection refused") {
		t.Fatalf("the refusal is not logged:\n%s", h.stderr)
	}
}

func TestControlAnswersDuringGracefulShutdown(t *testing.T) {
	tmp := t.TempDir()
	trapped := filepath.Join(tmp, "trap")
	h := startHorust(t, runOpts{files: map[string]string{
		"ctl-slowstop.toml": svc(role("trap", "TERM", "0", "3s", trapped), "[termination]", `wait = "20s"`),
		"ctl-over.toml":     svc(role("exit", "0")),
	}})
	readPid(t, trapped)
	h.waitState("ctl-slowstop.toml", 10*time.Second, "RUNNING")
	h.waitState("ctl-over.toml", 10*time.Second, "FINISHED")
	sock := ctlSocket(t, h)

	out, errOut, code := h.ctl("shutdown")
	ctlExpect(t, "shutdown", out, errOut, code, 0, ptr(""), "")
	eventually(t, 10*time.Second, "the service to get TERM", func() bool { return strings.Contains(readFile(trapped), "got TERM") })
	// The service takes 3 s to stop; meanwhile the socket answers.
	out, errOut, code = h.ctl("status", "ctl-slowstop.toml")
	ctlExpect(t, "status during the shutdown", out, errOut, code, 0, ptr(ctlStatusLine("ctl-slowstop.toml", "INKILLING")), "")
	out, errOut, code = h.ctl("status")
	ctlExpect(t, "status table during the shutdown", out, errOut, code, 0, nil, "")
	if !strings.Contains(out, "INKILLING") {
		t.Fatalf("the table does not show INKILLING:\n%s", out)
	}
	out, errOut, code = h.ctl("start", "ctl-over.toml")
	ctlExpect(t, "start during the shutdown", out, errOut, code, 1, ptr(""), "horust is shutting down")
	out, errOut, code = h.ctl("--json", "shutdown")
	ctlExpect(t, "shutdown again", out, errOut, code, 0, ptr("{\n  \"status\": \"shutting down\"\n}\n"), "")
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exited %d", code)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket is still there after exit: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(h.uds, "*")); len(m) != 0 {
		t.Fatalf("left in the socket folder: %v", m)
	}
}

func TestControlWaitFinishedAsHorustExits(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprintf("run %d", i+1), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			h := startHorust(t, runOpts{files: map[string]string{"ctl-last.toml": svc(role("trap", "USR1", "0", "0s", pidFile))}})
			pid := readPid(t, pidFile)
			ctlSocket(t, h)
			ctlWaitState(t, h, "ctl-last.toml", "RUNNING")
			wait := ctlStart(t, "-u", h.uds, "--json", "wait", "ctl-last.toml", "--for", "finished", "--timeout", "60s")
			eventually(t, 10*time.Second, "horust to accept the wait's connection", func() bool { return ctlConnected(h.uds) == 1 })
			// The service's end is horust's end.
			if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := wait(30 * time.Second)
			ctlExpect(t, "wait for the last service", out, errOut, code, 0, nil, "")
			var rep control.ServicesReply
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Services) != 1 || rep.Services[0].State != status.Finished {
				t.Fatalf("wait printed %q (%v)", out, err)
			}
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exited %d", code)
			}
		})
	}
}

func TestControlFallbackFolderWhenNotRoot(t *testing.T) {
	requireRoot(t)
	if m, _ := filepath.Glob(filepath.Join(control.DefaultSocketDir, "horust-*.sock")); len(m) > 0 {
		t.Skipf("%s holds sockets of another horust (%v): horustctl would find those first", control.DefaultSocketDir, m)
	}
	cases := []struct {
		name string
		env  func(dir string) []string // the environment for a folder nobody owns
		sock func(dir string) string   // where the socket folder is then
	}{
		{"XDG_RUNTIME_DIR", func(d string) []string { return []string{"XDG_RUNTIME_DIR=" + d, "TMPDIR=/nonexistent"} },
			func(d string) string { return filepath.Join(d, "horust") }},
		{"temporary directory", func(d string) []string { return []string{"TMPDIR=" + d} },
			func(d string) string { return filepath.Join(d, "horust-65534") }}, // nobody's
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, err := os.MkdirTemp("", "horust-e2e-ctl-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			svcs, own := filepath.Join(base, "services"), filepath.Join(base, "own")
			for _, d := range []string{base, svcs, own} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chown(own, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(svcs, "ctl-nobody.toml"), []byte(svc(role("sleep"))), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append([]string{"PATH=/usr/bin:/bin"}, tc.env(own)...)

			h := startAsNobody(t, base, env, "--services-path", svcs)
			h.uds = tc.sock(own)

			sock := ctlSocketIn(t, h.uds)
			if want := filepath.Join(h.uds, control.SocketName(h.cmd.Process.Pid)); sock != want {
				t.Fatalf("socket %s, want %s", sock, want)
			}
			eventually(t, 10*time.Second, "the service to run", func() bool {
				out, _, _ := ctlRunAsNobody(t, env, "status", "ctl-nobody.toml")
				return out == ctlStatusLine("ctl-nobody.toml", "RUNNING")
			})
			out, errOut, code := ctlRunAsNobody(t, env, "status")
			ctlExpect(t, "status table as nobody", out, errOut, code, 0, nil, "")
			if !strings.Contains(out, "ctl-nobody.toml") {
				t.Fatalf("table without the service:\n%s", out)
			}
			out, errOut, code = ctlRunAsNobody(t, env, "shutdown")
			ctlExpect(t, "shutdown as nobody", out, errOut, code, 0, ptr(""), "")
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exited %d", code)
			}
			wantLine := fmt.Sprintf("; the control socket is in %s\n", h.uds)
			if errOut := h.stderr.String(); strings.Count(errOut, "\n") != 1 ||
				!strings.HasPrefix(errOut, "horust: cannot use "+control.DefaultSocketDir+" (") || !strings.HasSuffix(errOut, wantLine) {
				t.Fatalf("stderr %q, want one line that names %s", errOut, h.uds)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the socket is still there after exit: %v", err)
			}
		})
	}
}
