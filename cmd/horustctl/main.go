// Command horustctl talks to a running horust over its control socket:
// it shows the services' status, starts, stops, restarts and signals them,
// waits for them in scripts and asks horust to shut down.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
