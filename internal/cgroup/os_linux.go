package cgroup

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// unavailable is empty on Linux: cgroups are detected at Open.
const unavailable = ""

// setCgroupFD makes the child start in the cgroup directory open as fd
// (clone3 with CLONE_INTO_CGROUP).
func setCgroupFD(attr *syscall.SysProcAttr, fd int) {
	attr.UseCgroupFD = true
	attr.CgroupFD = fd
}

// deathSignal is this process's parent-death signal (0 for none).
func deathSignal() int32 {
	var sig int32
	_, _, _ = syscall.Syscall(syscall.SYS_PRCTL, unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0)
	return sig
}

// setDeathSignal sets this process's parent-death signal.
func setDeathSignal(sig int32) {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0)
}

// pidfds opens a pidfd for each pid that still exists.
func pidfds(pids []int) []int {
	var fds []int
	for _, p := range pids {
		if fd, err := unix.PidfdOpen(p, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}
