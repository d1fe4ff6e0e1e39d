package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// readPeerCred reads the peer's credentials (LOCAL_PEERCRED, and
// LOCAL_PEERPID for its pid): those it had when it connected, or when it
// listened for a client's view of a server.
func readPeerCred(fd int) (peerCred, error) {
	xc, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return peerCred{}, err
	}
	c := peerCred{pid: pid, uid: int(xc.Uid), gid: -1}
	if xc.Ngroups > 0 {
		c.gid = int(xc.Groups[0]) // the effective group comes first
	}
	return c, nil
}

// peerGroups reads the groups of a unix socket's peer (LOCAL_PEERCRED holds
// at most 16 of them).
func peerGroups(fd int) ([]uint32, error) {
	xc, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return nil, err
	}
	n := min(max(int(xc.Ngroups), 0), len(xc.Groups))
	return xc.Groups[:n], nil
}

// peerGone is false: macOS has no POLLRDHUP to tell a half-close from a
// peer that is gone, so a half-close is assumed, as over TCP (the answer is
// written, and a write to a peer that is gone fails).
func peerGone(net.Conn) bool { return false }
