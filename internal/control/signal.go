package control

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSignal is the highest signal number Linux knows (SIGRTMAX).
const maxSignal = 64

// ParseSignal reads a signal as an operator types it: a name as in the
// service files ("HUP", "TERM"), the same with the SIG prefix ("SIGHUP"),
// either in any case, or a number ("1"). KILL and STOP are accepted here:
// this is kill(1), not a termination signal. Signal 0 is not a signal.
func ParseSignal(s string) (syscall.Signal, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > maxSignal {
			return 0, fmt.Errorf("unknown signal %q: numbers go from 1 to %d", s, maxSignal)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

// SignalName is the name of sig without the SIG prefix ("HUP"), or its
// number when it has no name (real-time signals).
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return strings.TrimPrefix(name, "SIG")
	}
	return strconv.Itoa(int(sig))
}
