package cgroup

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// ExecArg is os.Args[1] of the re-exec step (see MaybeExec).
const ExecArg = "__horust_cgroup_exec"

// selfExe is what the supervisor forks for the re-exec step: horust itself,
// even when its file was replaced or removed since it started.
const selfExe = "/proc/self/exe"

func init() {
	// The parent-death signal belongs to a thread: after the fork only the
	// main thread has it, and exec keeps the signal of the thread that
	// calls it. A goroutine that comes back from a slow system call (a v1
	// cgroup.procs write can take milliseconds) may continue on another
	// thread; exec from there would start the service without it, and the
	// service would outlive a killed horust. LockOSThread in an init keeps
	// main, and so the step, on the main thread.
	if isExecStep() {
		runtime.LockOSThread()
	}
}

// isExecStep reports whether this process is the re-exec step.
func isExecStep() bool { return len(os.Args) > 1 && os.Args[1] == ExecArg }

// MaybeExec is called first thing in horust's main. When os.Args[1] is
// ExecArg, this process is the re-exec step of a service start: it writes
// its pid to each cgroup.procs named in its arguments (the v1 ones, and the
// v2 one where clone3 cannot place a child), drops privileges if asked
// (setgroups, setgid, setuid, in that order), and executes the
// service's program. It never returns then: on failure it prints one line
// to stderr and exits 127. Otherwise it returns at once.
func MaybeExec() {
	if !isExecStep() {
		return
	}
	err := runExecStep(os.Args[2:])
	fmt.Fprintf(os.Stderr, "horust: start in cgroup: %v\n", err)
	os.Exit(127)
}

// execStep is the parsed argv of the re-exec step.
type execStep struct {
	procs     []string
	cred      *syscall.Credential
	setGroups bool
	path      string
	argv      []string
}

// execArgv builds the re-exec step's argv:
//
//	horust __horust_cgroup_exec [procs=FILE]... [uid=N gid=N [groups=N,N...]] -- PATH ARGV...
//
// "groups=" is present (maybe empty) unless cred.NoSetGroups.
func execArgv(procs []string, path string, argv []string, cred *syscall.Credential) (string, []string) {
	args := []string{"horust", ExecArg}
	for _, p := range procs {
		args = append(args, "procs="+p)
	}
	if cred != nil {
		args = append(args, "uid="+strconv.FormatUint(uint64(cred.Uid), 10), "gid="+strconv.FormatUint(uint64(cred.Gid), 10))
		if !cred.NoSetGroups {
			gs := make([]string, len(cred.Groups))
			for i, g := range cred.Groups {
				gs[i] = strconv.FormatUint(uint64(g), 10)
			}
			args = append(args, "groups="+strings.Join(gs, ","))
		}
	}
	if len(argv) == 0 {
		argv = []string{path}
	}
	args = append(args, "--", path)
	return selfExe, append(args, argv...)
}

// parseExecStep reads the arguments after ExecArg.
func parseExecStep(args []string) (*execStep, error) {
	s := &execStep{}
	var uid, gid *uint32
	for i, a := range args {
		if a == "--" {
			rest := args[i+1:]
			if len(rest) < 2 {
				return nil, errors.New("missing program or argv")
			}
			s.path, s.argv = rest[0], rest[1:]
			if (uid == nil) != (gid == nil) {
				return nil, errors.New("uid and gid go together")
			}
			if uid != nil {
				s.cred.Uid, s.cred.Gid = *uid, *gid
			} else if s.setGroups {
				return nil, errors.New("groups without uid and gid")
			}
			return s, nil
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad argument %q", a)
		}
		if s.cred == nil && (k == "uid" || k == "gid" || k == "groups") {
			s.cred = &syscall.Credential{NoSetGroups: true}
		}
		switch k {
		case "procs":
			s.procs = append(s.procs, v)
		case "uid", "gid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad %s %q", k, v)
			}
			id := uint32(n)
			if k == "uid" {
				uid = &id
			} else {
				gid = &id
			}
		case "groups":
			s.setGroups, s.cred.NoSetGroups = true, false
			s.cred.Groups = []uint32{}
			for f := range strings.SplitSeq(v, ",") {
				if f == "" {
					continue
				}
				n, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("bad group %q", f)
				}
				s.cred.Groups = append(s.cred.Groups, uint32(n))
			}
		default:
			return nil, fmt.Errorf("bad argument %q", a)
		}
	}
	return nil, errors.New("missing --")
}

// runExecStep does the step; it returns only on failure.
func runExecStep(args []string) error {
	s, err := parseExecStep(args)
	if err != nil {
		return err
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, p := range s.procs {
		// Raw syscalls: no poller, no extra descriptor left open.
		fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("join %s: %w", p, err)
		}
		_, err = syscall.Write(fd, pid)
		_ = syscall.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s: %w", p, err)
		}
	}
	if c := s.cred; c != nil {
		// A change of uid clears the parent-death signal; keep it.
		deathSig := deathSignal()
		parent := syscall.Getppid()
		if !c.NoSetGroups {
			groups := make([]int, len(c.Groups))
			for i, g := range c.Groups {
				groups[i] = int(g)
			}
			if err := syscall.Setgroups(groups); err != nil {
				return fmt.Errorf("setgroups: %w", err)
			}
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			return fmt.Errorf("setgid %d: %w", c.Gid, err)
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			return fmt.Errorf("setuid %d: %w", c.Uid, err)
		}
		if deathSig != 0 {
			setDeathSignal(deathSig)
			// The parent may have died while the signal was cleared: then
			// nobody sent it, and the service must not start orphaned.
			if syscall.Getppid() != parent {
				_ = syscall.Kill(syscall.Getpid(), syscall.Signal(deathSig))
				return fmt.Errorf("the supervisor exited before the start (parent-death signal %d)", deathSig)
			}
		}
	}
	err = syscall.Exec(s.path, s.argv, os.Environ())
	return fmt.Errorf("exec %s: %w", s.path, err)
}
