package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// svc is a service in a neutral form, rendered into each supervisor's
// configuration by render.
type svc struct {
	name    string
	argv    []string // run directly, or
	sh      string   // run as /bin/sh -c sh (no quotes, backslashes, $ or % in it)
	restart bool     // restart when it exits (else run once)
	after   string   // start after this service (horust only)
	// output, for the log scenario: stdout is a file path ("" = the
	// supervisor's own stdout), rotate a chunk size in bytes, prefix asks
	// for "<name> | " lines on horust's stdout.
	stdout string
	rotate int64
	prefix bool
	logDir string // for s6-log / svlogd: the directory they write
}

func (s svc) cmdline() string {
	if s.sh != "" {
		return `/bin/sh -c "` + s.sh + `"`
	}
	return strings.Join(s.argv, " ")
}

func (s svc) script() string {
	if s.sh != "" {
		return "#!/bin/sh\n" + s.sh + "\n"
	}
	return "#!/bin/sh\nexec " + strings.Join(s.argv, " ") + "\n"
}

// setup is a rendered configuration: how to start the supervisor, how to
// stop it, and the files written (for the report).
type setup struct {
	argv  []string
	stop  syscall.Signal
	depth int // levels between the supervisor and a service's process (restart analysis)
	files []string
}

// multi reports whether sup runs several services from a configuration.
func multi(sup string) bool {
	switch sup {
	case "horust", "horust-nocg", "s6", "runit", "supervisord":
		return true
	}
	return false
}

func isHorust(sup string) bool { return sup == "horust" || sup == "horust-nocg" }

func writeFile(st *setup, path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	st.files = append(st.files, path)
	return os.WriteFile(path, []byte(content), mode)
}

// horustArgs are the flags every horust run gets.
func horustArgs(sup, dir string) []string {
	a := []string{"--uds-folder-path", filepath.Join(dir, "uds")}
	if sup == "horust-nocg" {
		a = append(a, "--no-cgroups")
	}
	return a
}

// render writes sup's configuration for svcs under dir.
func render(sup string, svcs []svc, dir string, k *knobs) (*setup, error) {
	st := &setup{stop: syscall.SIGTERM, depth: 1}
	if !multi(sup) && len(svcs) != 1 {
		return nil, fmt.Errorf("%s runs one command, not %d", sup, len(svcs))
	}
	one := func() []string {
		if svcs[0].sh != "" {
			return []string{"/bin/sh", "-c", svcs[0].sh}
		}
		return svcs[0].argv
	}
	var err error
	switch sup {
	case "floor":
		st.argv = one()
	case "tini":
		st.argv = append([]string{"tini", "--"}, one()...)
	case "dumb-init":
		st.argv = append([]string{"dumb-init"}, one()...)
	case "horust", "horust-nocg":
		if err = os.MkdirAll(filepath.Join(dir, "uds"), 0o755); err != nil {
			return nil, err
		}
		for _, s := range svcs {
			var b strings.Builder
			fmt.Fprintf(&b, "command = '%s'\n", s.cmdline())
			if s.after != "" {
				fmt.Fprintf(&b, "start-after = [\"%s.toml\"]\n", s.after)
			}
			if s.stdout != "" {
				fmt.Fprintf(&b, "stdout = \"%s\"\n", s.stdout)
			}
			if s.rotate > 0 {
				fmt.Fprintf(&b, "stdout-rotate-size = \"%d MB\"\n", s.rotate>>20)
			}
			if s.prefix {
				b.WriteString("stdout-prefix = true\n")
			}
			strategy := "never"
			if s.restart {
				strategy = "always"
			}
			// min-uptime = "0s": the raw restart rate, without horust's
			// crash-loop guard (peers have none either).
			fmt.Fprintf(&b, "\n[restart]\nstrategy = \"%s\"\nbackoff = \"0s\"\nattempts = 0\nmin-uptime = \"0s\"\n\n[termination]\nsignal = \"TERM\"\nwait = \"5s\"\n", strategy)
			if err = writeFile(st, filepath.Join(dir, "services", s.name+".toml"), b.String(), 0o644); err != nil {
				return nil, err
			}
		}
		st.argv = append([]string{k.horust, "--services-path", filepath.Join(dir, "services")}, horustArgs(sup, dir)...)
	case "s6":
		// One service directory each; s6-supervise re-runs ./run, at most
		// once a second. ./finish exiting 125 means: do not restart.
		for _, s := range svcs {
			sd := filepath.Join(dir, "scan", s.name)
			if err = writeFile(st, filepath.Join(sd, "run"), s.script(), 0o755); err != nil {
				return nil, err
			}
			if !s.restart {
				if err = writeFile(st, filepath.Join(sd, "finish"), "#!/bin/sh\nexit 125\n", 0o755); err != nil {
					return nil, err
				}
			}
			if s.logDir != "" {
				run := fmt.Sprintf("#!/bin/sh\nexec s6-log -b n1000 s%d %s\n", s.rotate, s.logDir)
				if err = writeFile(st, filepath.Join(sd, "log", "run"), run, 0o755); err != nil {
					return nil, err
				}
			}
		}
		st.argv = []string{"s6-svscan", "-c", fmt.Sprint(max(1000, 2*len(svcs)+10)), filepath.Join(dir, "scan")}
		st.depth = 2
	case "runit":
		// runsvdir starts a runsv per directory; runsv re-runs ./run, at
		// most once a second. SIGTERM makes runsvdir exit and leave every
		// runsv and service running; SIGHUP stops them first.
		for _, s := range svcs {
			sd := filepath.Join(dir, "sv", s.name)
			if err = writeFile(st, filepath.Join(sd, "run"), s.script(), 0o755); err != nil {
				return nil, err
			}
			if !s.restart {
				if err = writeFile(st, filepath.Join(sd, "finish"), "#!/bin/sh\nexec sv down .\n", 0o755); err != nil {
					return nil, err
				}
			}
			if s.logDir != "" {
				if err = writeFile(st, filepath.Join(sd, "log", "run"), "#!/bin/sh\nexec svlogd "+s.logDir+"\n", 0o755); err != nil {
					return nil, err
				}
				if err = writeFile(st, filepath.Join(s.logDir, "config"), fmt.Sprintf("s%d\nn1000\n", s.rotate), 0o644); err != nil {
					return nil, err
				}
			}
		}
		st.argv = []string{"runsvdir", filepath.Join(dir, "sv")}
		st.stop = syscall.SIGHUP
		st.depth = 2
	case "supervisord":
		var b strings.Builder
		fmt.Fprintf(&b, "[supervisord]\nnodaemon=true\nlogfile=%[1]s/supervisord.log\npidfile=%[1]s/supervisord.pid\nchildlogdir=%[1]s\nminfds=%d\n", dir, 4*len(svcs)+1024)
		for _, s := range svcs {
			out, maxBytes := "/dev/stdout", int64(0)
			if s.stdout != "" {
				out, maxBytes = s.stdout, s.rotate
			}
			fmt.Fprintf(&b, "\n[program:%s]\ncommand=%s\nautostart=true\nautorestart=%t\nstartsecs=0\nstartretries=3\nstopsignal=TERM\nstopwaitsecs=5\nstdout_logfile=%s\nstdout_logfile_maxbytes=%d\nstdout_logfile_backups=1000\nredirect_stderr=true\n",
				s.name, s.cmdline(), s.restart, out, maxBytes)
		}
		if err = writeFile(st, filepath.Join(dir, "supervisord.conf"), b.String(), 0o644); err != nil {
			return nil, err
		}
		st.argv = []string{"supervisord", "-n", "-c", filepath.Join(dir, "supervisord.conf")}
	default:
		return nil, fmt.Errorf("unknown supervisor %q", sup)
	}
	// Back-date everything, as if baked into an image: runsvdir waits about
	// a second before its first scan of a directory changed this second.
	old := time.Now().Add(-10 * time.Second)
	_ = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	sort.Strings(st.files)
	return st, nil
}

// describe is the configuration as the report shows it: argv and files,
// with the work directory written as $WORK.
func (st *setup) describe(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "argv: %s\nstop signal: %s\n", strings.Join(st.argv, " "), sigName(st.stop))
	for _, f := range st.files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", f, data)
	}
	return strings.ReplaceAll(b.String(), dir, "$WORK")
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGHUP:
		return "HUP"
	}
	return fmt.Sprint(int(s))
}
