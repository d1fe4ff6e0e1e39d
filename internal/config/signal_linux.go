package config

import "syscall"

// signalsLinux are the signal names that exist only on Linux.
var signalsLinux = []namedSignal{{"STKFLT", syscall.SIGSTKFLT}, {"PWR", syscall.SIGPWR}}
