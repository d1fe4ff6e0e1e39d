package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// signalNames maps the names of spec section 5.10, plus KILL, to signals.
// signalsLinux adds the Linux-only ones.
var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ILL": syscall.SIGILL,
	"TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT, "BUS": syscall.SIGBUS, "FPE": syscall.SIGFPE,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV, "USR2": syscall.SIGUSR2,
	"PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN,
	"TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
	"VTALRM": syscall.SIGVTALRM, "PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH, "IO": syscall.SIGIO,
	"SYS": syscall.SIGSYS,
}

func init() {
	for name, sig := range signalsLinux {
		signalNames[name] = sig
	}
}

// ParseSignal parses a signal name: the original's upper-case names without
// the SIG prefix (TERM, HUP, USR1, ...), and also KILL, the SIG-prefixed form
// (SIGTERM) and any letter case (term, sigterm). Numbers are not accepted.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	name = strings.TrimPrefix(name, "SIG")
	if sig, ok := signalNames[name]; ok && name != "" {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q; use one of %s", s, strings.Join(signalList(), ", "))
}

// SignalName returns the name of sig without the SIG prefix ("TERM"), or its
// number for a signal without a name here.
func SignalName(sig syscall.Signal) string {
	best := ""
	for name, s := range signalNames {
		// Several names can share a number (IO and POLL); take the first
		// in alphabetical order so the result is stable.
		if s == sig && (best == "" || name < best) {
			best = name
		}
	}
	if best == "" {
		return strconv.Itoa(int(sig))
	}
	return best
}

// signalList returns the accepted names in signal-number order.
func signalList() []string {
	names := make([]string, 0, len(signalNames))
	for name := range signalNames {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := signalNames[names[i]], signalNames[names[j]]
		if a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	return names
}
