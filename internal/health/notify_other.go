//go:build !linux

package health

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// credSpace is 0: no credentials come with a datagram here.
const credSpace = 0

// errNotifyUnsupported is why notify = true is refused here (see
// docs/design.md, macOS).
var errNotifyUnsupported = errors.New("notify = true needs Linux: this system has no abstract unix sockets and no SO_PASSCRED to tell which process sent a message; use a file or HTTP health check instead")

// listenCredentialed refuses: a sender could not be identified.
func listenCredentialed(string) (*net.UnixConn, error) {
	return nil, errNotifyUnsupported
}

// parseCredentials finds nothing: no credentials come with a datagram here.
func parseCredentials(*unix.SocketControlMessage) (pid, uid int, ok bool) {
	return 0, 0, false
}
