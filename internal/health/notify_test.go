//go:build linux

package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serveNotify opens a notify socket with a name unique to the test, serves it
// into a channel, and closes it when the test ends.
func serveNotify(t *testing.T) (*NotifySocket, <-chan NotifyMessage) {
	t.Helper()
	name := fmt.Sprintf("horust-notify-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	n, err := ListenNotify(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan NotifyMessage, 16)
	served := make(chan struct{})
	go func() {
		defer close(served)
		n.Serve(ctx, func(m NotifyMessage) {
			select {
			case msgs <- m:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-served
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n, msgs
}

// receive returns the next message, failing the test after a deadline.
func receive(t *testing.T, msgs <-chan NotifyMessage) NotifyMessage {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notify message within 10s")
		return NotifyMessage{}
	}
}

// send sends one datagram to the notify socket from this process.
func send(t *testing.T, addr string, data []byte, oob []byte) {
	t.Helper()
	if err := sdSend(addr, data, oob); err != nil {
		t.Fatal(err)
	}
}

func TestListenNotifyAddr(t *testing.T) {
	for _, name := range []string{"horust-notify-addr", "@horust-notify-addr"} {
		t.Run(name, func(t *testing.T) {
			n, err := ListenNotify(fmt.Sprintf("%s-%d", name, os.Getpid()))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			want := fmt.Sprintf("@horust-notify-addr-%d", os.Getpid())
			if n.Addr() != want {
				t.Errorf("Addr() = %q, want %q", n.Addr(), want)
			}
		})
	}
	t.Run("empty name is refused", func(t *testing.T) {
		if n, err := ListenNotify("@"); err == nil {
			n.Close()
			t.Error("ListenNotify(\"@\") succeeded")
		}
	})
	t.Run("a name in use is refused", func(t *testing.T) {
		name := fmt.Sprintf("horust-notify-twice-%d", os.Getpid())
		n, err := ListenNotify(name)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if n2, err := ListenNotify(name); err == nil {
			n2.Close()
			t.Error("second ListenNotify on the same name succeeded")
		}
	})
}

func TestListenNotifyCloseOnExec(t *testing.T) {
	n, _ := serveNotify(t)
	raw, err := n.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		flags, ferr = unix.FcntlInt(fd, unix.F_GETFD, 0)
	}); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Error("notify socket is not close-on-exec")
	}
}

func TestNotifyFromChildProcess(t *testing.T) {
	n, msgs := serveNotify(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = helperEnviron("notify",
		helperMessageEnv+"=READY=1\nSTATUS=x\nMAINPID=4242\nX_CUSTOM=a=b",
		"NOTIFY_SOCKET="+n.Addr())
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	m := receive(t, msgs)
	if m.PID != cmd.Process.Pid {
		t.Errorf("PID = %d, want the child's %d", m.PID, cmd.Process.Pid)
	}
	if m.UID != os.Getuid() {
		t.Errorf("UID = %d, want %d", m.UID, os.Getuid())
	}
	if !m.Ready || m.Status != "x" || m.Stopping || m.Reloading {
		t.Errorf("Ready=%v Status=%q Stopping=%v Reloading=%v, want true \"x\" false false",
			m.Ready, m.Status, m.Stopping, m.Reloading)
	}
	want := map[string]string{"MAINPID": "4242", "X_CUSTOM": "a=b"}
	if !maps.Equal(m.Fields, want) {
		t.Errorf("Fields = %v, want %v", m.Fields, want)
	}
}

func TestNotifyFromTestProcess(t *testing.T) {
	n, msgs := serveNotify(t)
	// The payload's MAINPID must not change who the sender is.
	send(t, n.Addr(), []byte("READY=1\nMAINPID=1"), nil)
	m := receive(t, msgs)
	if m.PID != os.Getpid() {
		t.Errorf("PID = %d, want the test's %d", m.PID, os.Getpid())
	}
	if !m.Ready {
		t.Error("Ready = false")
	}
	if !m.From(os.Getpid()) {
		t.Error("From(own pid) = false")
	}
	if m.From(1) && os.Getpid() != 1 {
		t.Error("From(1) = true for a message whose payload says MAINPID=1")
	}
}

func TestNotifyDropsInvalidDatagrams(t *testing.T) {
	n, msgs := serveNotify(t)
	for _, bad := range []struct {
		name string
		data []byte
	}{
		{"longer than 4 KiB", []byte("READY=1\nSTATUS=" + strings.Repeat("x", maxNotifyMessage))},
		{"a NUL byte", []byte("READY=1\x00")},
		{"empty", []byte{}},
	} {
		send(t, n.Addr(), bad.data, nil)
	}
	// A datagram socket keeps order: the marker is the first message only if
	// every bad one was dropped.
	send(t, n.Addr(), []byte("STATUS=marker"), nil)
	if m := receive(t, msgs); m.Status != "marker" || m.Ready {
		t.Errorf("first message: Status=%q Ready=%v, want the marker (every bad datagram dropped)", m.Status, m.Ready)
	}
	t.Run("exactly 4 KiB is accepted", func(t *testing.T) {
		data := []byte("STATUS=" + strings.Repeat("y", maxNotifyMessage-len("STATUS=")))
		send(t, n.Addr(), data, nil)
		if m := receive(t, msgs); len(m.Status) != maxNotifyMessage-len("STATUS=") {
			t.Errorf("Status has %d bytes, want %d", len(m.Status), maxNotifyMessage-len("STATUS="))
		}
	})
}

func TestNotifyClosesPassedDescriptors(t *testing.T) {
	n, msgs := serveNotify(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// sd_notify_barrier: the receiver closing its copy of w is the answer.
	send(t, n.Addr(), []byte("BARRIER=1"), unix.UnixRights(int(w.Fd())))
	w.Close()
	if m := receive(t, msgs); m.Fields["BARRIER"] != "1" {
		t.Errorf("Fields = %v, want BARRIER=1", m.Fields)
	}
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if k, err := r.Read(make([]byte, 1)); k != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read after barrier = %d, %v; want EOF (the passed descriptor closed)", k, err)
	}
}

func TestNotifyShortLivedSenderCountsForItsService(t *testing.T) {
	n, msgs := serveNotify(t)
	// The service's main process runs a child that sends READY=1 and exits,
	// as `systemd-notify --ready` in a shell script does; the main process
	// reaps it before it prints the child's pid.
	main := runHelper(t, "notify-child", "NOTIFY_SOCKET="+n.Addr())
	m := receive(t, msgs)
	fields := main.line(t)
	if len(fields) != 1 {
		t.Fatalf("helper printed %q", fields)
	}
	childPID, err := strconv.Atoi(fields[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.PID != childPID {
		t.Fatalf("PID = %d, want the short-lived child's %d", m.PID, childPID)
	}
	if _, err := os.Stat("/proc/" + fields[0]); err == nil {
		t.Skip("the sender's pid is in use again; cannot tell From from the process tree as it is now")
	}
	if !m.From(main.cmd.Process.Pid) {
		t.Error("From(main pid) = false for a message its child sent before exiting")
	}
	if owned(m.PID, main.cmd.Process.Pid) {
		t.Error("a reaped pid is taken for the service's")
	}
	unrelated := runHelper(t, "sleep")
	if m.From(unrelated.cmd.Process.Pid) {
		t.Error("From(unrelated pid) = true")
	}
}

func TestNotifyServeStops(t *testing.T) {
	t.Run("when its context is done", func(t *testing.T) {
		n, err := ListenNotify(fmt.Sprintf("horust-notify-stop-ctx-%d", os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		n.Log = slog.New(slog.NewTextHandler(&logs, nil))
		defer n.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); n.Serve(ctx, func(NotifyMessage) {}) }()
		cancel()
		waitClosed(t, done)
		if logs.String() != "" {
			t.Errorf("a cancel logged %q", logs.String())
		}
		// The socket still works for a new Serve.
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		got := make(chan NotifyMessage, 1)
		done2 := make(chan struct{})
		go func() { defer close(done2); n.Serve(ctx2, func(m NotifyMessage) { got <- m }) }()
		send(t, n.Addr(), []byte("READY=1"), nil)
		if m := receive(t, got); !m.Ready {
			t.Error("second Serve: Ready = false")
		}
		cancel2()
		waitClosed(t, done2)
	})
	t.Run("when it is closed", func(t *testing.T) {
		n, err := ListenNotify(fmt.Sprintf("horust-notify-stop-close-%d", os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		n.Log = slog.New(slog.NewTextHandler(&logs, nil))
		done := make(chan struct{})
		go func() { defer close(done); n.Serve(context.Background(), func(NotifyMessage) {}) }()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, done)
		if logs.String() != "" {
			t.Errorf("a Close logged %q", logs.String())
		}
	})
}

func waitClosed(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s")
	}
}

func TestParseNotify(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want NotifyMessage
	}{
		{"ready", "READY=1", NotifyMessage{Ready: true}},
		{"ready with a trailing newline", "READY=1\n", NotifyMessage{Ready: true}},
		{"READY=0 is not ready", "READY=0", NotifyMessage{}},
		{"status keeps '=' and spaces", "STATUS=a = b ", NotifyMessage{Status: "a = b "}},
		{"the last status wins", "STATUS=a\nSTATUS=b", NotifyMessage{Status: "b"}},
		{"stopping and reloading", "STOPPING=1\nRELOADING=1", NotifyMessage{Stopping: true, Reloading: true}},
		{"others go to Fields", "MAINPID=7\nERRNO=2", NotifyMessage{Fields: map[string]string{"MAINPID": "7", "ERRNO": "2"}}},
		{"lines without '=' and empty keys are ignored", "garbage\n=x\n\nREADY=1", NotifyMessage{Ready: true}},
		{"keys are case-sensitive", "ready=1", NotifyMessage{Fields: map[string]string{"ready": "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseNotify([]byte(tc.in))
			if got.Ready != tc.want.Ready || got.Stopping != tc.want.Stopping ||
				got.Reloading != tc.want.Reloading || got.Status != tc.want.Status ||
				!maps.Equal(got.Fields, tc.want.Fields) {
				t.Errorf("parseNotify(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseNotify(f *testing.F) {
	for _, seed := range []string{"READY=1", "READY=1\nSTATUS=Serving\nMAINPID=12", "STOPPING=1\n", "=\n=\n", "BARRIER=1"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := parseNotify(data)
		if strings.Contains(m.Status, "\n") {
			t.Errorf("Status %q holds a newline", m.Status)
		}
		for k := range m.Fields {
			if k == "" || strings.ContainsAny(k, "=\n") {
				t.Errorf("bad field key %q", k)
			}
		}
	})
}

// owned reports whether pid belongs to the service whose main process is
// mainPID, as the process tree is now: what From checks of a message's
// sender, asked of any pid.
func owned(pid, mainPID int) bool {
	if pid <= 0 || mainPID <= 0 {
		return false
	}
	if pid == mainPID {
		return true
	}
	l, ok := readLineage(pid)
	return ok && l.ownedBy(mainPID)
}

func TestOwned(t *testing.T) {
	// tree is a session leader (like a service's main process) with a child
	// in its session and a child that made its own session (setsid).
	tree := runHelper(t, "tree")
	fields := tree.line(t)
	if len(fields) != 2 {
		t.Fatalf("tree printed %q", fields)
	}
	same, err1 := strconv.Atoi(fields[0])
	other, err2 := strconv.Atoi(fields[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("tree printed %q", fields)
	}
	mainPID := tree.cmd.Process.Pid
	if sid, err := unix.Getsid(other); err != nil || sid != other {
		t.Fatalf("setsid child: session %d (%v), want %d", sid, err, other)
	}

	for _, tc := range []struct {
		name      string
		pid, main int
		want      bool
	}{
		{"the main process itself", mainPID, mainPID, true},
		{"a child in the main process's session", same, mainPID, true},
		{"a setsid child that descends from the main process", other, mainPID, true},
		{"an unrelated process (the test)", os.Getpid(), mainPID, false},
		{"pid 1", 1, mainPID, os.Getpid() == 1},
		{"the main process is not owned by its child", mainPID, same, false},
		{"a pid that does not exist", 1 << 30, mainPID, false},
		{"pid 0", 0, mainPID, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := owned(tc.pid, tc.main); got != tc.want {
				t.Errorf("owned(%d, %d) = %v, want %v", tc.pid, tc.main, got, tc.want)
			}
		})
	}
}

func TestLineageStopsAtThisProcess(t *testing.T) {
	// A child's walk up ends at this process (horust): its ancestors are
	// never a service's main process, and each level is a /proc read.
	child := runHelper(t, "sleep")
	l, ok := readLineage(child.cmd.Process.Pid)
	if !ok {
		t.Fatal("cannot read the child's lineage")
	}
	if len(l.ancestors) != 0 {
		t.Fatalf("ancestors of a child of this process = %v, want none (the walk stops at %d)", l.ancestors, os.Getpid())
	}
	if !owned(child.cmd.Process.Pid, child.cmd.Process.Pid) || owned(child.cmd.Process.Pid, os.Getppid()) {
		t.Fatal("owned of the child: wrong answer")
	}
}

func TestReadStatOddCommandNames(t *testing.T) {
	// A command name may hold spaces and ')': the fields start after the
	// last ')'. Copy the test binary under such a name and run it.
	dir := t.TempDir()
	path := dir + "/a) b (c"
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.Env = helperEnviron("sleep")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	ppid, session, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if ppid != os.Getpid() || session != cmd.Process.Pid {
		t.Errorf("readStat = ppid %d session %d, want %d %d", ppid, session, os.Getpid(), cmd.Process.Pid)
	}
}

func TestDecodeNotify(t *testing.T) {
	creds := func(pid int32) []byte {
		return unix.UnixCredentials(&unix.Ucred{Pid: pid, Uid: 1000, Gid: 1000})
	}
	self := int32(os.Getpid())
	for _, tc := range []struct {
		name  string
		data  string
		oob   []byte
		flags int
		ok    bool
	}{
		{"with credentials", "READY=1", creds(self), 0, true},
		{"without credentials", "READY=1", nil, 0, false},
		{"with only descriptors", "READY=1", unix.UnixRights(0), 0, false},
		{"a pid outside our pid namespace (0)", "READY=1", creds(0), 0, false},
		{"truncated", "READY=1", creds(self), unix.MSG_TRUNC, false},
		{"empty", "", creds(self), 0, false},
		{"a NUL byte", "READY=1\x00x", creds(self), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, ok := decodeNotify([]byte(tc.data), tc.oob, tc.flags)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (m.PID != int(self) || m.UID != 1000 || !m.Ready) {
				t.Errorf("message = %+v, want pid %d, uid 1000, ready", m, self)
			}
		})
	}
	t.Run("descriptors are returned for closing, valid or not", func(t *testing.T) {
		oob := append(creds(self), unix.UnixRights(7, 8)...)
		for _, data := range []string{"READY=1", ""} {
			if _, fds, _ := decodeNotify([]byte(data), oob, 0); !slices.Equal(fds, []int{7, 8}) {
				t.Errorf("data %q: fds = %v, want [7 8]", data, fds)
			}
		}
	})
}

func TestNotifyRateLimit(t *testing.T) {
	var r rateLimit
	t0 := time.Unix(1000, 0)
	taken := func(uid int, at time.Time, n int) int {
		k := 0
		for range n {
			if r.allow(uid, at) {
				k++
			}
		}
		return k
	}
	if got := taken(7, t0, 1000); got != notifyBurst {
		t.Fatalf("a burst of 1000 at once: %d allowed, want %d", got, notifyBurst)
	}
	if got := taken(8, t0, 10); got != 10 {
		t.Fatalf("another user during the flood: %d of 10 allowed", got)
	}
	if got := taken(7, t0.Add(time.Second), 1000); got != notifyRate {
		t.Fatalf("a second later: %d allowed, want %d", got, notifyRate)
	}
	if got := taken(7, t0.Add(time.Hour), 1000); got != notifyBurst {
		t.Fatalf("after a long pause: %d allowed, want the burst %d", got, notifyBurst)
	}
}

func TestNotifyFloodFromAnotherUserIsDroppedAndCounted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sending credentials of another user needs root (CAP_SETUID)")
	}
	name := fmt.Sprintf("horust-notify-test-%d-flood", os.Getpid())
	n, err := ListenNotify(name)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	n.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
	var fromNobody atomic.Int64
	mine := make(chan NotifyMessage, 1)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		n.Serve(ctx, func(m NotifyMessage) {
			if m.UID == 65534 {
				fromNobody.Add(1)
			} else if m.Status == "mine" {
				mine <- m
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-served; _ = n.Close() })

	nobody := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: 65534, Gid: 65534})
	const flood = 20000
	start := time.Now()
	for range flood {
		send(t, n.Addr(), []byte("STATUS=flood"), nobody)
	}
	elapsed := time.Since(start)
	send(t, n.Addr(), []byte("STATUS=mine"), nil)
	if m := receive(t, mine); m.UID != os.Getuid() {
		t.Fatalf("own message from uid %d", m.UID)
	}
	// Everything before "mine" was handled or dropped by now.
	got := fromNobody.Load()
	if limit := int64(notifyBurst + notifyRate*(elapsed.Seconds()+1)); got > limit || got == flood {
		t.Fatalf("%d of %d flood messages passed in %s, want at most %d", got, flood, elapsed, limit)
	}
	if !strings.Contains(logBuf.String(), "a user sends too many messages") || !strings.Contains(logBuf.String(), "uid=65534") {
		t.Fatalf("the drop is not logged: %q", logBuf.String())
	}
	t.Logf("%d of %d messages of the flood passed (%s)", got, flood, elapsed)
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
