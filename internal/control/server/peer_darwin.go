package server

import (
	"net"

	"golang.org/x/sys/unix"
)

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
