package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/horust-go/horust/internal/buildinfo"
	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/nearest"
	"github.com/horust-go/horust/internal/status"
	"github.com/spf13/cobra"
)

// callTimeout bounds one request beyond what horust itself allows (its
// loop gets 5 s per call): past it horust is taken as stuck.
const callTimeout = 15 * time.Second

// socketRetry is how often wait looks again for a socket that horust has
// not made yet.
const socketRetry = 100 * time.Millisecond

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // anything that went wrong talking to horust or in it
	exitUsage = 2 // a bad command line
)

// runError marks an error that happened while doing the command (exit 1);
// any other error out of cobra is a usage error (exit 2).
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// usageError is a bad command line found by a command itself.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// run executes horustctl with args and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var re *runError
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
	case errors.As(err, &re):
		fmt.Fprintf(stderr, "horustctl: %s\n", oneLine(err.Error()))
		return exitError
	}
	fmt.Fprintf(stderr, "horustctl: %s\nRun 'horustctl --help' for usage.\n", oneLine(err.Error()))
	return exitUsage
}

// oneLine keeps a message on one line whatever horust sent.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// app holds the global flags.
type app struct {
	stdout     io.Writer
	stderr     io.Writer
	pid        int
	dir        string
	socketPath string
	json       bool
	cmd        *cobra.Command // the root, whose flags say whether -u was given
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "horustctl",
		Short: "Control a running horust",
		Long: "horustctl talks to a running horust over its control socket " +
			"(<uds-folder-path>/horust-<pid>.sock).\n\n" +
			"Without --socket-path or --pid, the folder must hold exactly one horust socket. " +
			"Without -u, the folder is $HORUST_UDS_FOLDER_PATH when set (as for horust); " +
			"otherwise, when the default folder has none, $XDG_RUNTIME_DIR/horust and the temporary " +
			"directory's horust-<uid> folder are searched too (where a horust that is not root puts it).",
		Version:       buildinfo.String("horustctl"),
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(*cobra.Command, []string) error {
			return &usageError{msg: "a command is required"}
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	// The root runs only to say that a command is required: its usage line
	// is "horustctl [command]", not cobra's "horustctl [flags]" too.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable .HasParent}}", 1))
	root.Flags().BoolP("version", "V", false, "print the version, the commit and the Go version, and exit")
	pf := root.PersistentFlags()
	pf.IntVarP(&a.pid, "pid", "p", 0, "talk to the horust with this process id (<uds-folder-path>/horust-<PID>.sock)")
	pf.StringVarP(&a.dir, "uds-folder-path", "u", control.DefaultSocketDir, "folder where horust puts its socket ($"+control.FolderEnv+" when not given)")
	pf.StringVar(&a.socketPath, "socket-path", "", "full path of the socket (overrides --pid and --uds-folder-path)")
	pf.BoolVar(&a.json, "json", false, "print horust's answer as JSON")
	a.cmd = root
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })

	root.AddCommand(a.statusCmd(), a.topCmd(), a.actionCmd("start"), a.actionCmd("stop"), a.actionCmd("restart"),
		a.killCmd(), a.shutdownCmd(), a.waitCmd(), a.reloadCmd(), a.logsCmd())
	return root
}

// client finds the socket the flags designate. The flags are read here, not
// in a PersistentPreRun, which cobra skips for shell completion.
func (a *app) client() (*client.Client, error) {
	d := client.Discovery{SocketPath: a.socketPath, PID: a.pid}
	if a.cmd.PersistentFlags().Changed("uds-folder-path") {
		d.Dir = a.dir
	} else {
		d.Dir = os.Getenv(control.FolderEnv)
	}
	path, err := client.FindSocket(d)
	if err != nil {
		return nil, err
	}
	return client.New(path), nil
}

// withClient runs f with a client and a context bounded by timeout; its
// error, if any, is a run error. names are the services the command names,
// for a "did you mean" when horust knows one of them under another name.
func (a *app) withClient(timeout time.Duration, names []string, f func(context.Context, *client.Client) error) error {
	c, err := a.client()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = f(ctx, c)
		cancel()
		if errors.Is(err, control.ErrNotFound) {
			err = didYouMean(c, names, err)
		}
	}
	if errors.Is(err, client.ErrNoSocket) || errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w (%s)", err, whereHint)
	}
	if err != nil {
		return &runError{err}
	}
	return nil
}

// whereHint follows an error that found no socket.
const whereHint = "point horustctl at horust with -u/--uds-folder-path or $" + control.FolderEnv + ", --pid, or --socket-path"

// notUp reports whether err says that no horust listens where horustctl
// looked: no socket in the folder, none at the path, or nobody on it.
func notUp(err error) bool {
	return errors.Is(err, client.ErrNoSocket) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}

// didYouMean adds the near miss to horust's "no such service 'x'" answer:
// the first of names that horust does not know and the answer names.
func didYouMean(c *client.Client, names []string, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, lerr := c.List(ctx)
	if lerr != nil {
		return err
	}
	known := make([]string, len(list))
	for i, st := range list {
		known[i] = st.Name
	}
	for _, n := range names {
		if slices.Contains(known, n) || !strings.Contains(err.Error(), "'"+n+"'") {
			continue
		}
		if s := nearest.Name(n, known); s != "" {
			return fmt.Errorf("%w; did you mean '%s'?", err, s)
		}
		break
	}
	return err
}

// completeNames offers the names of the services of the horust found.
func (a *app) completeNames(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	var names []string
	_ = a.withClient(2*time.Second, nil, func(ctx context.Context, c *client.Client) error {
		list, err := c.List(ctx)
		for _, st := range list {
			names = append(names, st.Name)
		}
		return err
	})
	return names, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return &runError{fmt.Errorf("encode JSON: %w", err)}
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// printStatusLine prints the line the original horustctl prints.
func (a *app) printStatusLine(st status.ServiceStatus) error {
	if a.json {
		return a.printJSON(st)
	}
	_, err := fmt.Fprintf(a.stdout, "Current status for '%s' is: '%s'.\n", st.Name, st.State.API())
	return err
}

func (a *app) statusCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status [NAME...] [-w|--watch]",
		Short: "Show the status of one service, or a table of all of them",
		Long: "status prints the original's line for each named service, or a table of all of " +
			"them. With --watch it shows the table (of the named services only, when some are " +
			"named) every second: redrawn in place on a terminal until q, Esc or Ctrl-C; printed " +
			"again and again, a blank line between tables, when stdout is not a terminal.",
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: a.completeNames,
		RunE: func(_ *cobra.Command, names []string) error {
			if watch {
				return a.watch(names)
			}
			return a.withClient(callTimeout, names, func(ctx context.Context, c *client.Client) error {
				if len(names) == 0 {
					rep, err := c.Status(ctx)
					if err != nil {
						return err
					}
					if a.json {
						return a.printJSON(rep)
					}
					if err := printTable(a.stdout, rep.Services); err != nil {
						return err
					}
					return printLastReload(a.stdout, rep.Config)
				}
				for _, n := range names {
					st, err := c.Get(ctx, n)
					if err != nil {
						return err
					}
					if err := a.printStatusLine(st); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "show the table every second until q or Ctrl-C")
	return cmd
}

// topCmd is status --watch under the name people look for.
func (a *app) topCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "top [NAME...]",
		Short:             "Show the table of the services every second (status --watch)",
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: a.completeNames,
		RunE: func(_ *cobra.Command, names []string) error {
			return a.watch(names)
		},
	}
}

func (a *app) actionCmd(action string) *cobra.Command {
	short := map[string]string{
		"start":   "Start finished services again",
		"stop":    "Stop services until started again (FINISHED; FINISHEDFAILED if SIGKILL was needed)",
		"restart": "Restart services, whatever their restart strategy",
	}[action]
	return &cobra.Command{
		Use:               action + " NAME...",
		Short:             short,
		Args:              needNames,
		ValidArgsFunction: a.completeNames,
		RunE: func(_ *cobra.Command, names []string) error {
			return a.withClient(callTimeout, names, func(ctx context.Context, c *client.Client) error {
				call := map[string]func(context.Context, string) (status.ServiceStatus, error){
					"start": c.Start, "stop": c.Stop, "restart": c.Restart,
				}[action]
				for _, n := range names {
					st, err := call(ctx, n)
					if err != nil {
						return err
					}
					if err := a.printStatusLine(st); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

func (a *app) killCmd() *cobra.Command {
	var sigName string
	cmd := &cobra.Command{
		Use:               "kill [-s SIGNAL] NAME...",
		Short:             "Send a signal to services' processes (TERM by default)",
		Args:              needNames,
		ValidArgsFunction: a.completeNames,
		RunE: func(_ *cobra.Command, names []string) error {
			sig, err := control.ParseSignal(sigName)
			if err != nil {
				return &usageError{msg: err.Error()}
			}
			return a.withClient(callTimeout, names, func(ctx context.Context, c *client.Client) error {
				for _, n := range names {
					if err := c.Signal(ctx, n, sig); err != nil {
						return err
					}
					if a.json {
						if err := a.printJSON(control.SignalReply{Name: n, Signal: control.SignalName(sig)}); err != nil {
							return err
						}
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&sigName, "signal", "s", "TERM", "signal name (HUP, SIGHUP) or number")
	return cmd
}

func (a *app) shutdownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "shutdown",
		Short: "Shut horust down gracefully, as SIGTERM does",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withClient(callTimeout, nil, func(ctx context.Context, c *client.Client) error {
				if err := c.Shutdown(ctx); err != nil {
					return err
				}
				if a.json {
					return a.printJSON(control.ShutdownReply{Status: "shutting down"})
				}
				return nil
			})
		},
	}
}

func (a *app) waitCmd() *cobra.Command {
	var forFlag string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NAME... [--for running|finished] [--timeout 30s]",
		Short: "Wait until services are running (or finished); exit 1 on timeout",
		Long: "wait returns once every named service is up as start-after means it: RUNNING or " +
			"FINISHED (a job, oneshot = true, only once FINISHED); with --for finished, once every " +
			"one is FINISHED or FINISHEDFAILED. Waiting for running fails at once when a service is " +
			"FINISHEDFAILED or horust is shutting down; any wait fails after --timeout (exit 1). " +
			"Started before horust has made its socket, it waits for the socket too, within the " +
			"same --timeout.",
		Args:              needNames,
		ValidArgsFunction: a.completeNames,
		RunE: func(_ *cobra.Command, names []string) error {
			cond := control.WaitFor(forFlag)
			if cond != control.WaitRunning && cond != control.WaitFinished {
				return &usageError{msg: fmt.Sprintf("--for %q: running or finished", forFlag)}
			}
			if timeout <= 0 {
				return &usageError{msg: "--timeout must be above 0"}
			}
			// A wait started before horust has made its socket (a script
			// that starts horust, then waits) waits for the socket too,
			// within the same timeout.
			deadline := time.Now().Add(timeout)
			for left := timeout; ; left = max(time.Until(deadline).Round(time.Millisecond), time.Millisecond) {
				err := a.withClient(left+callTimeout, names, func(ctx context.Context, c *client.Client) error {
					list, err := c.Wait(ctx, names, cond, left)
					if err != nil {
						return err
					}
					if a.json {
						return a.printJSON(control.ServicesReply{Services: list})
					}
					return nil
				})
				if !notUp(err) || !time.Now().Before(deadline) {
					return err
				}
				time.Sleep(socketRetry)
			}
		},
	}
	cmd.Flags().StringVar(&forFlag, "for", string(control.WaitRunning), "condition: running or finished")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

// needNames requires at least one service name.
func needNames(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return &usageError{msg: cmd.Name() + " needs at least one service name"}
	}
	return nil
}

// printTable prints one line per service.
func printTable(w io.Writer, list []status.ServiceStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tRESTARTS\tUPTIME\tHEALTH\tEXIT/REASON")
	for _, st := range list {
		pid := "-"
		if st.PID > 0 {
			pid = strconv.Itoa(st.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", clean(st.Name), st.State.API(), pid, st.Restarts,
			uptime(st), clean(health(st)), clean(exitReason(st)))
	}
	return tw.Flush()
}

// clean keeps a field on its line and in its column.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func uptime(st status.ServiceStatus) string {
	if st.StartedAt.IsZero() && st.UptimeSeconds == 0 {
		return "-"
	}
	return formatDuration(time.Duration(st.UptimeSeconds * float64(time.Second)))
}

// formatDuration is a duration for people: its two largest units.
func formatDuration(d time.Duration) string {
	s := int64(d / time.Second)
	days, h, m := s/86400, s%86400/3600, s%3600/60
	sec := s % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, sec)
	}
	return fmt.Sprintf("%ds", sec)
}

// notifyStatusWidth bounds the notify STATUS= text in the table.
const notifyStatusWidth = 40

// health is the checks' verdict, or the notify state, followed by the
// service's last notify STATUS= text: "notify: ready (Listening on :80)".
func health(st status.ServiceStatus) string {
	h := st.Health
	switch {
	case h != "":
	case st.Notify != nil && st.Notify.Ready:
		h = "notify: ready"
	case st.Notify != nil:
		h = "notify: waiting"
	default:
		return "-"
	}
	if st.Notify != nil && st.Notify.Status != "" {
		h += " (" + cut(st.Notify.Status, notifyStatusWidth) + ")"
	}
	return h
}

func exitReason(st status.ServiceStatus) string {
	var parts []string
	switch {
	case st.LastSignal != "":
		parts = append(parts, "killed by "+st.LastSignal)
	case st.LastExitCode != nil:
		parts = append(parts, "exit "+strconv.Itoa(*st.LastExitCode))
	}
	if st.Reason != "" {
		parts = append(parts, st.Reason)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ": ")
}
