// Command horustctl talks to a running horust over its control socket:
// it shows the services' status, starts, stops, restarts and signals them,
// waits for them in scripts and asks horust to shut down.
package main

import (
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// buildVersion is version, or the module's version when built with go
// install, or "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
