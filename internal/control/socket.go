package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultSocketDir is the default --uds-folder-path of horust and horustctl.
const DefaultSocketDir = "/var/run/horust"

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

// ProbeSocket connects to the socket at path and hangs up. ECONNREFUSED
// proves that nobody listens there: the socket's horust is gone.
func ProbeSocket(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

// FolderEnv names the socket folder when --uds-folder-path (-u) is not
// given, for horust and horustctl alike.
const FolderEnv = "HORUST_UDS_FOLDER_PATH"

// ScanSockets lists the horust-*.sock sockets in dir, by process id.
func ScanSockets(dir string) ([]string, error) {
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
