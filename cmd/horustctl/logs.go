package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/spf13/cobra"
)

func (a *app) logsCmd() *cobra.Command {
	var q control.LogsQuery
	var stderr bool
	cmd := &cobra.Command{
		Use:   "logs NAME [-n N] [-f] [--stderr]",
		Short: "Print the last lines of a service's output; with -f, follow it",
		Long: "logs prints the last --lines lines of a service's stdout (--stderr: its stderr), " +
			"then with --follow every new line until interrupted.\n\n" +
			"Output to a file is read from the file, across its rotated chunks, and followed " +
			"across rotations. Prefixed output (stdout-prefix, --log-prefix) is read from the " +
			"last 32 KiB of each stream that horust keeps. Output that goes straight to horust's " +
			"own stdout or stderr is never seen by horust: logs says so and exits 1.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{msg: "logs needs exactly one service name"}
			}
			return nil
		},
		ValidArgsFunction: a.completeNames,
		RunE: func(_ *cobra.Command, names []string) error {
			if q.Lines < 0 {
				return &usageError{msg: "--lines must be 0 or more"}
			}
			q.Stream = "stdout"
			if stderr {
				q.Stream = "stderr"
			}
			timeout := callTimeout
			if q.Follow {
				timeout = 1<<63 - 1 // until interrupted
			}
			return a.withClient(timeout, names, func(ctx context.Context, c *client.Client) error {
				// Ctrl-C or a TERM ends a follow cleanly.
				ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
				return c.Logs(ctx, names[0], q, a.stdout)
			})
		},
	}
	f := cmd.Flags()
	f.IntVarP(&q.Lines, "lines", "n", 100, "print the last N lines (0: none)")
	f.BoolVarP(&q.Follow, "follow", "f", false, "then print new lines as they come, until interrupted")
	f.BoolVar(&stderr, "stderr", false, "the service's stderr instead of its stdout")
	return cmd
}
