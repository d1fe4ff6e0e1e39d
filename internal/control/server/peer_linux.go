package server

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soPeerGroups is SO_PEERGROUPS (Linux 4.13), which x/sys/unix does not
// name: the peer's supplementary groups when it connected.
const soPeerGroups = 59

// peerGroups reads the supplementary groups of a unix socket's peer.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, soPeerGroups,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == unix.ERANGE && int(n/4) > len(buf):
			buf = make([]uint32, n/4)
		case e != 0:
			return nil, e
		default:
			return buf[:n/4], nil
		}
	}
}

// peerGone reports whether the other end of a unix socket closed both of
// its sides (POLLHUP), as opposed to only its writing side. Over TCP the
// two look the same, so a half-close is assumed: the answer is written
// either way, and a peer that is gone makes that write fail.
func peerGone(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return true
	}
	gone := true
	_ = raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n == 1 {
			gone = fds[0].Revents&unix.POLLHUP != 0
		}
	})
	return gone
}
