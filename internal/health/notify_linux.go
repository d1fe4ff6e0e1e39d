package health

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// credSpace is the room a received datagram's credentials take.
var credSpace = unix.CmsgSpace(unix.SizeofUcred)

// listenCredentialed binds the datagram socket at addr. Go creates sockets
// close-on-exec and maps a leading '@' to the abstract namespace.
// SO_PASSCRED is set before any service is started (they are the only
// senders), so no datagram arrives without credentials.
func listenCredentialed(addr string) (*net.UnixConn, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		_ = conn.Close() // the error that matters is the one returned
		return nil, fmt.Errorf("set SO_PASSCRED: %w", err)
	}
	return conn, nil
}

// parseCredentials reads the sender's pid and uid from an SCM_CREDENTIALS
// message.
func parseCredentials(c *unix.SocketControlMessage) (pid, uid int, ok bool) {
	if c.Header.Type != unix.SCM_CREDENTIALS {
		return 0, 0, false
	}
	uc, err := unix.ParseUnixCredentials(c)
	if err != nil {
		return 0, 0, false
	}
	return int(uc.Pid), int(uc.Uid), true
}
