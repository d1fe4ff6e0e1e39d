// Command smokeprog plays the services of the smoke test that runs horust
// built for another architecture under qemu-user (.ci/qemu-smoke). It is built
// for that architecture too, so that the whole run is foreign code; it does
// nothing a shell could not, but a host shell would be the host's architecture.
//
//	smokeprog exit N             exit with code N
//	smokeprog serve NAME [ONCE]  print "NAME: up", run until SIGTERM, print
//	                             "NAME: stopped", exit 0; when ONCE is given and
//	                             no file ONCE exists, create it and exit 1 first
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	switch {
	case len(args) == 2 && args[0] == "exit":
		n, err := strconv.Atoi(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "smokeprog:", err)
			return 2
		}
		return n
	case (len(args) == 2 || len(args) == 3) && args[0] == "serve":
		return serve(args[1], args[2:])
	}
	fmt.Fprintln(os.Stderr, "usage: smokeprog exit N | smokeprog serve NAME [ONCE]")
	return 2
}

func serve(name string, once []string) int {
	if len(once) == 1 {
		if _, err := os.Stat(once[0]); os.IsNotExist(err) {
			if err := os.WriteFile(once[0], nil, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "smokeprog:", err)
				return 2
			}
			fmt.Printf("%s: failing once\n", name)
			return 1
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Printf("%s: up\n", name)
	<-term
	fmt.Printf("%s: stopped\n", name)
	return 0
}
