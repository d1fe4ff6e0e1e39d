package logs

import "golang.org/x/sys/unix"

// bigPipe is the capacity a pipe grows to (F_SETPIPE_SZ) once its
// copier finds it full, so a fast writer fills a big buffer between two
// wake-ups of its copier. Only busy pipes grow: every pipe page counts
// against the per-user budget (/proc/sys/fs/pipe-user-pages-soft) that
// the services' own pipes share when horust lacks CAP_SYS_RESOURCE (as
// root in a default Docker container). Best effort: the kernel refuses
// more than /proc/sys/fs/pipe-max-size, or more than that budget.
const bigPipe = 1 << 20

// pipeCloexec makes a pipe whose ends are close-on-exec from the start.
func pipeCloexec(p *[2]int) error {
	return unix.Pipe2(p[:], unix.O_CLOEXEC)
}

// growPipe asks for a bigPipe capacity. A refusal leaves the default
// capacity.
func growPipe(fd uintptr) {
	_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, bigPipe)
}
