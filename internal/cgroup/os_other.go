//go:build !linux

package cgroup

import "syscall"

// unavailable is why Open finds no cgroups on this system: the Manager's
// mode is "none", every Group tracks nothing (services run as process
// groups) and a limit is a *LimitError (see docs/design.md, macOS).
const unavailable = "cgroups are a Linux feature, not available on this system"

// setCgroupFD is never called here: with no cgroups, no Group has an fd.
func setCgroupFD(*syscall.SysProcAttr, int) {}

// cloneIntoCgroup is false: there is no clone3 here (and no cgroup).
func cloneIntoCgroup() bool { return false }

// deathSignal is 0: there is no parent-death signal here.
func deathSignal() int32 { return 0 }

// setDeathSignal does nothing: there is no parent-death signal here.
func setDeathSignal(int32) {}

// pidfds opens nothing: there are no pidfds here (and no cgroup to empty).
func pidfds([]int) []int { return nil }
