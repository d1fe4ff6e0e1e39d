package supervisor

import (
	"syscall"

	"github.com/horust-go/horust/internal/config"
)

func signalName(s syscall.Signal) string { return config.SignalName(s) }
