package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxNotifyMessage is the largest datagram accepted, as in systemd; a
	// longer one is dropped whole.
	maxNotifyMessage = 4096
	// maxNotifyFDs is how many passed descriptors one receive makes room
	// for. The kernel closes those that do not fit; we close the rest.
	maxNotifyFDs = 16
	// maxAncestry bounds the walk up the parent chain.
	maxAncestry = 64
	// notifyRate and notifyBurst bound, per sending user, the messages a
	// second that are looked up in /proc (the costly part: a read per
	// level of the sender's ancestry). Beyond them a user's messages are
	// dropped, cheaply, and counted; other users' messages are unaffected.
	// A service sends a handful (READY=1, a STATUS now and then).
	notifyRate  = 200
	notifyBurst = 400
	// maxNotifyUsers bounds the users remembered by the rate limit.
	maxNotifyUsers = 1024
)

// NotifySocket is the readiness-notification socket of the sd_notify
// protocol: one abstract unix datagram socket for all services, which
// identifies each sender by the credentials the kernel attaches
// (SO_PASSCRED), never by what the message says.
type NotifySocket struct {
	conn *net.UnixConn
	addr string
	// Log receives a line when a user's messages go over the rate limit
	// (at most one a minute) and the error that ends Serve early, if one
	// does; nil discards them. Set it before Serve.
	Log *slog.Logger

	limit    rateLimit // used by Serve's goroutine only
	lastDrop time.Time
	dropped  int // since the last line logged

}

// NotifyMessage is one datagram received on the notify socket.
type NotifyMessage struct {
	PID       int    // the sender's pid, from its credentials
	UID       int    // the sender's uid, from its credentials
	Ready     bool   // READY=1
	Stopping  bool   // STOPPING=1
	Reloading bool   // RELOADING=1
	Status    string // STATUS=..., the last one in the message
	// Fields holds every other KEY=VALUE line (MAINPID, ERRNO, BARRIER,
	// ...), unverified; nil when there is none.
	Fields map[string]string

	// sender is the sender's session and ancestry, read from /proc when the
	// message arrived (see From).
	sender lineage
}

// ListenNotify opens the notify socket in the abstract namespace under name
// (for example "horust-notify-<pid>"; a leading '@' is allowed). The socket is
// close-on-exec, so services do not inherit it: they reach it through
// NOTIFY_SOCKET=Addr().
func ListenNotify(name string) (*NotifySocket, error) {
	name = strings.TrimPrefix(name, "@")
	if name == "" {
		return nil, errors.New("notify socket: empty name")
	}
	addr := "@" + name
	conn, err := listenCredentialed(addr)
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", addr, err)
	}
	return &NotifySocket{conn: conn, addr: addr}, nil
}

// Addr returns the value for NOTIFY_SOCKET: the abstract name with a leading
// '@', as sd_notify expects.
func (n *NotifySocket) Addr() string { return n.addr }

// Serve reads datagrams until ctx is done or the socket is closed, and calls
// handle for each valid one, in arrival order, on Serve's goroutine. A
// datagram is dropped when it carries no credentials, is longer than 4 KiB,
// is empty or holds a NUL byte, or when its user sent more than notifyRate
// a second (beyond a burst of notifyBurst; see docs/security.md). Descriptors passed along with a message are
// closed after handle returns, which also answers sd_notify_barrier's
// BARRIER=1. Serve ends early only on an error the socket cannot recover
// from, which it logs. Run one Serve at a time.
func (n *NotifySocket) Serve(ctx context.Context, handle func(NotifyMessage)) {
	// Clear a deadline left by an earlier Serve's context, then wake the read
	// below when ctx is done.
	_ = n.conn.SetReadDeadline(time.Time{}) // fails only when closed, and then the read says so
	stop := context.AfterFunc(ctx, func() {
		_ = n.conn.SetReadDeadline(time.Unix(1, 0)) // as above
	})
	defer stop()

	buf := make([]byte, maxNotifyMessage)
	oob := make([]byte, credSpace+unix.CmsgSpace(4*maxNotifyFDs))
	for {
		nbuf, noob, flags, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) {
				continue // memory pressure: this datagram is lost, the next may not be
			}
			if n.Log != nil {
				n.Log.Error("notify socket: reading failed; readiness notifications are no longer received", "addr", n.addr, "err", err)
			}
			return
		}
		msg, fds, ok := decodeNotify(buf[:nbuf], oob[:noob], flags)
		if ok && n.admit(msg) {
			// Read the sender's place in the process tree now: a
			// short-lived sender (systemd-notify from a shell script) may
			// be gone by the time the supervisor looks.
			msg.sender, _ = readLineage(msg.PID)
			handle(msg)
		}
		for _, fd := range fds {
			_ = unix.Close(fd) // received descriptors are ours to drop; nothing to do if it fails
		}
	}
}

// admit applies the per-user rate limit to a message before its sender is
// looked up; a message over it is dropped and counted, and logged at most
// once a minute.
func (n *NotifySocket) admit(msg NotifyMessage) bool {
	now := time.Now()
	if n.limit.allow(msg.UID, now) {
		return true
	}
	n.dropped++
	if n.Log != nil && now.Sub(n.lastDrop) >= time.Minute {
		n.Log.Warn("notify socket: a user sends too many messages; dropping them",
			"uid", msg.UID, "pid", msg.PID, "rate_per_second", notifyRate, "dropped_since_last_line", n.dropped)
		n.lastDrop, n.dropped = now, 0
	}
	return false
}

// rateLimit is a token bucket per user: notifyBurst tokens, refilled at
// notifyRate a second.
type rateLimit struct {
	users map[int]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token of uid's bucket at now, if there is one.
func (r *rateLimit) allow(uid int, now time.Time) bool {
	b := r.users[uid]
	if b == nil {
		if r.users == nil || len(r.users) >= maxNotifyUsers {
			r.users = make(map[int]*bucket) // forget them all: a bound, not a policy
		}
		b = &bucket{tokens: notifyBurst, last: now}
		r.users[uid] = b
	}
	b.tokens = min(notifyBurst, b.tokens+now.Sub(b.last).Seconds()*notifyRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Close closes the socket; a running Serve returns.
func (n *NotifySocket) Close() error { return n.conn.Close() }

// decodeNotify turns one received datagram into a message. It returns the
// descriptors that came with it, which the caller must close, whether or not
// the message is valid.
func decodeNotify(data, oob []byte, flags int) (NotifyMessage, []int, bool) {
	var (
		pid, uid int
		fds      []int
	)
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return NotifyMessage{}, nil, false
	}
	for i := range cmsgs {
		c := &cmsgs[i]
		if c.Header.Level != unix.SOL_SOCKET {
			continue
		}
		if c.Header.Type == unix.SCM_RIGHTS {
			if rights, err := unix.ParseUnixRights(c); err == nil {
				fds = append(fds, rights...)
			}
		} else if p, u, ok := parseCredentials(c); ok {
			pid, uid = p, u
		}
	}
	switch {
	case pid <= 0:
		// No credentials, or a sender whose pid is not visible in our pid
		// namespace: there is no telling who sent it.
		return NotifyMessage{}, fds, false
	case flags&unix.MSG_TRUNC != 0, len(data) == 0, bytes.IndexByte(data, 0) >= 0:
		return NotifyMessage{}, fds, false
	}
	msg := parseNotify(data)
	msg.PID = pid
	msg.UID = uid
	return msg, fds, true
}

// parseNotify reads the KEY=VALUE lines of an sd_notify message. Lines
// without '=' are ignored.
func parseNotify(data []byte) NotifyMessage {
	var msg NotifyMessage
	for line := range strings.SplitSeq(string(data), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			continue
		}
		switch key {
		case "READY":
			msg.Ready = msg.Ready || value == "1"
		case "STOPPING":
			msg.Stopping = msg.Stopping || value == "1"
		case "RELOADING":
			msg.Reloading = msg.Reloading || value == "1"
		case "STATUS":
			msg.Status = value
		default:
			if msg.Fields == nil {
				msg.Fields = make(map[string]string)
			}
			msg.Fields[key] = value
		}
	}
	return msg
}

// From reports whether the message came from the service whose main process
// is mainPID: the sender is that process, or was (when the message arrived)
// in its session or one of its descendants. It judges by the process tree
// as it was on arrival, so a sender that has exited since still counts.
func (m NotifyMessage) From(mainPID int) bool {
	if m.PID <= 0 || mainPID <= 0 {
		return false
	}
	return m.PID == mainPID || m.sender.ownedBy(mainPID)
}

// lineage is a process's session id and its ancestors, parent first.
type lineage struct {
	session   int
	ancestors []int
}

// ownedBy reports whether a process of this lineage belongs to mainPID.
func (l lineage) ownedBy(mainPID int) bool {
	if l.session == mainPID {
		return true
	}
	for _, a := range l.ancestors {
		if a == mainPID {
			return true
		}
	}
	return false
}

// selfPID is this process: a service's main process is its child, so the
// walk up a sender's parent chain can stop here; this process and its own
// ancestors are never a service's main process.
var selfPID = os.Getpid()

// readLineage reads pid's session and ancestors from /proc. The walk stops at
// pid 1 (or 0: a parent outside our pid namespace), at this process (its
// ancestors are not read: a message costs one /proc read per level, and
// arrives on the path to READY=1), at a parent that has vanished, or after
// maxAncestry steps. ok is false when pid itself cannot be read.
func readLineage(pid int) (l lineage, ok bool) {
	ppid, session, err := readStat(pid)
	if err != nil {
		return lineage{}, false
	}
	l.session = session
	for range maxAncestry {
		if ppid <= 1 || ppid == selfPID {
			break
		}
		l.ancestors = append(l.ancestors, ppid)
		if ppid, _, err = readStat(ppid); err != nil {
			break
		}
	}
	return l, true
}

// readStat returns the parent pid and session id from /proc/<pid>/stat.
func readStat(pid int) (ppid, session int, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) state ppid pgrp session ...": comm may hold spaces and
	// parentheses, so the fields start after the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 4 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	if ppid, err = strconv.Atoi(fields[1]); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	if session, err = strconv.Atoi(fields[3]); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: session: %w", pid, err)
	}
	return ppid, session, nil
}
