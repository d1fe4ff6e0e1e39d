package control

import "golang.org/x/sys/unix"

// ReadPeerCred reads the credentials of a unix socket's peer (SO_PEERCRED):
// those it had when it connected, or when it listened for a client's view
// of a server.
func ReadPeerCred(fd int) (PeerCred, error) {
	uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return PeerCred{}, err
	}
	return PeerCred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}, nil
}
