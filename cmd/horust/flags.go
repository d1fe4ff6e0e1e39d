package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/horust-go/horust/internal/control"
)

const (
	defaultConfigPath   = "/etc/horust/horust.toml"
	defaultServicesPath = "/etc/horust/services"
	defaultUDSFolder    = "/var/run/horust"
)

// cli is horust's command line.
type cli struct {
	configPath                     string
	servicesPaths                  []string
	udsFolder                      string
	udsFolderSet                   bool
	udsMode                        os.FileMode
	udsGroup                       string
	unsuccessfulExitFinishedFailed bool
	sampleService                  bool
	validate                       bool
	version                        bool
	logPrefix                      bool
	ignoreResourceErrors           bool
	noCgroups                      bool
	httpAddr                       string
	watch                          bool
	command                        []string // after --
}

// errUsage is a usage error: exit 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

type pathsFlag struct {
	paths *[]string
	set   bool
}

func (p *pathsFlag) String() string { return "" }
func (p *pathsFlag) Set(v string) error {
	if !p.set {
		*p.paths, p.set = nil, true
	}
	*p.paths = append(*p.paths, v)
	return nil
}

type modeFlag struct{ mode *os.FileMode }

func (m modeFlag) String() string { return "" }
func (m modeFlag) Set(v string) error {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("want an octal mode such as 0600 or 0660")
	}
	*m.mode = os.FileMode(n)
	return nil
}

const usageText = `horust: a supervisor and init system

Usage:
  horust [OPTIONS]                 run the services in --services-path
  horust [OPTIONS] [--] CMD [ARGS] run one command as an init (a tini replacement):
                                   signals are passed on, zombies reaped, and horust
                                   exits with the command's exit code; the options end
                                   at CMD (or at --), so ARGS are CMD's own

Options:
  --config-path PATH           global configuration file (default /etc/horust/horust.toml;
                               a missing file is fine)
  --services-path PATH         a directory of *.toml service files, or one file; repeat
                               it for several (default /etc/horust/services)
  --uds-folder-path PATH       folder of the control socket horust-<pid>.sock
                               (default /var/run/horust; when that cannot be created,
                               $XDG_RUNTIME_DIR/horust or /tmp/horust-<uid>)
  --uds-mode MODE              permissions of the control socket (default 0600)
  --uds-group GROUP            group of the control socket (name or gid)
  --unsuccessful-exit-finished-failed
                               exit with 101 when a service ended FinishedFailed
  --http-addr HOST:PORT        serve /healthz, /readyz and /metrics (read-only) there
  --log-prefix                 prefix every line services write to horust's stdout or
                               stderr with "<service name> | "
  --ignore-resource-errors     start services whose resource limits cannot be applied
                               (with a warning) instead of failing them
  --no-cgroups                 do not give services cgroups (the process group is then
                               the unit that termination reaches)
  --watch                      reload the configuration by itself when a service file or
                               horust.toml changes (settled for 500ms; Kubernetes
                               ConfigMap updates are seen)
  --validate                   check the configuration, print the start order, exit;
                               warns on stderr about starts that would fail here
                               (a program not on PATH, a missing folder or user)
  --sample-service             print a sample service file with every option, exit
  -V, --version                print the version, the commit and the Go version, exit
  -h, --help                   print this help, exit

Environment:
  HORUST_LOG          horust's own log level: error (default), warn, info, debug, trace;
                      the original's filter form (horust=debug) works too
  HORUST_LOG_FORMAT   text (default) or json
  HORUST_UDS_FOLDER_PATH
                      the socket folder when --uds-folder-path is not given
                      (horustctl reads it too)

Reload: SIGHUP, horustctl reload (and --watch) load the service files and horust.toml
again from the same paths; if anything is wrong nothing changes and every problem is
logged. Added services start, removed ones stop, changed ones restart with their new
definition, unchanged ones are not touched. In one-shot mode SIGHUP is passed on.

Exit codes: 0 when every service has finished, also when some ended FinishedFailed
(101 instead with --unsuccessful-exit-finished-failed or its key in horust.toml);
1 configuration or start-up error; 2 usage error; in one-shot mode, the command's own
exit code (128+N when it died of signal N).
`

// parseArgs parses horust's arguments (without the program name).
func parseArgs(args []string, stderr io.Writer) (*cli, error) {
	c := &cli{configPath: defaultConfigPath, servicesPaths: []string{defaultServicesPath}, udsFolder: defaultUDSFolder, udsMode: 0o600}
	if len(args) > 1 && args[0] == "--" {
		// "horust -- CMD", as tini is run: no option to parse, so no flag
		// set is built (it is a measurable part of a one-shot start).
		c.command = args[1:]
	} else if err := parseOptions(c, args); err != nil {
		return nil, err
	}
	if dir := os.Getenv(control.FolderEnv); dir != "" && !c.udsFolderSet {
		// As if given: no fallback folder when it cannot be used.
		c.udsFolder, c.udsFolderSet = dir, true
	}
	return c, nil
}

// parseOptions parses horust's options into c; the options end at the
// first argument that is not one, or at "--": the rest is the command of
// one-shot mode, its own flags included.
func parseOptions(c *cli, args []string) error {
	fs := flag.NewFlagSet("horust", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.configPath, "config-path", c.configPath, "")
	fs.Var(&pathsFlag{paths: &c.servicesPaths}, "services-path", "")
	fs.Func("uds-folder-path", "", func(v string) error { c.udsFolder, c.udsFolderSet = v, true; return nil })
	fs.Var(modeFlag{&c.udsMode}, "uds-mode", "")
	fs.StringVar(&c.udsGroup, "uds-group", "", "")
	fs.BoolVar(&c.unsuccessfulExitFinishedFailed, "unsuccessful-exit-finished-failed", false, "")
	fs.BoolVar(&c.sampleService, "sample-service", false, "")
	fs.BoolVar(&c.validate, "validate", false, "")
	fs.BoolVar(&c.version, "version", false, "")
	fs.BoolVar(&c.version, "V", false, "")
	fs.BoolVar(&c.logPrefix, "log-prefix", false, "")
	fs.BoolVar(&c.ignoreResourceErrors, "ignore-resource-errors", false, "")
	fs.BoolVar(&c.noCgroups, "no-cgroups", false, "")
	fs.StringVar(&c.httpAddr, "http-addr", "", "")
	fs.BoolVar(&c.watch, "watch", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage{gnuDashes(err.Error())}
	}
	c.command = fs.Args()
	if len(c.command) == 0 && len(args) > 0 && args[len(args)-1] == "--" {
		return errUsage{"-- needs a command after it"}
	}
	return nil
}

// gnuDashes writes the long options in the flag package's error messages
// as --help shows them: "flag provided but not defined: --nope". An option
// is a dash after a blank or the start, then its long name. (No regexp: it
// would cost every start its compilation; docs/design.md, one-shot
// start-up.)
func gnuDashes(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if msg[i] == '-' && (i == 0 || msg[i-1] == ' ') && longName(msg[i+1:]) {
			b.WriteByte('-')
		}
		b.WriteByte(msg[i])
	}
	return b.String()
}

// longName reports whether s starts with an option's long name: a
// lower-case letter, then at least one more letter or dash.
func longName(s string) bool {
	n := 0
	for n < len(s) && ('a' <= s[n] && s[n] <= 'z' || n > 0 && s[n] == '-') {
		n++
	}
	return n >= 2
}
