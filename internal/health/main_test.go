//go:build linux

package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/config"
)

// helperEnv, when set, makes the test binary play a helper program instead of
// running the tests (the os/exec tests' trick), so the tests need no scripts.
const helperEnv = "HORUST_HEALTH_HELPER"

// Environment of the "notify" helper.
const (
	helperMessageEnv = "HORUST_HEALTH_MESSAGE" // what to send; default "READY=1"
	helperBarrierEnv = "HORUST_HEALTH_BARRIER" // "1": wait for the receiver like sd_notify_barrier
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "notify":
		os.Exit(helperNotify())
	case "sleep":
		helperSleep()
	case "tree":
		os.Exit(helperTree())
	case "notify-child":
		os.Exit(helperNotifyChild())
	case "http-servers":
		os.Exit(helperHTTPServers())
	case "out-of-fds":
		os.Exit(helperOutOfFDs())
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", mode)
		os.Exit(2)
	}
}

// helperNotify sends a message to NOTIFY_SOCKET as sd_notify does and exits:
// 0 when sent, 1 otherwise.
func helperNotify() int {
	msg := os.Getenv(helperMessageEnv)
	if msg == "" {
		msg = "READY=1"
	}
	if err := sdNotify(os.Getenv("NOTIFY_SOCKET"), msg, os.Getenv(helperBarrierEnv) == "1"); err != nil {
		fmt.Fprintln(os.Stderr, "notify:", err)
		return 1
	}
	return 0
}

// sdNotify does what sd_notify(3) does: send msg in one datagram to addr
// ('@' prefix: the abstract namespace); with barrier it then sends BARRIER=1
// with the write end of a pipe and waits until the receiver has closed it, as
// sd_notify_barrier(3) does.
func sdNotify(addr, msg string, barrier bool) error {
	if addr == "" {
		return fmt.Errorf("NOTIFY_SOCKET is not set")
	}
	if err := sdSend(addr, []byte(msg), nil); err != nil {
		return err
	}
	if !barrier {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	err = sdSend(addr, []byte("BARRIER=1"), unix.UnixRights(int(w.Fd())))
	w.Close()
	if err != nil {
		return err
	}
	// EOF once every copy of the write end is closed: the receiver's too.
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	_, err = r.Read(make([]byte, 1))
	if err == io.EOF {
		return nil
	}
	return fmt.Errorf("barrier: %v", err)
}

// sdSend sends one datagram with ancillary data oob to the unix socket addr,
// the way libsystemd does: a fresh SOCK_DGRAM socket, connect, sendmsg.
func sdSend(addr string, data, oob []byte) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	// x/sys maps a leading '@' to the abstract namespace, as sd_notify does.
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	if err := unix.Sendmsg(fd, data, oob, nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	return nil
}

// helperSleep waits until stdin is closed, then exits.
func helperSleep() {
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// helperTree starts two "sleep" children: one in its own session, one in a
// new session (setsid). It prints their pids ("<same> <other>\n") and, once
// stdin is closed, waits for them and exits. Run it as a session leader.
func helperTree() int {
	same, err := startHelper("sleep", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tree:", err)
		return 1
	}
	other, err := startHelper("sleep", true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tree:", err)
		return 1
	}
	fmt.Printf("%d %d\n", same.Process.Pid, other.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	// The children share our stdin, so they see EOF too.
	_ = same.Wait()
	_ = other.Wait()
	return 0
}

// helperNotifyChild plays a shell script's `systemd-notify --ready`: it runs
// a short-lived "notify" child (with a barrier), reaps it, prints the
// child's pid, and waits until stdin is closed.
func helperNotifyChild() int {
	child, err := startHelper("notify", false, helperBarrierEnv+"=1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify-child:", err)
		return 1
	}
	if err := child.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "notify-child: child:", err)
		return 1
	}
	fmt.Printf("%d\n", child.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// helperHTTPServers serves "ok" over HTTP on $HORUST_HEALTH_SERVERS loopback
// ports, prints their addresses on one line, and exits when stdin is closed.
// It keeps a benchmark's server work out of the prober's process.
func helperHTTPServers() int {
	n, err := strconv.Atoi(os.Getenv("HORUST_HEALTH_SERVERS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "http-servers:", err)
		return 2
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "http-servers:", err)
			return 1
		}
		go func() { _ = http.Serve(l, handler) }()
		addrs = append(addrs, l.Addr().String())
	}
	fmt.Println(strings.Join(addrs, " "))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// helperOutOfFDs runs a tcp and an http check of the address in
// HORUST_HEALTH_TARGET with no file descriptor left to open, and prints one
// line per check: whether CouldNotRun holds, then the error.
func helperOutOfFDs() int {
	addr := os.Getenv("HORUST_HEALTH_TARGET")
	// Descriptors 0-2 and the runtime's are open: a limit of 3 leaves none.
	// The runtime's network poller opens its descriptors at first use:
	// before the limit, as in a horust that has been running.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("getrlimit:", err)
		return 1
	}
	lim.Cur = 3
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		return 1
	}
	p := NewProber()
	for _, h := range []config.Healthiness{{TCPEndpoint: addr}, {HTTPEndpoint: "http://" + addr + "/"}} {
		err := p.Check(context.Background(), h)
		fmt.Printf("%t %v\n", CouldNotRun(err), err)
	}
	return 0
}

// startHelper starts the test binary as the helper mode, sharing our stdin,
// stdout and stderr.
func startHelper(mode string, setsid bool, env ...string) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = helperEnviron(mode, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	return cmd, cmd.Start()
}

// helperEnviron is the environment of a helper process: ours, the helper's
// mode, and env.
func helperEnviron(mode string, env ...string) []string {
	return append(os.Environ(), append([]string{
		helperEnv + "=" + mode,
		// A -race binary sleeps 1s at exit by default, waiting for late race
		// reports; the helpers exit often.
		"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	}, env...)...)
}

// helperProcess is a helper started by a test, with a pipe to its stdin and
// its stdout's lines.
type helperProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// runHelper starts the test binary as helper mode in a new session, and
// stops it (closes its stdin, waits for it) when the test ends.
func runHelper(t testing.TB, mode string, env ...string) *helperProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = helperEnviron(mode, env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("helper %s: %v", mode, err)
			}
		case <-time.After(10 * time.Second):
			// Kill the whole session's group so no grandchild is left.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("helper %s did not exit after its stdin closed", mode)
		}
	})
	return &helperProcess{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
}

// line returns the helper's next line of output.
func (h *helperProcess) line(t testing.TB) []string {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper ended without output: %v", h.lines.Err())
	}
	return strings.Fields(h.lines.Text())
}
