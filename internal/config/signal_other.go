//go:build !linux

package config

// signalsLinux is empty where the Linux-only signals do not exist.
var signalsLinux []namedSignal
