package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// signalNames are the names of spec section 5.10, plus KILL, with their
// signals; signalsLinux adds the Linux-only ones. (Slices, not maps: a map
// literal is built at package initialization, in every start.)
var signalNames = []namedSignal{
	{"HUP", syscall.SIGHUP}, {"INT", syscall.SIGINT}, {"QUIT", syscall.SIGQUIT}, {"ILL", syscall.SIGILL},
	{"TRAP", syscall.SIGTRAP}, {"ABRT", syscall.SIGABRT}, {"BUS", syscall.SIGBUS}, {"FPE", syscall.SIGFPE},
	{"KILL", syscall.SIGKILL}, {"USR1", syscall.SIGUSR1}, {"SEGV", syscall.SIGSEGV}, {"USR2", syscall.SIGUSR2},
	{"PIPE", syscall.SIGPIPE}, {"ALRM", syscall.SIGALRM}, {"TERM", syscall.SIGTERM}, {"CHLD", syscall.SIGCHLD},
	{"CONT", syscall.SIGCONT}, {"STOP", syscall.SIGSTOP}, {"TSTP", syscall.SIGTSTP}, {"TTIN", syscall.SIGTTIN},
	{"TTOU", syscall.SIGTTOU}, {"URG", syscall.SIGURG}, {"XCPU", syscall.SIGXCPU}, {"XFSZ", syscall.SIGXFSZ},
	{"VTALRM", syscall.SIGVTALRM}, {"PROF", syscall.SIGPROF}, {"WINCH", syscall.SIGWINCH}, {"IO", syscall.SIGIO},
	{"SYS", syscall.SIGSYS},
}

type namedSignal struct {
	name string
	sig  syscall.Signal
}

// allSignals calls f with every accepted name and its signal.
func allSignals(f func(name string, sig syscall.Signal)) {
	for _, t := range [][]namedSignal{signalNames, signalsLinux} {
		for _, n := range t {
			f(n.name, n.sig)
		}
	}
}

// ParseSignal parses a signal name: the original's upper-case names without
// the SIG prefix (TERM, HUP, USR1, ...), and also KILL, the SIG-prefixed form
// (SIGTERM) and any letter case (term, sigterm). Numbers are not accepted.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	name = strings.TrimPrefix(name, "SIG")
	found, ok := syscall.Signal(0), false
	allSignals(func(n string, sig syscall.Signal) {
		if n == name {
			found, ok = sig, true
		}
	})
	if ok {
		return found, nil
	}
	return 0, fmt.Errorf("unknown signal %q; use one of %s", s, strings.Join(signalList(), ", "))
}

// SignalName returns the name of sig without the SIG prefix ("TERM"), or its
// number for a signal without a name here.
func SignalName(sig syscall.Signal) string {
	best := ""
	allSignals(func(name string, s syscall.Signal) {
		// Several names can share a number (IO and POLL); take the first
		// in alphabetical order so the result is stable.
		if s == sig && (best == "" || name < best) {
			best = name
		}
	})
	if best == "" {
		return strconv.Itoa(int(sig))
	}
	return best
}

// signalList returns the accepted names in signal-number order.
func signalList() []string {
	var all []namedSignal
	allSignals(func(name string, sig syscall.Signal) { all = append(all, namedSignal{name, sig}) })
	sort.Slice(all, func(i, j int) bool {
		if all[i].sig != all[j].sig {
			return all[i].sig < all[j].sig
		}
		return all[i].name < all[j].name
	})
	names := make([]string, len(all))
	for i, n := range all {
		names[i] = n.name
	}
	return names
}
