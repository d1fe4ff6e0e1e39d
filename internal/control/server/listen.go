package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/control"
)

// DefaultSocketMode is the mode of the control socket: only the user horust
// runs as (and root) can connect.
const DefaultSocketMode os.FileMode = 0o600

// maxSocketPath is the longest socket path bind(2) takes: sun_path holds 108
// bytes including the terminating NUL.
const maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// PrivateFolder makes sure dir can hold the control socket of a user who
// did not choose the folder (a fallback): it is created 0700 if missing,
// and then it must be a directory (not a symlink to one) owned by this
// user and not writable by group or others. Otherwise another local user
// who made the folder first could swap the socket for a symlink or a fake
// socket (see docs/security.md).
func PrivateFolder(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory (a symlink or a file)", dir)
	case st == nil || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to another user", dir)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %v)", dir, fi.Mode().Perm())
	}
	return nil
}

// ListenUnix binds the control socket at path with the given mode (0 means
// DefaultSocketMode) and, when gid is not negative, that group. A stale
// socket file left at path by an earlier run (a socket nobody answers on) is
// replaced; a live one (another horust answers there) or a file that is not
// a socket is an error, as is a path longer than the kernel's limit.
//
// The socket is private from its first instant: it is bound in a fresh
// 0700 folder next to path, given its mode and group there (where no other
// user can reach it or swap it for a symlink), and only then renamed to
// path. Every accepted connection's peer is checked (SO_PEERCRED): root,
// this process's user or, with a group, a member of it; any other peer is
// closed at once, and Accept reports it as a *PeerRefusedError. Closing
// the listener removes path, unless another socket has replaced it since.
func ListenUnix(path string, mode os.FileMode, gid int) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: the path is %d bytes long, longer than the %d a unix socket path can have: use a shorter --uds-folder-path", path, len(path), maxSocketPath)
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	tmpDir, err := privateTempDir(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmpDir) }() // empty once the socket moved out; removed with it on failure
	tmp := filepath.Join(tmpDir, "s")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: bind: %w", path, err)
	}
	// The listener was bound to tmp; after the rename it must not unlink tmp
	// when it is closed: we remove path ourselves.
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		_ = ul.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode.Perm()); err != nil {
		return fail(fmt.Errorf("chmod: %w", err))
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("chown to group %d: %w", gid, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path, file: fi, uid: os.Geteuid(), gid: gid}, nil
}

// privateTempDir makes a fresh 0700 folder in dir under a short hidden name
// (".~" and 6 hex digits, so that "<it>/s" is shorter than any
// "horust-<pid>.sock" and fits whenever the final path does).
func privateTempDir(dir string) (string, error) {
	for range 5 {
		// math/rand/v2 is seeded from the kernel's randomness: the name is
		// unguessable enough to be hard to take first, and taking it only
		// makes this try fail (Mkdir, not a follow).
		tmp := filepath.Join(dir, fmt.Sprintf(".~%06x", rand.Uint32N(1<<24)))
		err := os.Mkdir(tmp, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("private folder for the bind: %w", err)
		}
		return tmp, nil
	}
	return "", fmt.Errorf("no free temporary name in %s", dir)
}

// checkStale makes sure nothing but a dead socket is at path.
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: the path exists and is not a socket", path)
	}
	switch err := control.ProbeSocket(path); {
	case err == nil:
		return fmt.Errorf("control socket %s: another process (a horust?) answers on it", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil // stale: the rename in ListenUnix replaces it
	default:
		return fmt.Errorf("control socket %s: cannot tell whether the existing socket is stale: %w", path, err)
	}
}

// RemoveDeadSockets removes the horust-*.sock sockets in dir that nobody
// listens on (connecting is refused: their horust is gone), as a horust
// killed with SIGKILL leaves them. A socket that cannot be proved dead is
// kept. It returns the names removed.
func RemoveDeadSockets(dir string) ([]string, error) {
	socks, err := control.ScanSockets(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, name := range socks {
		p := filepath.Join(dir, name)
		if !errors.Is(control.ProbeSocket(p), syscall.ECONNREFUSED) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove dead socket %s: %w", p, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// unixListener is a bound control socket that checks its peers and
// removes its file when closed.
type unixListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo // what path was right after the bind
	uid  int         // horust's user
	gid  int         // --uds-group, or -1
	once sync.Once
	err  error
}

// Addr returns the socket's final path (the bound name was the temporary one).
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Accept returns the next connection of an allowed peer. A peer that is
// not allowed is closed at once and reported as a *PeerRefusedError.
func (l *unixListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	if err := l.checkPeer(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// PeerRefusedError is a connection to the control socket from a process
// that may not use it; the connection was closed.
type PeerRefusedError struct {
	PID, UID int
	Reason   string
}

func (e *PeerRefusedError) Error() string {
	return fmt.Sprintf("control socket: refused a connection of pid %d, uid %d: %s", e.PID, e.UID, e.Reason)
}

// checkPeer lets root, horust's own user and members of the socket's group
// in, by the credentials the kernel recorded at connect (SO_PEERCRED and
// SO_PEERGROUPS): what the peer is, not what it says.
func (l *unixListener) checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return &PeerRefusedError{Reason: err.Error()}
	}
	var cred control.PeerCred
	var groups []uint32
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = control.ReadPeerCred(int(fd))
		if cerr == nil && l.gid >= 0 && cred.UID != 0 && cred.UID != l.uid && cred.GID != l.gid {
			groups, cerr = peerGroups(int(fd))
		}
	}); err != nil {
		cerr = err
	}
	switch {
	case cerr != nil:
		return &PeerRefusedError{Reason: "no peer credentials: " + cerr.Error()}
	case cred.UID == 0, cred.UID == l.uid:
		return nil
	case l.gid >= 0 && (cred.GID == l.gid || slices.Contains(groups, uint32(l.gid))):
		return nil
	}
	reason := "not root and not horust's user"
	if l.gid >= 0 {
		reason += fmt.Sprintf(", and not in group %d (--uds-group)", l.gid)
	}
	return &PeerRefusedError{PID: cred.PID, UID: cred.UID, Reason: reason}
}

// refusals logs refused peers: the first at once, then at most one line a
// minute with how many were refused since, so that a flood of attempts
// cannot flood the log.
type refusals struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (r *refusals) note(log *slog.Logger, e *PeerRefusedError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.last) >= time.Minute {
		log.Warn("control socket: connection refused", "pid", e.PID, "uid", e.UID, "reason", e.Reason, "refused_since_last_line", r.missed)
		r.last, r.missed = now, 0
		return
	}
	r.missed++
}

// Close stops listening and removes the socket file if it is still ours.
func (l *unixListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) && l.err == nil {
				l.err = fmt.Errorf("remove control socket: %w", err)
			}
		}
	})
	return l.err
}
