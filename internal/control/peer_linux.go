package control

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// pollRDHUP asks poll to report a peer that shut down its writing side.
const pollRDHUP = unix.POLLRDHUP

// peerCred is what the kernel recorded about a unix socket's peer.
type peerCred struct{ pid, uid, gid int }

// readPeerCred reads the peer's credentials (SO_PEERCRED): those it had
// when it connected, or when it listened for a client's view of a server.
func readPeerCred(fd int) (peerCred, error) {
	uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	return peerCred{pid: int(uc.Pid), uid: int(uc.Uid), gid: int(uc.Gid)}, nil
}

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
