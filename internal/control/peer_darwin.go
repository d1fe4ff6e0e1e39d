package control

import "golang.org/x/sys/unix"

// ReadPeerCred reads the credentials of a unix socket's peer
// (LOCAL_PEERCRED, and LOCAL_PEERPID for its pid): those it had when it
// connected, or when it listened for a client's view of a server.
func ReadPeerCred(fd int) (PeerCred, error) {
	xc, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return PeerCred{}, err
	}
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return PeerCred{}, err
	}
	c := PeerCred{PID: pid, UID: int(xc.Uid), GID: -1}
	if xc.Ngroups > 0 {
		c.GID = int(xc.Groups[0]) // the effective group comes first
	}
	return c, nil
}
