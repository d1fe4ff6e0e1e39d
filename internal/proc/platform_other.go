//go:build !linux

package proc

import (
	"errors"
	"syscall"
)

// SetSubreaper fails: there is no child subreaper here, so orphans of
// services are reparented to the system's init, not to horust (see
// docs/design.md, macOS).
func SetSubreaper() error {
	return errors.New("this system has no child subreaper (a Linux feature)")
}

// setDeathSignal does nothing: there is no parent-death signal here, so
// services outlive a horust that is killed with SIGKILL.
func setDeathSignal(*syscall.SysProcAttr) {}
