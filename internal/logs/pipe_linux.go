package logs

import "golang.org/x/sys/unix"

// pipeCloexec makes a pipe whose ends are close-on-exec from the start.
func pipeCloexec(p *[2]int) error {
	return unix.Pipe2(p[:], unix.O_CLOEXEC)
}

// growPipe asks for a bigPipe capacity. A refusal leaves the default
// capacity.
func growPipe(fd uintptr) {
	_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, bigPipe)
}
