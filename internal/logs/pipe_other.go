//go:build !linux

package logs

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeCloexec makes a pipe and marks its ends close-on-exec, holding
// syscall.ForkLock so no child forked meanwhile inherits them (there is no
// pipe2 here).
func pipeCloexec(p *[2]int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := unix.Pipe(p[:]); err != nil {
		return err
	}
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])
	return nil
}

// growPipe does nothing: a pipe's capacity cannot be set here.
func growPipe(uintptr) {}
