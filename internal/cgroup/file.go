package cgroup

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// cgroupfs files are small and never block: they are read and written with
// plain system calls (open, read or write, close) instead of os.File, which
// would also try to register each one with the runtime's poller. A start
// and an exit touch several of them, so this is on the restart path.

// readFile reads a whole cgroupfs (or procfs) file.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return readFD(fd, path)
}

// readFD reads a whole cgroupfs file from its start through fd, which may
// have been read before: a Group keeps the descriptors of the files it
// needs to stop a service, so that a stop needs no free descriptor.
func readFD(fd int, path string) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// writeFile writes s to an existing file in one write, as cgroupfs wants.
func writeFile(path, s string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	err = writeFD(fd, path, s)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		return &fs.PathError{Op: "close", Path: path, Err: cerr}
	}
	return err
}

// writeFD writes s in one write through fd.
func writeFD(fd int, path, s string) error {
	for {
		_, err := unix.Write(fd, []byte(s))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		return nil
	}
}
