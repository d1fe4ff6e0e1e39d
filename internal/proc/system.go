package proc

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/horust-go/horust/internal/cgroup"
	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/logs"
	"github.com/horust-go/horust/internal/shell"
	"golang.org/x/sys/unix"
)

// SystemOptions configure the real OS.
type SystemOptions struct {
	Log     *slog.Logger
	Outputs *logs.Outputs
	// Cgroups, when not nil, gives every service a cgroup (see package
	// cgroup); nil makes the process group the only unit of a service.
	Cgroups *cgroup.Manager
	// Env is horust's own environment (os.Environ()).
	Env []string
	// BeforeFork, when not nil, is called before the first fork and
	// returns when forking may begin: horust waits there for its signal
	// subscription, so that everything a start prepares (the program's
	// path, the user, the environment, the output) is done meanwhile.
	BeforeFork func()
}

// System is the real OS of the supervisor loop. It belongs to the loop: it
// is not safe for concurrent use.
type System struct {
	log     *slog.Logger
	outputs *logs.Outputs
	cgroups *cgroup.Manager
	env     []string
	path    string // horust's PATH, where programs are searched
	// selfDir is the directory of horust's executable ("" when unknown),
	// found at the first lookup of one of horust's own programs: a start
	// that needs none does not pay for it.
	selfDir func() string
	self    Identity
	groups  map[string]*cgroup.Group // by service name, kept between runs
	devNull *os.File
	// beforeFork is SystemOptions.BeforeFork until the first fork.
	beforeFork func()
}

var _ OS = (*System)(nil)

// NewSystem returns the real OS.
func NewSystem(o SystemOptions) (*System, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	s := &System{log: o.Log, outputs: o.Outputs, cgroups: o.Cgroups, env: o.Env, self: Self(), groups: map[string]*cgroup.Group{}, devNull: devNull, beforeFork: o.BeforeFork}
	s.selfDir = sync.OnceValue(executableDir)
	for _, kv := range o.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			s.path = v
		}
	}
	return s, nil
}

// Start implements OS: it resolves the command, the user, the working
// directory, the output and the cgroup before it forks, so that each of
// those failures is a clear error of this start and nothing is left open.
func (s *System) Start(svc *config.Service, o StartOptions) (Process, error) {
	argv := svc.Argv
	if len(argv) == 0 {
		var err error
		argv, err = shell.Split(svc.Command)
		if err != nil {
			return nil, fmt.Errorf("invalid command %q: %w", svc.Command, err)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("invalid command %q: it is empty", svc.Command)
		}
	}
	path, err := s.lookPath(argv[0], o.Own)
	if err != nil {
		return nil, err
	}
	id, env := s.self, []string(nil)
	if o.Check {
		env, _ = Environ(&config.Service{Environment: config.Environment{KeepEnv: true}}, id, s.env)
	} else {
		if id, err = Lookup(svc.User, s.self); err != nil {
			return nil, err
		}
		var missing []string
		env, missing = Environ(svc, id, s.env, o.Env...)
		for _, k := range missing {
			s.log.Error("error getting env key: horust has no such variable to re-export", "service", svc.Name, "key", k)
		}
	}
	dir := svc.WorkingDirectory
	if dir != "" && !o.Check {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("working-directory: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("working-directory %s: not a directory", dir)
		}
	}
	if o.Check {
		dir = ""
	}

	var wiring *logs.Wiring
	files := []uintptr{0, s.devNull.Fd(), s.devNull.Fd()}
	if !o.Check {
		if wiring, err = logs.Setup(svc, s.outputs, s.log); err != nil {
			return nil, err
		}
		files[1], files[2] = fdOr(wiring.Stdout, 1), fdOr(wiring.Stderr, 2)
	}
	var stderrR, stderrW *os.File
	if o.Check && o.CheckStderr != nil {
		if stderrR, stderrW, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("check's stderr: %w", err)
		}
		files[2] = stderrW.Fd()
	}

	sys := &syscall.SysProcAttr{Credential: id.Credential()}
	setDeathSignal(sys)
	if o.Foreground {
		sys.Setpgid, sys.Foreground, sys.Ctty = true, true, 0
	} else {
		sys.Setsid = true
	}
	prog, args := path, argv
	var group *cgroup.Group
	if !o.Check && s.cgroups != nil {
		group, err = s.group(svc)
		if err != nil {
			wiring.Abort()
			return nil, err
		}
		prog, args = group.Prepare(sys, path, argv)
	}
	p := &process{sys: s, name: svc.Name, group: group, memLimit: svc.Resource.Memory, wiring: wiring, termSig: svc.Termination.Signal}
	if group != nil {
		p.oomBefore = group.OOMKills()
	}
	if s.beforeFork != nil {
		s.beforeFork()
		s.beforeFork = nil
	}
	pid, err := syscall.ForkExec(prog, args, &syscall.ProcAttr{Dir: dir, Env: env, Files: files, Sys: sys})
	if stderrW != nil {
		stderrW.Close() // the child has its own copy
		if err != nil {
			stderrR.Close()
		} else {
			go firstLine(stderrR, o.CheckStderr)
		}
	}
	if err != nil {
		if wiring != nil {
			wiring.Abort()
		}
		if cerr := group.StartError(err); cerr != nil {
			// The cgroup went away under horust: the next start makes a
			// new one.
			s.Release(svc)
			return nil, cerr
		}
		return nil, startError(err, path, dir, id)
	}
	p.pid = pid
	if wiring != nil {
		wiring.Started(o.Drained)
	} else if o.Drained != nil {
		o.Drained()
	}
	return p, nil
}

// executableDir is the directory of horust's executable, "" when unknown.
func executableDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Dir(exe)
}

// lookPath finds the program name (see LookPath); one of horust's own
// programs (own) is looked for beside horust's executable first.
func (s *System) lookPath(name string, own bool) (string, error) {
	if !own {
		return LookPath(name, s.path)
	}
	dir := s.selfDir()
	if dir != "" {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	p, err := LookPath(name, s.path)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%s is neither beside horust (in %s) nor in PATH (%s): install it beside horust", name, cmp.Or(dir, "a directory horust cannot tell"), cmp.Or(s.path, DefaultPath))
	}
	return p, err
}

// maxCheckStderr is how much of a check's standard error is kept.
const maxCheckStderr = 1024

// firstLine reads r to its end (so that the check never blocks on a full
// pipe), closes it, and calls fn with the first line of what came, at most
// maxCheckStderr bytes, without surrounding spaces.
func firstLine(r *os.File, fn func(string)) {
	buf := make([]byte, maxCheckStderr)
	n, _ := io.ReadFull(r, buf)
	_, _ = io.Copy(io.Discard, r)
	r.Close()
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	fn(strings.TrimSpace(line))
}

// group returns the service's cgroup, creating it (and applying its
// limits) on its first start. A limit that cannot be applied fails the start
// unless --ignore-resource-errors, which makes it a warning.
func (s *System) group(svc *config.Service) (*cgroup.Group, error) {
	if g, ok := s.groups[svc.Name]; ok {
		return g, nil
	}
	g, err := s.cgroups.Service(svc.Name, svc.Resource)
	if err != nil {
		if g == nil {
			return nil, fmt.Errorf("resource limits: %w", err)
		}
		s.log.Warn("starting without some resource limits (--ignore-resource-errors)", "service", svc.Name, "err", err)
	}
	s.groups[svc.Name] = g
	return g, nil
}

// Release implements OS: the cgroup of a finished service is removed.
func (s *System) Release(svc *config.Service) {
	g, ok := s.groups[svc.Name]
	if !ok {
		return
	}
	delete(s.groups, svc.Name)
	if err := g.Remove(); err != nil {
		s.log.Error("cannot remove the service's cgroup", "service", svc.Name, "err", err)
	}
}

// Reap implements OS.
func (s *System) Reap() (int, syscall.WaitStatus, bool) { return Reap() }

// Close releases what the System holds: every cgroup it made and their
// parents.
func (s *System) Close() error {
	s.devNull.Close()
	if s.cgroups == nil {
		return nil
	}
	return s.cgroups.Close()
}

func fdOr(f *os.File, def uintptr) uintptr {
	if f == nil {
		return def
	}
	return f.Fd()
}

// startError explains a failed fork/exec: the child reports only an errno,
// so say what it most likely was about.
func startError(err error, path, dir string, id Identity) error {
	switch {
	case errors.Is(err, unix.EPERM) && id.Switch:
		return fmt.Errorf("start %s as uid %d: %w (only root can switch users)", path, id.UID, err)
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("start %s: %w (is it executable, and the working directory %q reachable?)", path, err, dir)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("start %s: %w", path, err)
	}
	return fmt.Errorf("start %s: %w", path, err)
}

// process is one run started by System.
type process struct {
	sys       *System
	name      string
	pid       int
	group     *cgroup.Group
	oomBefore uint64
	memLimit  uint64
	wiring    *logs.Wiring // nil for a health-check command
	termSig   syscall.Signal
}

// WhenOutputIdle implements Process.
func (p *process) WhenOutputIdle(fn func()) bool {
	return p.wiring != nil && p.wiring.WhenIdle(fn)
}

func (p *process) Pid() int { return p.pid }

// Signal implements Process: every process of the run gets sig once —
// through the cgroup when it holds the service (it holds the process group
// too, and a daemon that left the group), else through the process group.
// When the cgroup cannot be reached (its files gone, or an error), the
// process group gets sig instead: that needs no file descriptor, so a stop
// reaches the service even when horust is out of them.
func (p *process) Signal(sig syscall.Signal) error {
	if sig == p.termSig && sig != syscall.SIGCONT {
		// A stopped process keeps a signal it handles pending: SIGCONT
		// after the termination signal (as systemd sends) lets a
		// SIGSTOPped service stop gracefully within its wait.
		defer func() { _ = p.Signal(syscall.SIGCONT) }()
	}
	if p.group == nil || !p.group.Tracks() {
		return SignalGroup(p.pid, sig)
	}
	var err error
	if sig == syscall.SIGKILL {
		err = p.group.Kill()
	} else {
		err = p.group.Signal(sig)
	}
	if err == nil {
		return nil
	}
	if gerr := SignalGroup(p.pid, sig); gerr != nil {
		return errors.Join(err, gerr)
	}
	p.sys.log.Warn("signalled the service's process group instead of its cgroup", "service", p.name, "signal", sig.String(), "err", err)
	return nil
}

// Exited implements Process: it names an OOM kill. What the run left
// behind is not touched here: the loop stops it like the service itself
// (termination signal, SIGKILL after wait), see Alive.
func (p *process) Exited(ws syscall.WaitStatus) string {
	if p.group != nil && ws.Signaled() && ws.Signal() == syscall.SIGKILL && p.group.OOMKills() > p.oomBefore {
		return cgroup.OOMReason(p.memLimit)
	}
	return ""
}

// Alive implements Process: whether any process of the run is left, in its
// cgroup when that holds the service, else in its process group.
func (p *process) Alive() bool {
	if p.group != nil && p.group.Tracks() {
		busy, err := p.group.Populated()
		return err == nil && busy
	}
	err := unix.Kill(-p.pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
