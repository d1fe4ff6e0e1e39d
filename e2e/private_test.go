//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
)

// The control plane's security properties (docs/security.md), each tried
// against the built horust and horustctl.

// startAsNobody runs horust as nobody in dir with env and args; it is
// stopped when the test ends.
func startAsNobody(t *testing.T, dir string, env []string, args ...string) *horust {
	t.Helper()
	h := &horust{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	h.cmd = ctlAsNobody(exec.Command(horustBin, args...))
	h.cmd.Env, h.cmd.Dir = env, dir
	h.cmd.Stdout, h.cmd.Stderr = h.stdout, h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.exitErr = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		if !h.exited() {
			_ = h.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-h.done:
			case <-time.After(15 * time.Second):
				_ = h.cmd.Process.Kill()
				<-h.done
			}
		}
		if t.Failed() {
			t.Logf("horust stderr:\n%s", h.stderr)
		}
	})
	return h
}

// nobodyServices is a services folder nobody can read, with one service.
func nobodyServices(t *testing.T, base, name string) string {
	t.Helper()
	dir := filepath.Join(base, "services")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(svc(role("sleep"))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// publicTemp is a fresh folder in /tmp that every user can reach.
func publicTemp(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "horust-e2e-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

func TestPrivateFallbackFolderMustBeHorusts(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat(control.DefaultSocketDir); err == nil && syscall.Access(control.DefaultSocketDir, 2) == nil {
		// As root the folder is writable; what matters is that nobody cannot
		// use it, which the mode of an existing /var/run/horust decides.
		if fi, _ := os.Stat(control.DefaultSocketDir); fi.Mode().Perm()&0o002 != 0 {
			t.Skipf("%s is writable by everyone here: nobody would use it", control.DefaultSocketDir)
		}
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T, folder, elsewhere string) // folder is <TMPDIR>/horust-65534
		reason  string
	}{
		{"a folder another user made first", func(t *testing.T, folder, _ string) {
			mustDo(t, os.Mkdir(folder, 0o777), os.Chmod(folder, 0o777))
		}, "belongs to another user"},
		{"a symlink to a folder of nobody", func(t *testing.T, folder, elsewhere string) {
			mustDo(t, os.Mkdir(elsewhere, 0o700), os.Chown(elsewhere, 65534, 65534), os.Symlink(elsewhere, folder))
		}, "is not a directory (a symlink or a file)"},
		{"nobody's folder, writable by others", func(t *testing.T, folder, _ string) {
			mustDo(t, os.Mkdir(folder, 0o777), os.Chmod(folder, 0o777), os.Chown(folder, 65534, 65534))
		}, "is writable by group or others"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := publicTemp(t)
			svcs := nobodyServices(t, base, "priv-fallback.toml")
			folder := filepath.Join(base, "horust-65534")
			elsewhere := filepath.Join(base, "elsewhere")
			tc.prepare(t, folder, elsewhere)
			h := startAsNobody(t, "/", []string{"PATH=/usr/bin:/bin", "TMPDIR=" + base}, "--services-path", svcs)
			if code := h.wait(20 * time.Second); code != 1 {
				t.Fatalf("horust exited %d, want 1", code)
			}
			if errOut := h.stderr.String(); !strings.Contains(errOut, folder+" "+tc.reason) {
				t.Fatalf("stderr %q does not say %q", errOut, folder+" "+tc.reason)
			}
			for _, d := range []string{folder, elsewhere} {
				if m, _ := filepath.Glob(filepath.Join(d, "*")); len(m) != 0 {
					t.Fatalf("horust left %v in %s", m, d)
				}
			}
		})
	}
	t.Run("a missing folder is made private", func(t *testing.T) {
		base := publicTemp(t)
		svcs := nobodyServices(t, base, "priv-fallback.toml")
		folder := filepath.Join(base, "horust-65534")
		env := []string{"PATH=/usr/bin:/bin", "TMPDIR=" + base}
		mustDo(t, os.Chmod(base, 0o1777)) // as /tmp
		h := startAsNobody(t, "/", env, "--services-path", svcs)
		sock := ctlSocketIn(t, folder)
		fi, err := os.Lstat(folder)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
			t.Fatalf("folder %s: %v %v, want a 0700 folder of nobody", folder, fi.Mode(), err)
		}
		eventually(t, 10*time.Second, "the service to run", func() bool {
			out, _, _ := ctlRunAsNobody(t, env, "status", "priv-fallback.toml")
			return out == ctlStatusLine("priv-fallback.toml", "RUNNING")
		})
		h.signal(syscall.SIGTERM)
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("horust exited %d", code)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("socket left: %v", err)
		}
	})
}

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// deadSocket leaves a socket at path that nobody listens on, as a horust
// killed with SIGKILL does.
func deadSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

func TestPrivateDeadSocketsAreRemovedAndSkipped(t *testing.T) {
	uds := t.TempDir()
	dead := filepath.Join(uds, control.SocketName(999999991))
	deadSocket(t, dead)
	// A live socket that is not horust's: kept, as nothing proves it dead.
	other := filepath.Join(uds, control.SocketName(999999992))
	ol, err := net.ListenUnix("unix", &net.UnixAddr{Name: other, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ol.SetUnlinkOnClose(false)
	defer ol.Close()

	dir := servicesDir(t, map[string]string{"priv-dead.toml": svc(role("sleep"))})
	h := startHorust(t, runOpts{noArgs: true, env: []string{"HORUST_LOG=info"}, args: []string{"--services-path", dir, "--uds-folder-path", uds}})
	own := filepath.Join(uds, control.SocketName(h.cmd.Process.Pid))
	eventually(t, 10*time.Second, "horust's socket", func() bool { _, err := os.Lstat(own); return err == nil })
	if _, err := os.Lstat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dead socket is still there: %v", err)
	}
	if _, err := os.Lstat(other); err != nil {
		t.Fatalf("the live socket was removed: %v", err)
	}
	if !strings.Contains(h.stderr.String(), "removed the socket of a horust that is gone") {
		t.Fatalf("the removal is not logged:\n%s", h.stderr)
	}
	// Two sockets answer: horustctl cannot choose.
	out, errOut, code := runCtl(t, "-u", uds, "status", "priv-dead.toml")
	ctlExpect(t, "two live sockets", out, errOut, code, 1, ptr(""), "several horust sockets in "+uds)
	// The other one dies (its process is gone, its file stays): skipped.
	ol.Close()
	eventually(t, 10*time.Second, "the service to run", func() bool {
		out, _, _ := runCtl(t, "-u", uds, "status", "priv-dead.toml")
		return out == ctlStatusLine("priv-dead.toml", "RUNNING")
	})
	out, errOut, code = runCtl(t, "-u", uds, "status", "priv-dead.toml")
	ctlExpect(t, "a dead socket beside the live one", out, errOut, code, 0, ptr(ctlStatusLine("priv-dead.toml", "RUNNING")), "")
}

func TestPrivateHorustctlTrustsOnlyRootOrItself(t *testing.T) {
	requireRoot(t)
	// A horust of nobody in a sticky folder everyone can write, as /tmp.
	base := publicTemp(t)
	shared := filepath.Join(base, "shared")
	mustDo(t, os.Mkdir(shared, 0o777), os.Chmod(shared, 0o1777))
	svcs := nobodyServices(t, base, "priv-trust.toml")
	env := []string{"PATH=/usr/bin:/bin"}
	h := startAsNobody(t, "/", env, "--services-path", svcs, "--uds-folder-path", shared)
	sock := ctlSocketIn(t, shared)
	eventually(t, 10*time.Second, "the service to run", func() bool {
		out, _, _ := ctlRunAsNobody(t, env, "-u", shared, "status", "priv-trust.toml")
		return out == ctlStatusLine("priv-trust.toml", "RUNNING")
	})

	out, errOut, code := runCtl(t, "-u", shared, "status")
	ctlExpect(t, "root on nobody's socket", out, errOut, code, 1, ptr(""), sock+" belongs to uid 65534, neither root nor this user: not trusted")
	// The file made to look like root's: the process behind it still is not.
	mustDo(t, os.Lchown(sock, 0, 0))
	out, errOut, code = runCtl(t, "--socket-path", sock, "status")
	ctlExpect(t, "root on a socket served by nobody", out, errOut, code, 1, ptr(""), "runs as uid 65534, neither root nor this user: not trusted")
	// A folder of another user is not trusted either.
	own := filepath.Join(base, "nobodys")
	mustDo(t, os.Mkdir(own, 0o755), os.Chown(own, 65534, 65534))
	fake := filepath.Join(own, control.SocketName(1))
	l, err := net.Listen("unix", fake)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, errOut, code = runCtl(t, "-u", own, "status")
	ctlExpect(t, "root on a socket in nobody's folder", out, errOut, code, 1, ptr(""), own+" belongs to uid 65534, neither root nor this user: not trusted")
	if h.exited() {
		t.Fatal("horust exited")
	}
}

func init() {
	// flood ADDR N: open N connections to ADDR, print "opened N failed F",
	// hold them until stdin closes.
	registerRole("flood", func(args []string) int {
		n, _ := strconv.Atoi(args[1])
		var mu sync.Mutex
		var conns []net.Conn
		failed := 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / 8 {
					c, err := net.DialTimeout("tcp", args[0], 10*time.Second)
					mu.Lock()
					if err != nil {
						failed++
					} else {
						conns = append(conns, c)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		fmt.Printf("opened %d failed %d\n", len(conns), failed)
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	})
}

func init() {
	// notify-flood ADDR N: send N sd_notify datagrams to ADDR, print "sent N".
	registerRole("notify-flood", func(args []string) int {
		n, _ := strconv.Atoi(args[1])
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: args[0], Net: "unixgram"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		sent := 0
		for range n {
			if _, err := c.Write([]byte("STATUS=flood")); err == nil {
				sent++
			}
		}
		fmt.Printf("sent %d\n", sent)
		return 0
	})
}

// TestPrivateNotifyFloodFromAnotherUser floods the notify socket from
// nobody: the flood is dropped and logged, horust spends little CPU on it,
// and the service's own READY=1 still counts.
func TestPrivateNotifyFloodFromAnotherUser(t *testing.T) {
	requireRoot(t)
	const flood = 100000
	touched := filepath.Join(t.TempDir(), "up")
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{
		"priv-notify.toml": svc(role("health-notify-on-usr1", touched), "[healthiness]", "notify = true"),
	}})
	readFileEventually(t, touched)
	h.waitState("priv-notify.toml", 10*time.Second, "STARTED")
	pid := h.status("priv-notify.toml").PID
	var addr string
	for _, kv := range strings.Split(readFile(fmt.Sprintf("/proc/%d/environ", pid)), "\x00") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			addr = v
		}
	}
	if addr == "" {
		t.Fatal("no NOTIFY_SOCKET in the service's environment")
	}
	cpu0 := cpuTicks(t, h.cmd.Process.Pid)
	start := time.Now()
	out, err := ctlAsNobody(exec.Command(selfBin, "role:notify-flood", addr, strconv.Itoa(flood))).Output()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprintf("sent %d", flood) {
		t.Fatalf("flood as nobody: %q %v", out, err)
	}
	// The service's READY=1 comes after the whole flood on the socket.
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	h.waitState("priv-notify.toml", 20*time.Second, "RUNNING")
	took := time.Since(start)
	cpu := cpuTicks(t, h.cmd.Process.Pid) - cpu0
	t.Logf("%d datagrams from nobody: horust used %d ms of CPU, %s from the first to READY=1 handled", flood, cpu*10, took.Round(time.Millisecond))
	if errOut := h.stderr.String(); !strings.Contains(errOut, "a user sends too many messages") || !strings.Contains(errOut, "uid=65534") {
		t.Fatalf("the dropped flood is not logged:\n%s", errOut)
	}
}

// cpuTicks is the user and system CPU time of a process, in clock ticks.
func cpuTicks(t testing.TB, pid int) int {
	t.Helper()
	stat := readFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
	u, err1 := strconv.Atoi(f[11])
	s, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	return u + s
}

// readFileEventually waits for a file to exist.
func readFileEventually(t *testing.T, path string) {
	t.Helper()
	eventually(t, 10*time.Second, path, func() bool { _, err := os.Stat(path); return err == nil })
}

func init() {
	// socket-racer DIR: until stdin closes, connect to every entry of DIR
	// (and to "s" inside each, where a socket may be bound before it is
	// renamed) and ask for the service list; then print
	// "connected N answered M control K", where K counts the connections
	// to "control.sock", a socket open to all that shows the racer works.
	registerRole("socket-racer", func(args []string) int {
		var stop atomic.Bool
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop.Store(true) }()
		connected, answered, control := 0, 0, 0
		for !stop.Load() {
			ents, _ := os.ReadDir(args[0])
			for _, e := range ents {
				p := filepath.Join(args[0], e.Name())
				for _, target := range []string{p, filepath.Join(p, "s")} {
					c, err := net.Dial("unix", target)
					if err != nil {
						continue
					}
					if e.Name() == "control.sock" {
						control++
						c.Close()
						continue
					}
					connected++
					_ = c.SetDeadline(time.Now().Add(time.Second))
					_, _ = io.WriteString(c, "GET /v1/services HTTP/1.1\r\nHost: x\r\n\r\n")
					b := make([]byte, 12)
					if n, _ := io.ReadFull(c, b); string(b[:n]) == "HTTP/1.1 200" {
						answered++
					}
					c.Close()
				}
			}
		}
		fmt.Printf("connected %d answered %d control %d\n", connected, answered, control)
		return 0
	})
}

// TestPrivateSocketHasNoWindow starts horust again and again with umask 000
// in a folder everyone can write, while nobody tries to connect to every
// socket that appears there: nobody never connects (before, the socket
// accepted connections before its chmod: 3 of 100 starts gave nobody the
// whole API).
func TestPrivateSocketHasNoWindow(t *testing.T) {
	requireRoot(t)
	const starts = 20
	base := publicTemp(t)
	shared := filepath.Join(base, "shared")
	mustDo(t, os.Mkdir(shared, 0o777), os.Chmod(shared, 0o1777))
	svcs := servicesDir(t, map[string]string{"priv-window.toml": svc(role("sleep"))})
	ctrl, err := net.Listen("unix", filepath.Join(shared, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	mustDo(t, os.Chmod(filepath.Join(shared, "control.sock"), 0o666))
	racer := ctlAsNobody(exec.Command(selfBin, "role:socket-racer", shared))
	stdin, err := racer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	racer.Stdout = &out
	if err := racer.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range starts {
		cmd := exec.Command("/bin/sh", "-c", `umask 000; exec "$@"`, "sh", horustBin, "--services-path", svcs, "--uds-folder-path", shared)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(shared, control.SocketName(cmd.Process.Pid))
		eventually(t, 10*time.Second, fmt.Sprintf("start %d's socket", i+1), func() bool { _, err := os.Lstat(sock); return err == nil })
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
	stdin.Close()
	if err := racer.Wait(); err != nil {
		t.Fatal(err)
	}
	var connected, answered, reached int
	if _, err := fmt.Sscanf(out.String(), "connected %d answered %d control %d", &connected, &answered, &reached); err != nil || reached == 0 {
		t.Fatalf("racer printed %q: it must reach the socket open to all", out.String())
	}
	if connected != 0 || answered != 0 {
		t.Fatalf("nobody connected %d times to a socket of root's horust (%d answered)", connected, answered)
	}
}

// floodProc is one process of a flood.
type floodProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Reader
}

// startFlood starts a process that opens n connections to addr.
func startFlood(t *testing.T, addr string, n int) *floodProc {
	t.Helper()
	cmd := exec.Command(selfBin, "role:flood", addr, strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &floodProc{cmd: cmd, stdin: stdin, lines: bufio.NewReader(stdout)}
	t.Cleanup(f.stop)
	return f
}

// opened waits for the process to have made its connections.
func (f *floodProc) opened(t *testing.T) (opened, failed int) {
	t.Helper()
	line, err := f.lines.ReadString('\n')
	if _, serr := fmt.Sscanf(line, "opened %d failed %d", &opened, &failed); err != nil || serr != nil {
		t.Fatalf("flood process: %q %v %v", line, err, serr)
	}
	return opened, failed
}

// stop closes the process's connections (it exits when stdin closes).
func (f *floodProc) stop() {
	if f.stdin != nil {
		f.stdin.Close()
		f.stdin = nil
		_ = f.cmd.Wait()
	}
}

// TestPrivateProbeFlood opens 20,000 idle connections to --http-addr (from
// four processes: one may not hold that many) and checks that horust stays
// small and answers. The numbers are in docs/security.md; the latencies
// are logged, not asserted.
func TestPrivateProbeFlood(t *testing.T) {
	const procs, each = 4, 5000
	addr := ctlFreeAddr(t)
	h := startHorust(t, runOpts{args: []string{"--http-addr", addr}, files: map[string]string{"priv-flood.toml": svc(role("sleep"))}})
	h.waitState("priv-flood.toml", 10*time.Second, "RUNNING")
	rssBefore := procStatusKB(t, h.cmd.Process.Pid, "VmRSS")

	start := time.Now()
	var floods []*floodProc
	for range procs {
		floods = append(floods, startFlood(t, addr, each))
	}
	opened, failed := 0, 0
	var ctlDuring time.Duration
	var statusDuring string
	for i, f := range floods {
		o, fl := f.opened(t)
		opened, failed = opened+o, failed+fl
		if i == procs/2-1 { // half of the flood is in, the rest is coming
			ctlDuring, statusDuring = timedCtl(t, h, "status", "priv-flood.toml")
		}
	}
	took := time.Since(start)
	if failed > procs*each/100 {
		t.Fatalf("%d of %d connections could not be opened", failed, procs*each)
	}
	ctlAfter, statusAfter := timedCtl(t, h, "status", "priv-flood.toml")
	healthDuring, codeDuring := timedHealthz(t, addr)
	rss := procStatusKB(t, h.cmd.Process.Pid, "VmRSS")
	hwm := procStatusKB(t, h.cmd.Process.Pid, "VmHWM")
	fds := countFDs(h.cmd.Process.Pid)
	for _, f := range floods {
		f.stop()
	}
	healthAfter, codeAfter := timedHealthz(t, addr)
	t.Logf("flood: %d connections opened in %s (%d failed); horust: VmRSS %d kB before, %d kB under the flood, peak %d kB, %d fds",
		opened, took.Round(time.Millisecond), failed, rssBefore, rss, hwm, fds)
	t.Logf("horustctl status: %s during the flood, %s with all its connections open; /healthz: %s (%d) with them open, %s (%d) once closed",
		ctlDuring.Round(time.Millisecond), ctlAfter.Round(time.Millisecond), healthDuring.Round(time.Millisecond), codeDuring,
		healthAfter.Round(time.Millisecond), codeAfter)

	for _, out := range []string{statusDuring, statusAfter} {
		if out != ctlStatusLine("priv-flood.toml", "RUNNING") {
			t.Errorf("horustctl status under the flood printed %q", out)
		}
	}
	if codeAfter != 200 || codeDuring != 200 {
		t.Errorf("/healthz answered %d during and %d after the flood, want 200", codeDuring, codeAfter)
	}
	if fds > 200 {
		t.Errorf("horust holds %d fds under the flood: the connection bound did not hold", fds)
	}
	if raceBuilt(t) {
		t.Logf("horust is built with -race: its memory is not the release's, not checked")
	} else if hwm > 64<<10 {
		t.Errorf("horust peaked at %d kB resident under the flood, want under 64 MB", hwm)
	}
}

// timedCtl runs horustctl against h and returns how long it took and its stdout.
func timedCtl(t *testing.T, h *horust, args ...string) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	out, errOut, code := h.ctl(args...)
	d := time.Since(start)
	if code != 0 {
		t.Errorf("horustctl %v: exit %d: %s", args, code, errOut)
	}
	return d, out
}

// timedHealthz asks for /healthz on a new connection.
func timedHealthz(t *testing.T, addr string) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Errorf("/healthz: %v", err)
		return time.Since(start), 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("/healthz: %v", err)
		return time.Since(start), 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return time.Since(start), resp.StatusCode
}

// procStatusKB reads a "kB" line of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, key string) int {
	t.Helper()
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

func countFDs(pid int) int {
	m, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(m)
}

// raceBuilt reports whether the horust under test was built with -race.
func raceBuilt(t *testing.T) bool {
	t.Helper()
	bi, err := buildinfo.ReadFile(horustBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}
