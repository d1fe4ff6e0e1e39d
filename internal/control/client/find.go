package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/horust-go/horust/internal/control"
)

// ErrNoSocket is what FindSocket's error wraps when the folders it looked in
// hold no horust socket (or do not exist): no horust runs there yet, or
// horustctl looks in the wrong place.
var ErrNoSocket = errors.New("no horust socket found")

// Discovery says where horustctl looks for the socket of the horust to talk to.
type Discovery struct {
	// SocketPath, when set, is used as it is (--socket-path).
	SocketPath string
	// Dir is the folder to scan (--uds-folder-path); "" means
	// control.DefaultSocketDir and then control.FallbackSocketDirs.
	Dir string
	// PID, when positive, names the socket horust-<PID>.sock (--pid).
	PID int
}

// FindSocket returns the socket path that d designates. Without a PID the
// folder must hold exactly one horust-*.sock socket, or, among several,
// exactly one that is not dead: sockets nobody listens on, left by a horust
// that was killed, are skipped. (A single socket is returned without a
// probe, so that the connection reports it if it is dead.) When Dir is empty and
// control.DefaultSocketDir does not exist or holds none, the fallback folders are
// scanned in turn and the first one that holds a socket decides.
func FindSocket(d Discovery) (string, error) {
	if d.SocketPath != "" {
		return d.SocketPath, nil
	}
	dirs := []string{d.Dir}
	if d.Dir == "" {
		dirs = append([]string{control.DefaultSocketDir}, control.FallbackSocketDirs()...)
		dirs = slices.Compact(dirs)
	}
	if d.PID > 0 {
		name := control.SocketName(d.PID)
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
		socks, err := control.ScanSockets(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist) && d.Dir == "":
			continue
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%w in %s: the folder does not exist", ErrNoSocket, dir)
		case err != nil:
			return "", err
		}
		if len(socks) == 0 {
			continue
		}
		if len(socks) == 1 {
			// No need to knock first: the connection says if nothing answers.
			return filepath.Join(dir, socks[0]), nil
		}
		live, dead := splitDead(dir, socks)
		switch {
		case len(live) == 1:
			return filepath.Join(dir, live[0]), nil
		case len(live) > 1:
			return "", fmt.Errorf("several horust sockets in %s (%s): pick one with --pid", dir, strings.Join(live, ", "))
		case len(dead) == 1:
			// Let the connection say that nothing answers there.
			return filepath.Join(dir, dead[0]), nil
		case len(dead) > 1:
			return "", fmt.Errorf("no horust answers in %s: %s are left by horusts that are gone", dir, strings.Join(dead, ", "))
		}
	}
	if len(dirs) == 1 {
		return "", fmt.Errorf("%w in %s", ErrNoSocket, dirs[0])
	}
	return "", fmt.Errorf("%w in %s (also looked in %s)", ErrNoSocket, dirs[0], strings.Join(dirs[1:], ", "))
}

// splitDead sorts sockets into those nobody listens on and the others.
func splitDead(dir string, socks []string) (live, dead []string) {
	for _, name := range socks {
		if errors.Is(control.ProbeSocket(filepath.Join(dir, name)), syscall.ECONNREFUSED) {
			dead = append(dead, name)
		} else {
			live = append(live, name)
		}
	}
	return live, dead
}
