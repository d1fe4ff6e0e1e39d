package control

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/horust-go/horust/internal/config"
)

// maxSignal is the highest signal number Linux knows (SIGRTMAX).
const maxSignal = 64

// ParseSignal reads a signal as an operator types it: a name as in the
// service files ("HUP", "TERM", also "SIGHUP" and any case, see
// config.ParseSignal), or a number ("1"). KILL and STOP are accepted: this
// is kill(1), not a termination signal. Signal 0 is not a signal.
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
	return config.ParseSignal(s)
}

// SignalName is the name of sig without the SIG prefix ("HUP"), or its
// number when it has none (real-time signals).
func SignalName(sig syscall.Signal) string { return config.SignalName(sig) }
