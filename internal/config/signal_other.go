//go:build !linux

package config

import "syscall"

// signalsLinux is empty where the Linux-only signals do not exist.
var signalsLinux = map[string]syscall.Signal{}
