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
	"github.com/horust-go/horust/internal/watch"
	"golang.org/x/sys/unix"
)

// sweepGrace is how long the final sweep waits after SIGTERM before SIGKILL.
const sweepGrace = 2 * time.Second

// oneShotGrace is how long a one-shot command runs before horust makes
// what only a command that keeps running needs: the control socket and the
// thread reserve. A command that ends sooner never competes with them for
// the CPU, and horust exits without making them (docs/design.md, "One-shot
// start-up").
const oneShotGrace = 50 * time.Millisecond

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
	// signals); the first fork waits for that (proc.SystemOptions.BeforeFork),
	// once the first start is otherwise prepared: no SIGCHLD may be missed
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
	cwd, err := os.Getwd()
	if err != nil {
		return 1, fatal(fmt.Errorf("current directory: %w", err))
	}
	svcs, err := loadServices(c, cwd)
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
		Global:           global,
		OutputStats: func(name string) (uint64, uint64) {
			st := outputs.Stats(name)
			return st.Copied, st.Dropped
		},
	}
	if oneShot {
		// The thread reserve (threads.go) waits until the command has run
		// for oneShotGrace: made before the start, it would delay it by
		// about a millisecond of clones on a 2-core machine, and made
		// beside it, it would slow a short command down as much.
		opt.Settled = func() { time.AfterFunc(oneShotGrace, reserveThreads) }
	} else {
		// Loading and starting leave garbage a long-running horust never
		// needs again: collect it and give the pages back once, so that an
		// idle horust holds only what it uses.
		opt.Settled = func() { runtimedebug.FreeOSMemory() }
	}
	if !oneShot {
		opt.Load = func() (supervisor.Configuration, error) { return reloadConfig(c, cwd, log) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notify, err := listenNotify(svcs, oneShot, log)
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
	if c.watch && !oneShot {
		paths := append([]string{c.configPath}, c.servicesPaths...)
		go func() {
			if err := watch.Run(ctx, paths, watch.Settle, func() { loop.Trigger("watch") }, log); err != nil {
				log.Error("--watch: the configuration is not watched", "err", err)
			}
		}()
	}
	sockPath := filepath.Join(udsFolder, control.SocketName(os.Getpid()))
	// The loop says where a service's output goes; the handler reads it.
	openLogs := func(ctx context.Context, name, stream string, emit func([]byte) error) (*logs.Reader, error) {
		svc, err := loop.ServiceConfig(ctx, name)
		if err != nil {
			return nil, err
		}
		return outputs.Open(svc, stream, emit)
	}
	stopServing := serveControl(ctx, c, log, udsFolder, sockPath, probeLn, oneShot,
		server.Options{Backend: loop, Log: log, Version: buildinfo.Version(), Logs: openLogs})

	<-reserved
	sigs := supervisor.Signals{Child: signals.Child, Stop: signals.Stop, Other: signals.Other}
	loop.Run(sigs)

	proc.Sweep(sigs.Child, sweepGrace)
	// Everything the services wrote reaches its destination before horust
	// exits; only a destination that takes nothing for 5 s is given up on.
	if !outputs.Wait(5 * time.Second) {
		log.Error("some service output could not be written before exit")
	}
	stopServing()
	return loop.ExitCode(c.unsuccessfulExitFinishedFailed), nil
}

// loadServices is the one service of one-shot mode, or the services of
// the service files in start order.
func loadServices(c *cli, cwd string) ([]*config.Service, error) {
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

// reloadConfig loads horust.toml and the service files again for a
// reload, as supervise did at start (the same paths, the working directory
// of the start), and reports the problems of both together.
func reloadConfig(c *cli, cwd string, log *slog.Logger) (supervisor.Configuration, error) {
	var probs config.Problems
	global, err := config.LoadGlobal(c.configPath)
	if err != nil && !errors.As(err, &probs) {
		return supervisor.Configuration{}, err
	}
	svcs, err := config.Load(c.servicesPaths, config.Options{Cwd: cwd})
	if err != nil {
		var p config.Problems
		if !errors.As(err, &p) {
			return supervisor.Configuration{}, err
		}
		probs = append(probs, p...)
	}
	if len(probs) > 0 {
		return supervisor.Configuration{}, probs
	}
	for _, s := range svcs {
		for _, w := range logs.Warnings(s) {
			log.Warn(w, "service", s.Name)
		}
	}
	return supervisor.Configuration{Services: svcs, Global: global}, nil
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
	return proc.NewSystem(proc.SystemOptions{Log: log, Outputs: outputs, Cgroups: cgroups, Env: os.Environ(), BeforeFork: signals.Wait})
}

// listenNotify opens the notify socket in service mode (a reload may add a
// service with notify = true), and in one-shot mode when the command uses
// it; nil otherwise.
func listenNotify(svcs []*config.Service, oneShot bool, log *slog.Logger) (*health.NotifySocket, error) {
	for _, s := range svcs {
		if !oneShot || s.Healthiness.Notify {
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
// --http-addr (probeLn), the probes, until stop is called. A socket that
// cannot be created is logged: the services still run. In service mode the
// socket exists before it returns, since services may call horustctl as
// soon as they run, and stop lets the requests in progress finish. A
// one-shot command waits for neither: the socket is made (and the sockets
// of dead horusts removed from udsFolder) once the command has run for
// oneShotGrace, and stop removes the socket, or keeps it from being made,
// and returns at once; requests still in progress end with horust.
func serveControl(ctx context.Context, c *cli, log *slog.Logger, udsFolder, sockPath string, probeLn net.Listener, oneShot bool, opt server.Options) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
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
	var served sync.WaitGroup
	if probeLn != nil {
		served.Go(func() { _ = server.ServeProbes(ctx, probeLn, opt) })
	}
	if oneShot {
		sock := &lateSocket{}
		late := time.AfterFunc(oneShotGrace, func() {
			serve(sock.open(func() net.Listener {
				removeDeadSockets(udsFolder, log)
				return listen()
			}))
		})
		return func() {
			late.Stop()
			sock.close()
			cancel()
		}
	}
	ln := listen()
	served.Go(func() { serve(ln) })
	return func() {
		cancel()
		served.Wait()
	}
}

// lateSocket is the control socket of one-shot mode, made once the
// command has run for oneShotGrace and closed without waiting for its
// server.
type lateSocket struct {
	mu     sync.Mutex
	closed bool
	ln     net.Listener
}

// open makes the socket with listen, unless close came first (nil then).
func (s *lateSocket) open(listen func() net.Listener) net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.ln = listen()
	return s.ln
}

// close closes the socket, which removes its file; once it has returned,
// open makes none.
func (s *lateSocket) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ln != nil {
		_ = s.ln.Close()
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
