package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/logs"
	"github.com/horust-go/horust/internal/proc"
)

// validate is --validate after the configuration loaded: it refuses what
// start-up would refuse (exit 1), warns on stderr about what would make a
// service's start fail on this machine (proc.Preflight) or be ignored
// (logs.Warnings), and prints the start order.
func validate(c *cli, svcs []*config.Service, stdout, stderr io.Writer) (int, error) {
	if _, err := udsGroupID(c.udsGroup); err != nil {
		return 1, fatal(err)
	}
	for _, s := range svcs {
		for _, w := range append(proc.Preflight(s, os.Getenv("PATH")), logs.Warnings(s)...) {
			fmt.Fprintf(stderr, "warning: %s: %s\n", s.Name, w)
		}
	}
	printOrder(stdout, svcs)
	return 0, nil
}

// printOrder prints the services in start order with what they wait for.
func printOrder(w io.Writer, svcs []*config.Service) {
	fmt.Fprintf(w, "%d service(s), in start order:\n", len(svcs))
	for i, s := range svcs {
		line := fmt.Sprintf("%3d. %s", i+1, s.Name)
		if s.Oneshot {
			line += "  (job: up once it has exited successfully)"
		}
		if len(s.StartAfter) > 0 {
			line += "  (after " + strings.Join(s.StartAfter, ", ") + ")"
		}
		if len(s.ShutdownAfter) > 0 {
			line += "  (stops after " + strings.Join(s.ShutdownAfter, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
}
