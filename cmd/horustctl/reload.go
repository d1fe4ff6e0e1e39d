package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/spf13/cobra"
)

func (a *app) reloadCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Reload the configuration, as SIGHUP does",
		Long: "reload makes horust load its service files and horust.toml again, from the paths it " +
			"started with. If anything is wrong, nothing changes: every problem is printed and the exit " +
			"code is 1. Otherwise services are matched by name: added ones start, removed ones stop, " +
			"changed ones stop and start with their new definition, unchanged ones are not touched. " +
			"The plan is printed; with --dry-run it is only printed.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withClient(callTimeout, nil, func(ctx context.Context, c *client.Client) error {
				rep, err := c.Reload(ctx, dryRun)
				var apiErr *client.APIError
				if errors.As(err, &apiErr) && len(apiErr.Problems) > 0 {
					for _, p := range apiErr.Problems {
						fmt.Fprintln(a.stderr, p)
					}
				}
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(rep)
				}
				return printPlan(a.stdout, rep)
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what a reload would do, and do nothing")
	return cmd
}

// printPlan prints what a reload did (or would do) to each service.
func printPlan(w io.Writer, rep control.ReloadReply) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range rep.Services {
		keys := ""
		if len(p.Keys) > 0 {
			keys = "(" + strings.Join(p.Keys, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Change, clean(p.Name), keys)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Global) > 0 {
		fmt.Fprintf(w, "horust.toml changed (%s)\n", strings.Join(rep.Global, ", "))
	}
	added, removed, changed := rep.Changes()
	if rep.DryRun {
		_, err := fmt.Fprintf(w, "dry run: nothing was changed (%d to add, %d to remove, %d to restart)\n", added, removed, changed)
		return err
	}
	_, err := fmt.Fprintf(w, "reloaded: configuration generation %d (%d added, %d removed, %d restarted)\n", rep.Generation, added, removed, changed)
	return err
}

// printLastReload prints, under the status table, the configuration's
// generation and the last reload, once there was one.
func printLastReload(w io.Writer, st *control.ConfigStatus) error {
	if st == nil || st.LastReload == nil {
		return nil
	}
	last := st.LastReload
	_, err := fmt.Fprintf(w, "\nconfiguration generation %d; last reload %s ago (%s): %s\n", st.Generation,
		formatDuration(time.Since(last.At)), last.Trigger, last.Result)
	return err
}
