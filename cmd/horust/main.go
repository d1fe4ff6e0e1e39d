// Command horust is a supervisor and init system: it runs the services
// described by TOML files, or one command (horust -- CMD), as PID 1 in a
// container or as an ordinary process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	runtimedebug "runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/horust-go/horust/cmd/horust/internal/signals"
	"github.com/horust-go/horust/internal/buildinfo"
	"github.com/horust-go/horust/internal/cgroup"
	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/server"
	"github.com/horust-go/horust/internal/health"
	"github.com/horust-go/horust/internal/logs"
	"github.com/horust-go/horust/internal/proc"
	"github.com/horust-go/horust/internal/supervisor"
	"golang.org/x/sys/unix"
)

// sweepGrace is how long the final sweep waits after SIGTERM before SIGKILL.
const sweepGrace = 2 * time.Second

func main() {
	cgroup.MaybeExec() // the re-exec step that joins v1 cgroups; returns at once otherwise
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code and a message for stderr.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func fatal(err error) error { return exitError{1, err} }

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "horust: %v\nRun 'horust --help' for usage.\n", err)
		return 2
	}
	switch {
	case c.sampleService:
		fmt.Fprintln(stdout, config.SampleService())
		return 0
	case c.version:
		fmt.Fprintln(stdout, buildinfo.String("horust"))
		return 0
	}
	log := newLogger(stderr)
	code, err := supervise(c, log, stdout, stderr)
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else {
			code = 1
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
	}
	return code
}

// supervise loads everything, then runs the services until they finish.
func supervise(c *cli, log *slog.Logger, stdout, stderr io.Writer) (int, error) {
	// The signals are subscribed from the start of the program (package
	// signals); the first start waits for that: no SIGCHLD may be missed
	// and no signal may take its default action on horust. In service mode
	// the thread reserve is made meanwhile, and waited for too, so that no
	// service forks before it exists.
	oneShot := len(c.command) > 0
	reserved := make(chan struct{})
	if oneShot {
		close(reserved)
	} else {
		go func() {
			reserveThreads()
			close(reserved)
		}()
	}
	global, err := config.LoadGlobal(c.configPath)
	if err != nil {
		return 1, fatal(fmt.Errorf("failed loading configuration: %s\n%w", c.configPath, err))
	}
	failedIs101 := c.unsuccessfulExitFinishedFailed || global.UnsuccessfulExitFinishedFailed
	svcs, err := loadServices(c)
	if err != nil {
		return 1, err
	}
	if c.validate {
		return validate(c, svcs, stdout, stderr)
	}
	for _, s := range svcs {
		for _, w := range logs.Warnings(s) {
			log.Warn(w, "service", s.Name)
		}
	}

	// The folder is chosen before the first start (one that cannot be used
	// is an error); cleaning it waits until after the command's start in
	// one-shot mode, where nothing needs the socket before the command runs.
	if _, err := udsGroupID(c.udsGroup); err != nil {
		return 1, fatal(err)
	}
	udsFolder, err := chooseSocketFolder(c, stderr)
	if err != nil {
		return 1, fatal(err)
	}
	if !oneShot {
		removeDeadSockets(udsFolder, log)
	}
	var probeLn net.Listener
	if c.httpAddr != "" {
		if probeLn, err = net.Listen("tcp", c.httpAddr); err != nil {
			return 1, fatal(fmt.Errorf("--http-addr: %w", err))
		}
	}
	if os.Getpid() != 1 {
		if err := proc.SetSubreaper(); err != nil {
			log.Warn("cannot become a child subreaper: orphans of services will not be reaped by horust", "err", err)
		}
	}
	outputs := logs.NewOutputs(os.Stdout, os.Stderr, c.logPrefix)
	sys, err := newSystem(c, log, outputs, oneShot)
	if err != nil {
		return 1, fatal(err)
	}
	defer func() {
		if err := sys.Close(); err != nil {
			log.Error("cleaning up cgroups", "err", err)
		}
	}()

	opt := supervisor.Options{
		OS:               sys,
		Log:              log,
		Services:         svcs,
		Prober:           health.NewProber(),
		PrepareCheckFile: health.PrepareFile,
		OneShot:          oneShot,
		Foreground:       oneShot && ownsTerminal(),
		Forward:          signals.Forwarded,
		OutputStats: func(name string) (uint64, uint64) {
			st := outputs.Stats(name)
			return st.Copied, st.Dropped
		},
	}
	if oneShot {
		// The thread reserve (threads.go) is made once the command has
		// started, beside it: made before, it would delay the start by
		// about a millisecond of clones on a 2-core machine.
		opt.Settled = func() { go reserveThreads() }
	} else {
		// Loading and starting leave garbage a long-running horust never
		// needs again: collect it and give the pages back once, so that an
		// idle horust holds only what it uses.
		opt.Settled = func() { runtimedebug.FreeOSMemory() }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notify, err := listenNotify(svcs, log)
	if err != nil {
		return 1, fatal(err)
	}
	if notify != nil {
		opt.NotifySocket = notify.Addr()
		defer notify.Close()
	}
	loop := supervisor.New(opt)
	if notify != nil {
		// The loop judges the sender with m.From, by what the socket
		// recorded when the message arrived: a short-lived sender may be
		// gone by now.
		go notify.Serve(ctx, loop.Notify)
	}
	if !oneShot {
		// Whoever sees the control socket may signal horust: by then a
		// TERM must stop it, not kill it.
		signals.Wait()
	}
	var served sync.WaitGroup
	sockPath := filepath.Join(udsFolder, control.SocketName(os.Getpid()))
	// The loop says where a service's output goes; the handler reads it.
	openLogs := func(ctx context.Context, name, stream string, emit func([]byte) error) (*logs.Reader, error) {
		svc, err := loop.Config(ctx, name)
		if err != nil {
			return nil, err
		}
		return outputs.Open(svc, stream, emit)
	}
	serveControl(ctx, &served, c, log, udsFolder, sockPath, probeLn, oneShot,
		server.Options{Backend: loop, Log: log, Version: buildinfo.Version(), Logs: openLogs})

	<-reserved
	signals.Wait()
	sigs := supervisor.Signals{Child: signals.Child, Stop: signals.Stop, Other: signals.Other}
	loop.Run(sigs)

	proc.Sweep(sigs.Child, sweepGrace)
	// Everything the services wrote reaches its destination before horust
	// exits; only a destination that takes nothing for 5 s is given up on.
	if !outputs.Wait(5 * time.Second) {
		log.Error("some service output could not be written before exit")
	}
	cancel()
	served.Wait()
	return loop.ExitCode(failedIs101), nil
}

// loadServices is the one service of one-shot mode, or the services of
// the service files in start order.
func loadServices(c *cli) ([]*config.Service, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fatal(fmt.Errorf("current directory: %w", err))
	}
	if len(c.command) > 0 {
		s, err := config.OneShot(c.command, cwd)
		if err != nil {
			return nil, exitError{2, err}
		}
		return []*config.Service{s}, nil
	}
	svcs, err := config.Load(c.servicesPaths, config.Options{Cwd: cwd})
	if err != nil {
		return nil, fatal(fmt.Errorf("failed loading services from %s:\n%w", strings.Join(c.servicesPaths, ", "), err))
	}
	return svcs, nil
}

// newSystem is the real OS boundary of the loop, with the services'
// cgroups where they can be used (not in one-shot mode).
func newSystem(c *cli, log *slog.Logger, outputs *logs.Outputs, oneShot bool) (*proc.System, error) {
	var cgroups *cgroup.Manager
	if !oneShot {
		var err error
		cgroups, err = cgroup.Open(cgroup.Options{Disabled: c.noCgroups, IgnoreErrors: c.ignoreResourceErrors})
		if err != nil {
			log.Warn("cgroups unavailable: the process group is the unit of a service", "err", err)
			cgroups = nil
		} else {
			removed, err := cgroups.RemoveStale()
			for _, p := range removed {
				log.Info("removed the cgroups of a horust that is gone", "path", p)
			}
			if err != nil {
				log.Warn("cannot remove the cgroups of a horust that is gone", "err", err)
			}
		}
	}
	return proc.NewSystem(proc.SystemOptions{Log: log, Outputs: outputs, Cgroups: cgroups, Env: os.Environ()})
}

// listenNotify opens the notify socket when a service uses notify = true;
// nil otherwise.
func listenNotify(svcs []*config.Service, log *slog.Logger) (*health.NotifySocket, error) {
	for _, s := range svcs {
		if s.Healthiness.Notify {
			notify, err := health.ListenNotify(fmt.Sprintf("horust-notify-%d-%d", os.Getpid(), time.Now().UnixNano()))
			if err != nil {
				return nil, fmt.Errorf("notify socket: %w", err)
			}
			notify.Log = log
			return notify, nil
		}
	}
	return nil, nil
}

// serveControl serves the control API on the Unix socket sockPath and, with
// --http-addr (probeLn), the probes, each in a goroutine of served, until
// ctx ends. A socket that cannot be created is logged: the services still
// run. In service mode the socket exists before it returns, since services
// may call horustctl as soon as they run; a one-shot command does not wait
// for it, nor for the removal of dead horusts' sockets from udsFolder.
func serveControl(ctx context.Context, served *sync.WaitGroup, c *cli, log *slog.Logger, udsFolder, sockPath string, probeLn net.Listener, oneShot bool, opt server.Options) {
	listen := func() net.Listener {
		ln, err := server.ListenUnix(sockPath, c.udsMode, udsGID(c.udsGroup, log))
		if err != nil {
			log.Error("control socket unavailable; horustctl cannot reach this horust", "path", sockPath, "err", err)
			return nil
		}
		return ln
	}
	serve := func(ln net.Listener) {
		if ln != nil {
			_ = server.Serve(ctx, ln, opt)
		}
	}
	if oneShot {
		served.Go(func() {
			removeDeadSockets(udsFolder, log)
			serve(listen())
		})
	} else {
		ln := listen()
		served.Go(func() { serve(ln) })
	}
	if probeLn != nil {
		served.Go(func() { _ = server.ServeProbes(ctx, probeLn, opt) })
	}
}

// removeDeadSockets removes the sockets that dead horust processes left in
// the control socket's folder dir.
func removeDeadSockets(dir string, log *slog.Logger) {
	removed, err := server.RemoveDeadSockets(dir)
	for _, name := range removed {
		log.Info("removed the socket of a horust that is gone", "path", filepath.Join(dir, name))
	}
	if err != nil {
		log.Warn("cleaning the socket folder", "err", err)
	}
}

// chooseSocketFolder creates the control socket's folder. When the default
// cannot be created (an ordinary user), it falls back to
// $XDG_RUNTIME_DIR/horust or the temp directory's horust-<uid>, with one
// line on stderr; a fallback is used only if it is private to this user
// (server.PrivateFolder), and an explicit folder that cannot be used is an
// error.
func chooseSocketFolder(c *cli, stderr io.Writer) (string, error) {
	err := makeFolder(c.udsFolder)
	if err == nil || c.udsFolderSet {
		if err != nil {
			return "", fmt.Errorf("--uds-folder-path: %w", err)
		}
		return c.udsFolder, nil
	}
	reasons := []string{err.Error()}
	for _, dir := range control.FallbackSocketDirs() {
		ferr := server.PrivateFolder(dir)
		if ferr == nil {
			fmt.Fprintf(stderr, "horust: cannot use %s (%v); the control socket is in %s\n", c.udsFolder, errors.Unwrap(err), dir)
			return dir, nil
		}
		reasons = append(reasons, ferr.Error())
	}
	return "", fmt.Errorf("control socket folder: %s", strings.Join(reasons, "; "))
}

// makeFolder creates the folder the user chose (or the default) for the
// socket, as the original does: created 0755 if missing, and usable.
func makeFolder(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s: %w", dir, syscall.ENOTDIR)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if unix.Access(dir, unix.W_OK|unix.X_OK) != nil {
		return fmt.Errorf("%s: %w", dir, syscall.EACCES)
	}
	return nil
}

// udsGroupID resolves --uds-group (a name or a number); -1 keeps the group.
// A group that does not exist is an error: supervise refuses it before anything
// starts, since the operator meant someone to reach the socket.
func udsGroupID(group string) (int, error) {
	if group == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(group); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("--uds-group: %w", err)
	}
	n, _ := strconv.Atoi(g.Gid)
	return n, nil
}

// udsGID is udsGroupID for the socket; a group deleted since supervise checked it
// is logged and the default group kept.
func udsGID(group string, log *slog.Logger) int {
	n, err := udsGroupID(group)
	if err != nil {
		log.Error("--uds-group: unknown group; keeping the default", "group", group, "err", err)
		return -1
	}
	return n
}

// ownsTerminal reports whether fd 0 is a terminal whose foreground process
// group is horust's, so that the one-shot command can take it over.
func ownsTerminal() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
