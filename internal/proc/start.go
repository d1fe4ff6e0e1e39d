package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotFound is the error of LookPath when the program is nowhere on PATH.
var ErrNotFound = errors.New("not found in any of the PATH directories")

// LookPath finds a program as the original does: a name with a slash is used
// as given (relative to the working directory of the child); any other name
// is searched in pathList (horust's own PATH, not the service's), and the
// first regular, executable file wins.
func LookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if pathList == "" {
		pathList = DefaultPath
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q %w (%s)", name, ErrNotFound, pathList)
}

// isExecutable reports whether p is a regular file with an execute bit.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Reap collects one exited child of horust, any child: a service, a
// health-check command or an adopted orphan. ok is false when no exited
// child is left. The supervisor loop calls it until !ok on every SIGCHLD.
func Reap() (pid int, ws syscall.WaitStatus, ok bool) {
	pid, ws, _ = reap()
	return pid, ws, pid > 0
}

// reap is the one wait4(-1, WNOHANG) of horust: the next exited child
// (pid > 0), or pid 0 and whether no child is left at all (ECHILD).
func reap() (pid int, ws syscall.WaitStatus, none bool) {
	for {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			return 0, 0, true
		case err != nil || pid <= 0:
			return 0, 0, false
		}
		return pid, syscall.WaitStatus(st), false
	}
}

// SignalGroup sends sig to the process group led by pid, and to pid itself
// when it is not (or no longer) a group leader. A group or process that is
// gone is not an error.
func SignalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	err := unix.Kill(-pid, sig)
	if errors.Is(err, unix.ESRCH) {
		err = unix.Kill(pid, sig)
	}
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// ExitCode is the shell's view of a wait status: the exit code, or 128+N
// for a death by signal N.
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
