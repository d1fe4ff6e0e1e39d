package proc

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// SetSubreaper makes horust the reaper of its orphaned descendants when it
// is not PID 1 (PR_SET_CHILD_SUBREAPER).
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// setDeathSignal makes the child die (SIGKILL) should horust itself die (a
// crash, SIGKILL), instead of running on unsupervised.
func setDeathSignal(sys *syscall.SysProcAttr) {
	sys.Pdeathsig = syscall.SIGKILL
}
