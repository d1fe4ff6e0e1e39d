// Package buildinfo says which build a binary is: its version, the commit it
// was built from and the Go toolchain that built it. horust and horustctl
// print it for --version (-V); horust also reports the version on /healthz
// and /metrics.
//
// The release build (scripts/release, and the Dockerfile with the same flags)
// sets version and commit with the linker:
//
//	-ldflags "-X github.com/horust-go/horust/internal/buildinfo.version=1.2.3
//	          -X github.com/horust-go/horust/internal/buildinfo.commit=<sha>"
//
// A plain "go build" in a git checkout gets the commit from the Go toolchain's
// VCS stamp, and "go install module@version" gets the module's version.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); empty in a plain build.
var (
	version string
	commit  string
)

// Version is the version stamped by the release build, else the module's
// version (go install module@version), else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Commit is the commit stamped by the release build, else the one the Go
// toolchain recorded from the checkout ("-dirty" when it had changes), else
// "unknown".
func Commit() string {
	if commit != "" {
		return commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "unknown"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}

// String is the --version line of program, for example
// "horust 1.2.3 (commit 0123abcd..., go1.26.0 linux/amd64)".
func String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s %s/%s)", program, Version(), Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
