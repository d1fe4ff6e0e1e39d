package control

import (
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"HUP", syscall.SIGHUP, true},
		{"TERM", syscall.SIGTERM, true},
		{"SIGTERM", syscall.SIGTERM, true},
		{"usr2", syscall.SIGUSR2, true},
		{"KILL", syscall.SIGKILL, true},
		{"9", syscall.SIGKILL, true},
		{"64", syscall.Signal(64), true},
		{"0", 0, false},
		{"65", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"FOO", 0, false},
		{"SIG", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if SignalName(syscall.SIGHUP) != "HUP" || SignalName(syscall.Signal(40)) != "40" {
		t.Errorf("SignalName: %q %q", SignalName(syscall.SIGHUP), SignalName(syscall.Signal(40)))
	}
}
