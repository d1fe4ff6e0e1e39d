package control

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultSocketDir is the default --uds-folder-path of horust and horustctl.
const DefaultSocketDir = "/var/run/horust"

// DefaultSocketMode is the mode of the control socket: only the user horust
// runs as (and root) can connect.
const DefaultSocketMode os.FileMode = 0o600

// maxSocketPath is the longest socket path bind(2) takes: sun_path holds 108
// bytes including the terminating NUL.
const maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// SocketName is the file name of the control socket of the horust with
// process id pid: "horust-<pid>.sock".
func SocketName(pid int) string {
	return "horust-" + strconv.Itoa(pid) + ".sock"
}

// FallbackSocketDirs are the folders, in order, where horust puts its socket
// when it cannot create DefaultSocketDir (not root), and where horustctl
// looks when DefaultSocketDir holds no socket: $XDG_RUNTIME_DIR/horust when
// that variable is set, then the temporary directory's horust-<uid> folder.
func FallbackSocketDirs() []string {
	var dirs []string
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" && filepath.IsAbs(xdg) {
		dirs = append(dirs, filepath.Join(xdg, "horust"))
	}
	dirs = append(dirs, TempSocketDir())
	return dirs
}

// TempSocketDir is the temporary directory's horust folder of this user,
// horust-<uid>: one per user, so that a folder another user made first
// (a shared /tmp) never stands in the way.
func TempSocketDir() string {
	return filepath.Join(os.TempDir(), "horust-"+strconv.Itoa(os.Getuid()))
}

// ListenUnix binds the control socket at path with the given mode (0 means
// DefaultSocketMode) and, when gid is not negative, that group. A stale
// socket file left at path by an earlier run (a socket nobody answers on) is
// replaced; a live one (another horust answers there) or a file that is not
// a socket is an error, as is a path longer than the kernel's limit.
//
// The socket is bound under a temporary name in the same folder, given its
// mode and group, and only then renamed to path, so that there is no moment
// when path accepts connections with the permissions of the umask. Closing
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
	ul, tmp, err := bindTemp(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The listener was bound to tmp; after the rename it must not unlink tmp
	// (by then maybe another file) when it is closed: we remove path ourselves.
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
	return &unixListener{UnixListener: ul, path: path, file: fi}, nil
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
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("control socket %s: another process (a horust?) answers on it", path)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil // stale: the rename in ListenUnix replaces it
	}
	return fmt.Errorf("control socket %s: cannot tell whether the existing socket is stale: %w", path, err)
}

// bindTemp binds a unix socket under a fresh hidden name in dir. The name is
// shorter than any "horust-<pid>.sock", so it fits whenever the final path does.
func bindTemp(dir string) (*net.UnixListener, string, error) {
	var b [3]byte
	for range 5 {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", fmt.Errorf("random name: %w", err)
		}
		tmp := filepath.Join(dir, ".~"+hex.EncodeToString(b[:]))
		ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("bind: %w", err)
		}
		return ul, tmp, nil
	}
	return nil, "", fmt.Errorf("bind: no free temporary name in %s", dir)
}

// unixListener is a bound control socket that removes its file when closed.
type unixListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo // what path was right after the bind
	once sync.Once
	err  error
}

// Addr returns the socket's final path (the bound name was the temporary one).
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

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

// Discovery says where horustctl looks for the socket of the horust to talk to.
type Discovery struct {
	// SocketPath, when set, is used as it is (--socket-path).
	SocketPath string
	// Dir is the folder to scan (--uds-folder-path); "" means
	// DefaultSocketDir and then FallbackSocketDirs.
	Dir string
	// PID, when positive, names the socket horust-<PID>.sock (--pid).
	PID int
}

// FindSocket returns the socket path that d designates. Without a PID the
// folder must hold exactly one horust-*.sock socket. When Dir is empty and
// DefaultSocketDir does not exist or holds none, the fallback folders are
// scanned in turn and the first one that holds a socket decides.
func FindSocket(d Discovery) (string, error) {
	if d.SocketPath != "" {
		return d.SocketPath, nil
	}
	dirs := []string{d.Dir}
	if d.Dir == "" {
		dirs = append([]string{DefaultSocketDir}, FallbackSocketDirs()...)
		dirs = slices.Compact(dirs)
	}
	if d.PID > 0 {
		name := SocketName(d.PID)
		for _, dir := range dirs {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err == nil {
				return p, nil
			}
		}
		// Let the connection say that nothing is there.
		return filepath.Join(dirs[0], name), nil
	}
	for _, dir := range dirs {
		socks, err := scanSockets(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist) && d.Dir == "":
			continue
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("no horust socket found in %s: the folder does not exist", dir)
		case err != nil:
			return "", err
		}
		switch len(socks) {
		case 0:
			continue
		case 1:
			return filepath.Join(dir, socks[0]), nil
		default:
			return "", fmt.Errorf("several horust sockets in %s (%s): pick one with --pid", dir, strings.Join(socks, ", "))
		}
	}
	if len(dirs) == 1 {
		return "", fmt.Errorf("no horust socket found in %s", dirs[0])
	}
	return "", fmt.Errorf("no horust socket found in %s (also looked in %s)", dirs[0], strings.Join(dirs[1:], ", "))
}

// scanSockets lists the horust-*.sock sockets in dir, by process id.
func scanSockets(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, err
	case errors.Is(err, syscall.ENOTDIR):
		return nil, fmt.Errorf("%s is not a directory", dir)
	case err != nil:
		return nil, fmt.Errorf("looking for horust sockets: %w", err)
	}
	var socks []string
	for _, e := range entries {
		name := e.Name()
		if e.Type() != fs.ModeSocket || !strings.HasPrefix(name, "horust-") || !strings.HasSuffix(name, ".sock") {
			continue
		}
		socks = append(socks, name)
	}
	slices.SortFunc(socks, func(a, b string) int {
		pa, errA := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(a, "horust-"), ".sock"))
		pb, errB := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(b, "horust-"), ".sock"))
		if errA == nil && errB == nil && pa != pb {
			return pa - pb
		}
		return strings.Compare(a, b)
	})
	return socks, nil
}
