package cgroup

import (
	"math"
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

// cloneIntoCgroup reports whether clone3 can start a child inside a cgroup
// (CLONE_INTO_CGROUP, Linux 5.7). It asks clone3 for a child in a cgroup
// whose descriptor cannot be open (above every possible fd), so no child is
// ever made: a kernel that knows the flag fails with EBADF when it looks the
// descriptor up, the last step before a child would exist. Without the
// flag, or without clone3 (Linux before 5.3, qemu-user, gVisor, Docker's
// default seccomp profile, which answers ENOSYS), it fails otherwise.
// CLONE_VM, CLONE_FS and CLONE_FILES spare the kernel copying horust's
// memory map and tables before it gets there (16 µs instead of 3 ms).
func cloneIntoCgroup() bool {
	args := struct {
		flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
	}{
		flags:  unix.CLONE_INTO_CGROUP | unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES,
		cgroup: math.MaxInt32,
	}
	_, _, errno := unix.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), 0)
	return errno == unix.EBADF
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
