package config

import (
	"syscall"
	"testing"
)

// TestParseSignalLinux covers the signals only Linux has.
func TestParseSignalLinux(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"STKFLT": syscall.SIGSTKFLT, "PWR": syscall.SIGPWR, "sigpwr": syscall.SIGPWR} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
