package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeDir writes files (name -> content) into a new directory; a name may
// contain a sub-directory.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// loadDir loads dir with an environment of vars and returns the services or
// the problems.
func loadDir(t *testing.T, dir string, vars map[string]string) ([]*Service, Problems) {
	t.Helper()
	svcs, err := Load([]string{dir}, Options{LookupEnv: env(vars), Cwd: "/srv"})
	if err == nil {
		return svcs, nil
	}
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Load: %v is not Problems", err)
	}
	if svcs != nil {
		t.Fatalf("Load returned services and problems")
	}
	return nil, probs
}

func names(svcs []*Service) []string {
	out := make([]string, len(svcs))
	for i, s := range svcs {
		out[i] = s.Name
	}
	return out
}

func TestDefault(t *testing.T) {
	want := &Service{
		WorkingDirectory: "/srv",
		Stdout:           "STDOUT",
		Stderr:           "STDERR",
		Restart:          Restart{Strategy: RestartNever, MinUptime: 10 * time.Second, MaxBackoff: 10 * time.Second},
		Healthiness:      Healthiness{MaxFailed: 3, Interval: time.Second, Timeout: time.Second},
		Failure:          Failure{SuccessfulExitCodes: []int{0}, Strategy: FailureIgnore},
		Termination:      Termination{Signal: syscall.SIGTERM, Wait: 5 * time.Second},
	}
	if got := Default("/srv"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Default = %+v\nwant %+v", got, want)
	}
}

func TestLoadMinimalServiceGetsDefaults(t *testing.T) {
	dir := writeDir(t, map[string]string{"web.toml": `command = "/bin/true"`})
	svcs, probs := loadDir(t, dir, nil)
	if probs != nil {
		t.Fatal(probs)
	}
	want := Default("/srv")
	want.Name = "web.toml"
	want.File = filepath.Join(dir, "web.toml")
	want.Command = "/bin/true"
	if len(svcs) != 1 || !reflect.DeepEqual(svcs[0], want) {
		t.Fatalf("got %+v\nwant %+v", svcs[0], want)
	}
}

func TestLoadEveryKey(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"db.toml": `command = "db"`,
		"all.toml": `
name = "everything"
command = "/bin/sh -c 'echo $$HOME'"
user = 1000
working-directory = "rel/dir"
stdout = "/var/log/out.log"
stderr = "STDOUT"
stdout-rotate-size = "110 MiB"
stdout-rotate-keep = 3
stderr-rotate-size = "1.5KB"
stderr-rotate-keep = 2
stdout-should-append-timestamp-to-filename = true
stdout-prefix = true
stdout-timestamps = true
start-delay = "1m 30s"
start-after = ["db.toml"]
shutdown-after = ["db.toml"]
signal-rewrite = "TERM:INT"
oneshot = true

[restart]
strategy = "on-failure"
backoff = "500ms"
attempts = 4
min-uptime = "0s"
max-backoff = "1m"

[healthiness]
http-endpoint = "https://localhost:8443/health"
tcp-endpoint = "[::1]:5432"
file-path = "/run/up"
command = "test -f /run/up"
max-failed = -1
interval = "2s"
timeout = "300ms"
start-timeout = "1min"
notify = true

[failure]
successful-exit-code = [0, 1, 0x10, -137]
strategy = "kill-dependents"

[environment]
keep-env = true
re-export = ["PATH", "LANG"]
[environment.additional]
A = "1"
"B C" = ""

[termination]
signal = "sigint"
wait = "250ms"
die-if-failed = ["db.toml"]

[resource]
cpu-percent = 200
memory = "100 MB"
pids-max = 1_000
`,
	})
	svcs, probs := loadDir(t, dir, nil)
	if probs != nil {
		t.Fatal(probs)
	}
	got := svcs[1]
	want := &Service{
		Name: "everything", File: filepath.Join(dir, "all.toml"),
		Command:          "/bin/sh -c 'echo $HOME'",
		User:             User{Set: true, UID: 1000},
		WorkingDirectory: "rel/dir",
		Stdout:           "/var/log/out.log", Stderr: "STDOUT",
		StdoutRotateSize: 115343360, StdoutRotateKeep: 3, StderrRotateSize: 1500, StderrRotateKeep: 2,
		AppendTimestamp: true, Prefix: true, Timestamps: true,
		StartDelay: 90 * time.Second, StartAfter: []string{"db.toml"}, ShutdownAfter: []string{"db.toml"},
		SignalRewrite: "TERM:INT", Oneshot: true,
		Restart: Restart{Strategy: RestartOnFailure, Backoff: 500 * time.Millisecond, Attempts: 4, MinUptime: 0, MaxBackoff: time.Minute},
		Healthiness: Healthiness{HTTPEndpoint: "https://localhost:8443/health", TCPEndpoint: "[::1]:5432",
			FilePath: "/run/up", Command: "test -f /run/up", MaxFailed: -1, Interval: 2 * time.Second,
			Timeout: 300 * time.Millisecond, StartTimeout: time.Minute, Notify: true},
		Failure:     Failure{SuccessfulExitCodes: []int{0, 1, 16, -137}, Strategy: FailureKillDependents},
		Environment: Environment{KeepEnv: true, ReExport: []string{"PATH", "LANG"}, Additional: map[string]string{"A": "1", "B C": ""}},
		Termination: Termination{Signal: syscall.SIGINT, Wait: 250 * time.Millisecond, DieIfFailed: []string{"db.toml"}},
		Resource:    Resource{CPU: 2, Memory: 100_000_000, PidsMax: 1000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadAcceptedForms(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(*Service) bool
	}{
		{"name defaults to the file name with .toml", `command = "x"`,
			func(s *Service) bool { return s.Name == "svc.toml" }},
		{"an empty name means the file name", "name = \"\"\ncommand = \"x\"",
			func(s *Service) bool { return s.Name == "svc.toml" }},
		{"a string user is always a name", "command = \"x\"\nuser = \"1000\"",
			func(s *Service) bool { return s.User == User{Set: true, IsName: true, Name: "1000"} }},
		{"the largest uid", "command = \"x\"\nuser = 4294967295",
			func(s *Service) bool { return s.User == User{Set: true, UID: 4294967295} }},
		{"failure without strategy is ignore", "command = \"x\"\n[failure]\nsuccessful-exit-code = [2]",
			func(s *Service) bool {
				return s.Failure.Strategy == FailureIgnore && reflect.DeepEqual(s.Failure.SuccessfulExitCodes, []int{2})
			}},
		{"resource-limit with cpu as a fraction", "command = \"x\"\n[resource-limit]\ncpu = 0.25",
			func(s *Service) bool { return s.Resource.CPU == 0.25 }},
		{"cpu as an integer", "command = \"x\"\n[resource-limit]\ncpu = 2",
			func(s *Service) bool { return s.Resource.CPU == 2 }},
		{"cpu-percent", "command = \"x\"\n[resource]\ncpu-percent = 50",
			func(s *Service) bool { return s.Resource.CPU == 0.5 }},
		{"the documented underscore timestamp key", "command = \"x\"\nstdout_should_append_timestamp_to_filename = true",
			func(s *Service) bool { return s.AppendTimestamp }},
		{"rotation with a STDOUT target is left to the output package", "command = \"x\"\nstdout-rotate-size = \"1 KB\"",
			func(s *Service) bool { return s.Stdout == "STDOUT" && s.StdoutRotateSize == 1000 }},
		{"dotted keys", "command = \"x\"\nrestart.strategy = \"always\"",
			func(s *Service) bool { return s.Restart.Strategy == RestartAlways }},
		{"inline tables", "command = \"x\"\nrestart = { strategy = \"on-failure\", attempts = 2 }",
			func(s *Service) bool { return s.Restart.Strategy == RestartOnFailure && s.Restart.Attempts == 2 }},
		{"KILL as termination signal", "command = \"x\"\n[termination]\nsignal = \"KILL\"",
			func(s *Service) bool { return s.Termination.Signal == syscall.SIGKILL }},
		{"negative max-failed", "command = \"x\"\n[healthiness]\nmax-failed = -5",
			func(s *Service) bool { return s.Healthiness.MaxFailed == -5 }},
		{"start-timeout of zero means none", "command = \"x\"\n[healthiness]\nstart-timeout = \"0s\"",
			func(s *Service) bool { return s.Healthiness.StartTimeout == 0 }},
		{"templating with a default", "command = \"${NOPROG:-/bin/true}\"",
			func(s *Service) bool { return s.Command == "/bin/true" }},
		{"templating from the environment", "command = \"$PROG --port ${PORT}\"",
			func(s *Service) bool { return s.Command == "/usr/bin/app --port 80" }},
		{"templating reaches comments", "# $PROG\ncommand = \"x\"",
			func(s *Service) bool { return s.Command == "x" }},
		{"CRLF line ends", "command = \"x\"\r\n[restart]\r\nattempts = 1\r\n",
			func(s *Service) bool { return s.Restart.Attempts == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"svc.toml": tt.file})
			svcs, probs := loadDir(t, dir, map[string]string{"PROG": "/usr/bin/app", "PORT": "80"})
			if probs != nil {
				t.Fatal(probs)
			}
			if !tt.check(svcs[0]) {
				t.Fatalf("unexpected service %+v", svcs[0])
			}
		})
	}
}

// problemCase is one invalid configuration and the problem it must give.
type problemCase struct {
	name  string
	files map[string]string
	// want: the base name of the file, the line (0: none), the key and a
	// part of the message.
	file string
	line int
	key  string
	msg  string
}

func TestLoadProblems(t *testing.T) {
	svc := func(extra string) map[string]string {
		return map[string]string{"svc.toml": "command = \"/bin/true\"\n" + extra}
	}
	tests := []problemCase{
		{"unknown key with a suggestion", svc("comand = \"x\""), "svc.toml", 2, "comand", `unknown key "comand", did you mean "command"?`},
		{"unknown key with underscores", svc("start_delay = \"1s\""), "svc.toml", 2, "start_delay", `did you mean "start-delay"?`},
		{"unknown key far from any", svc("colour = \"red\""), "svc.toml", 2, "colour", `unknown key "colour"; ` + "`horust --sample-service`"},
		{"top-level key after a table header", svc("[restart]\nstrategy = \"always\"\nstart-after = [\"db\"]"), "svc.toml", 4, "restart.start-after", "move it above the first [table] header"},
		{"strategy at the top level", svc("strategy = \"always\""), "svc.toml", 2, "strategy", "it belongs under [restart] or [failure]"},
		{"table key at the top level", svc("backoff = \"1s\""), "svc.toml", 2, "backoff", "it belongs under [restart]"},
		{"table key in another table", svc("[restart]\nwait = \"1s\""), "svc.toml", 3, "restart.wait", "it belongs under [termination], not [restart]"},
		{"unknown table", svc("[restarts]\nstrategy = \"always\""), "svc.toml", 2, "restarts", `unknown table "restarts", did you mean "restart"?`},
		{"unknown key in restart", svc("[restart]\nattempt = 1"), "svc.toml", 3, "restart.attempt", `did you mean "attempts"?`},
		{"unknown key in healthiness", svc("[healthiness]\nhttp = \"http://x\""), "svc.toml", 3, "healthiness.http", "unknown key"},
		{"unknown key in failure", svc("[failure]\nstrategy = \"ignore\"\ncodes = [1]"), "svc.toml", 4, "failure.codes", "unknown key"},
		{"unknown key in termination", svc("[termination]\nsig = \"TERM\""), "svc.toml", 3, "termination.sig", "unknown key"},
		{"unknown key in resource-limit", svc("[resource-limit]\nmem = \"1 MB\""), "svc.toml", 3, "resource-limit.mem", "unknown key"},
		{"unknown key in environment", svc("[environment]\nFOO = \"bar\""), "svc.toml", 3, "environment.FOO", "[environment.additional]"},
		{"duration as an integer", svc("start-delay = 2"), "svc.toml", 2, "start-delay", `must be a string holding a duration such as "5s"`},
		{"fractional duration", svc("[restart]\nbackoff = \"1.5s\""), "svc.toml", 3, "restart.backoff", `invalid duration "1.5s"`},
		{"duration without unit", svc("[termination]\nwait = \"10\""), "svc.toml", 3, "termination.wait", "time unit needed"},
		{"size without B", svc("stdout-rotate-size = \"100 M\""), "svc.toml", 2, "stdout-rotate-size", `unknown unit "M"`},
		{"size as an integer", svc("[resource-limit]\nmemory = 1000"), "svc.toml", 3, "resource-limit.memory", "must be a string holding a size"},
		{"unknown signal", svc("[termination]\nsignal = \"TERMINATE\""), "svc.toml", 3, "termination.signal", `unknown signal "TERMINATE"`},
		{"unknown restart strategy with a suggestion", svc("[restart]\nstrategy = \"onfailure\""), "svc.toml", 3, "restart.strategy", `did you mean "on-failure"?`},
		{"unknown failure strategy", svc("[failure]\nstrategy = \"kill-all\""), "svc.toml", 3, "failure.strategy", `unknown value "kill-all"`},
		{"negative attempts", svc("[restart]\nattempts = -1"), "svc.toml", 3, "restart.attempts", "out of range"},
		{"attempts as a string", svc("[restart]\nattempts = \"3\""), "svc.toml", 3, "restart.attempts", "must be an integer, not a string"},
		{"empty command", map[string]string{"svc.toml": "command = \"\""}, "svc.toml", 1, "command", "is empty"},
		{"blank command", map[string]string{"svc.toml": "\ncommand = \"  \\t \""}, "svc.toml", 2, "command", "is empty"},
		{"command with an unbalanced quote", map[string]string{"svc.toml": "command = \"sh -c 'echo\""}, "svc.toml", 1, "command", "unbalanced quote"},
		{"missing command", map[string]string{"svc.toml": "name = \"x\""}, "svc.toml", 0, "command", "missing"},
		{"health command with an unbalanced quote", svc("[healthiness]\ncommand = \"test \\\"x\""), "svc.toml", 3, "healthiness.command", "unbalanced quote"},
		{"empty health command", svc("[healthiness]\ncommand = \"\""), "svc.toml", 3, "healthiness.command", "is empty"},
		{"http endpoint with another scheme", svc("[healthiness]\nhttp-endpoint = \"ftp://host/x\""), "svc.toml", 3, "healthiness.http-endpoint", "must start with http:// or https://"},
		{"http endpoint without host", svc("[healthiness]\nhttp-endpoint = \"http:///health\""), "svc.toml", 3, "healthiness.http-endpoint", "has no host"},
		{"http endpoint that is no URL", svc("[healthiness]\nhttp-endpoint = \"localhost:8080/health\""), "svc.toml", 3, "healthiness.http-endpoint", "http://"},
		{"tcp endpoint without port", svc("[healthiness]\ntcp-endpoint = \"localhost\""), "svc.toml", 3, "healthiness.tcp-endpoint", "write host:port"},
		{"tcp endpoint with port 0", svc("[healthiness]\ntcp-endpoint = \"localhost:0\""), "svc.toml", 3, "healthiness.tcp-endpoint", "from 1 to 65535"},
		{"tcp endpoint with a named port", svc("[healthiness]\ntcp-endpoint = \"localhost:http\""), "svc.toml", 3, "healthiness.tcp-endpoint", "from 1 to 65535"},
		{"tcp endpoint without host", svc("[healthiness]\ntcp-endpoint = \":80\""), "svc.toml", 3, "healthiness.tcp-endpoint", "has no host"},
		{"zero interval", svc("[healthiness]\ninterval = \"0s\""), "svc.toml", 3, "healthiness.interval", "longer than 0s"},
		{"zero timeout", svc("[healthiness]\ntimeout = \"0ms\""), "svc.toml", 3, "healthiness.timeout", "longer than 0s"},
		{"negative timeout", svc("[healthiness]\ntimeout = \"-1s\""), "svc.toml", 3, "healthiness.timeout", "invalid duration"},
		{"empty file-path", svc("[healthiness]\nfile-path = \"\""), "svc.toml", 3, "healthiness.file-path", "must not be empty"},
		{"notify as a string", svc("[healthiness]\nnotify = \"yes\""), "svc.toml", 3, "healthiness.notify", "must be a boolean (true or false), not a string"},
		{"empty user", svc("user = \"\""), "svc.toml", 2, "user", "must not be empty"},
		{"negative uid", svc("user = -1"), "svc.toml", 2, "user", "out of range"},
		{"uid beyond 32 bits", svc("user = 4294967296"), "svc.toml", 2, "user", "out of range"},
		{"user as a boolean", svc("user = true"), "svc.toml", 2, "user", "must be a user name (string) or a uid (integer)"},
		{"empty stdout", svc("stdout = \"\""), "svc.toml", 2, "stdout", `use "STDOUT", "STDERR" or a file path`},
		{"empty working-directory", svc("working-directory = \"\""), "svc.toml", 2, "working-directory", "must not be empty"},
		{"negative rotate-keep", svc("stdout-rotate-keep = -1"), "svc.toml", 2, "stdout-rotate-keep", "out of range"},
		{"start-after as a string", svc("start-after = \"db\""), "svc.toml", 2, "start-after", "must be an array of strings"},
		{"start-after with an integer", svc("start-after = [\n  1,\n]"), "svc.toml", 3, "start-after", "item 1 must be a string"},
		{"exit code as a string", svc("[failure]\nsuccessful-exit-code = [0, \"1\"]"), "svc.toml", 3, "failure.successful-exit-code", "item 2 must be an integer"},
		{"additional with a number", svc("[environment]\nadditional = { PORT = 80 }"), "svc.toml", 3, "environment.additional.PORT", "must be a string, not an integer (quote it)"},
		{"re-export as a string", svc("[environment]\nre-export = \"PATH\""), "svc.toml", 3, "environment.re-export", "must be an array"},
		{"keep-env as a string", svc("[environment]\nkeep-env = \"true\""), "svc.toml", 3, "environment.keep-env", "must be a boolean"},
		{"both resource tables", svc("[resource]\ncpu = 1\n[resource-limit]\npids-max = 5"), "svc.toml", 4, "resource-limit", "two spellings of the same setting"},
		{"cpu and cpu-percent", svc("[resource-limit]\ncpu = 1\ncpu-percent = 100"), "svc.toml", 4, "resource-limit.cpu-percent", "both set the CPU limit"},
		{"negative cpu", svc("[resource-limit]\ncpu = -0.5"), "svc.toml", 3, "resource-limit.cpu", "must not be negative"},
		{"cpu below the kernel's minimum", svc("[resource-limit]\ncpu = 0.001"), "svc.toml", 3, "resource-limit.cpu", "0.001 is below the kernel's minimum of 0.01"},
		{"cpu-percent below the kernel's minimum", svc("[resource]\ncpu-percent = 0.5"), "svc.toml", 3, "resource.cpu-percent", "0.5 is below the kernel's minimum of 1"},
		{"infinite cpu", svc("[resource-limit]\ncpu = inf"), "svc.toml", 3, "resource-limit.cpu", "not a usable number"},
		{"negative pids-max", svc("[resource-limit]\npids-max = -1"), "svc.toml", 3, "resource-limit.pids-max", "out of range"},
		{"both timestamp spellings", svc("stdout-should-append-timestamp-to-filename = true\nstdout_should_append_timestamp_to_filename = true"), "svc.toml", 3, "stdout_should_append_timestamp_to_filename", "two spellings"},
		{"oneshot with always", svc("oneshot = true\n[restart]\nstrategy = \"always\""), "svc.toml", 4, "restart.strategy", `"always" cannot be used with oneshot = true (line 2)`},
		{"oneshot as a string", svc("oneshot = \"yes\""), "svc.toml", 2, "oneshot", "must be a boolean"},
		{"min-uptime as a number", svc("[restart]\nmin-uptime = 10"), "svc.toml", 3, "restart.min-uptime", "must be a string holding a duration"},
		{"max-backoff at the top level", svc("max-backoff = \"1s\""), "svc.toml", 2, "max-backoff", "it belongs under [restart]"},
		{"restart as a string", svc("restart = \"always\""), "svc.toml", 2, "restart", "must be a table, not a string"},
		{"array of tables", svc("[[restart]]\nstrategy = \"always\""), "svc.toml", 2, "restart", "must be a table, not an array"},
		{"TOML syntax error", svc("[restart\nstrategy = \"always\""), "svc.toml", 2, "", "invalid TOML"},
		{"TOML value error", map[string]string{"svc.toml": "command = /bin/true"}, "svc.toml", 1, "", "invalid TOML"},
		{"duplicate key", svc("command = \"again\""), "svc.toml", 2, "", "invalid TOML"},
		{"undefined variable", svc("\nuser = \"$SERVICE_USER\""), "svc.toml", 3, "", "undefined variable $SERVICE_USER"},
		{"undefined braced variable in a comment after a key", svc("x = 1 # runs as ${WHO}"), "svc.toml", 2, "", "undefined variable ${WHO}"},
		{"duplicate explicit names", map[string]string{
			"a.toml": "command = \"x\"",
			"b.toml": "command = \"x\"\nname = \"a.toml\"",
		}, "b.toml", 2, "name", "also used by"},
		{"start-after a missing service with a .toml suggestion", map[string]string{
			"db.toml":  "command = \"x\"",
			"web.toml": "command = \"x\"\n\n\nstart-after = [\"db\"]",
		}, "web.toml", 4, "start-after", `no service named "db", did you mean "db.toml"?`},
		{"start-after a missing service with a typo", map[string]string{
			"database.toml": "command = \"x\"",
			"web.toml":      "command = \"x\"\nstart-after = [\n  \"database.toml\",\n  \"databse.toml\",\n]",
		}, "web.toml", 4, "start-after", `did you mean "database.toml"?`},
		{"start-after a missing service without suggestion", map[string]string{
			"web.toml": "command = \"x\"\nstart-after = [\"queue\"]",
		}, "web.toml", 2, "start-after", `no service named "queue" (a service's name is its file name`},
		{"shutdown-after a missing service", map[string]string{
			"db.toml":  "command = \"x\"",
			"web.toml": "command = \"x\"\nshutdown-after = [\"db\"]",
		}, "web.toml", 2, "shutdown-after", `no service named "db", did you mean "db.toml"?`},
		{"die-if-failed a missing service", map[string]string{
			"db.toml":  "command = \"x\"",
			"web.toml": "command = \"x\"\n[termination]\ndie-if-failed = [\"DB.toml\"]",
		}, "web.toml", 3, "termination.die-if-failed", `did you mean "db.toml"?`},
		{"start-after itself", svc("start-after = [\"svc.toml\"]"), "svc.toml", 2, "start-after", "cannot start after itself"},
		{"shutdown-after itself", svc("shutdown-after = [\"svc.toml\"]"), "svc.toml", 2, "shutdown-after", "cannot shut down after itself"},
		{"die-if-failed itself", svc("[termination]\ndie-if-failed = [\"svc.toml\"]"), "svc.toml", 3, "termination.die-if-failed", "cannot die because it failed itself"},
		{"start-after cycle", map[string]string{
			"a.toml": "command = \"x\"\nstart-after = [\"c.toml\"]",
			"b.toml": "command = \"x\"\nstart-after = [\"a.toml\"]",
			"c.toml": "command = \"x\"\nstart-after = [\"b.toml\"]",
		}, "a.toml", 2, "start-after", "dependency cycle a.toml -> c.toml -> b.toml -> a.toml"},
		{"shutdown-after cycle", map[string]string{
			"a.toml": "command = \"x\"\nshutdown-after = [\"b.toml\"]",
			"b.toml": "command = \"x\"\n\nshutdown-after = [\"a.toml\"]",
		}, "a.toml", 2, "shutdown-after", "dependency cycle a.toml -> b.toml -> a.toml"},
		{"directory without services", map[string]string{"README": "x", "sub/a.toml": "command = \"x\""}, "", 0, "", "no services found in"},
		{"a directory named *.toml", map[string]string{"a.toml/x": ""}, "a.toml", 0, "", "cannot read: it is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, tt.files)
			_, probs := loadDir(t, dir, nil)
			if probs == nil {
				t.Fatal("Load accepted the configuration")
			}
			for _, p := range probs {
				if (tt.file == "" || filepath.Base(p.File) == tt.file) && p.Line == tt.line && p.Key == tt.key &&
					strings.Contains(p.Msg, tt.msg) {
					// The printed form names the file, line and key.
					s := p.Error()
					if !strings.HasPrefix(s, p.File) || tt.key != "" && !strings.Contains(s, ": "+tt.key+": ") {
						t.Fatalf("printed problem %q lacks its file or key", s)
					}
					return
				}
			}
			t.Fatalf("want %s:%d key %q msg %q; got:\n%v", tt.file, tt.line, tt.key, tt.msg, probs)
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"a.toml": "command = \"\"\nstart-delay = 5\n[restart]\nstrategy = \"sometimes\"\nbogus = 1\n",
		"b.toml": "command = \"x\"\nstart-after = [\"nope\"]\nuser = \"$UNDEFINED\"\n",
		"c.toml": "command = \"x\n",
	})
	_, probs := loadDir(t, dir, nil)
	want := []string{
		"a.toml:1: command: is empty",
		"a.toml:2: start-delay: must be a string",
		"a.toml:4: restart.strategy: unknown value",
		"a.toml:5: restart.bogus: unknown key",
		"b.toml:2: start-after: no service named \"nope\"",
		"b.toml:3:9: undefined variable $UNDEFINED",
		"c.toml:1:",
	}
	if len(probs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(want), probs)
	}
	for i, w := range want {
		if got := probs[i].Error(); !strings.Contains(got, w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got, w)
		}
	}
}

func TestLoadUndefinedVariableHidesItsEchoes(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.toml": "command = \"x\"\nstart-delay = \"$DELAY\"\n"})
	_, probs := loadDir(t, dir, nil)
	if len(probs) != 1 || !strings.Contains(probs[0].Msg, "$DELAY") {
		t.Fatalf("want only the undefined variable, got:\n%v", probs)
	}
}

func TestLoadProblemLinesAreThoseOfTheFile(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.toml": "command = \"\"\"$SCRIPT\"\"\"\nstart-delay = 5\n"})
	_, probs := loadDir(t, dir, map[string]string{"SCRIPT": "sh -c '\necho a\necho b\n'"})
	if len(probs) != 1 || probs[0].Line != 2 || probs[0].Key != "start-delay" {
		t.Fatalf("want start-delay on line 2, got:\n%v", probs)
	}
}

func TestLoadDuplicateFileNamesInTwoDirectories(t *testing.T) {
	one := writeDir(t, map[string]string{"db.toml": `command = "x"`})
	two := writeDir(t, map[string]string{"db.toml": `command = "y"`})
	_, err := Load([]string{one, two}, Options{LookupEnv: env(nil)})
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	msg := probs[0].Error()
	if !strings.Contains(msg, filepath.Join(one, "db.toml")) || !strings.Contains(msg, filepath.Join(two, "db.toml")) {
		t.Fatalf("problem %q does not name both files", msg)
	}
}

func TestLoadPaths(t *testing.T) {
	t.Run("missing path", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		_, err := Load([]string{missing}, Options{})
		if err == nil || !strings.Contains(err.Error(), missing+": cannot read services path: no such file or directory") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unreadable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads every directory")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		_, err := Load([]string{dir}, Options{})
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("one file given directly, whatever its name", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"service.conf": `command = "x"`})
		svcs, err := Load([]string{filepath.Join(dir, "service.conf")}, Options{})
		if err != nil || len(svcs) != 1 || svcs[0].Name != "service.conf" {
			t.Fatalf("got %v, %v", svcs, err)
		}
	})
	t.Run("only .toml entries, not recursive, symlinks followed", func(t *testing.T) {
		dir := writeDir(t, map[string]string{
			"b.toml":            `command = "x"`,
			"a.xtoml":           `command = "x"`,
			"notes.txt":         `not toml`,
			"sub/c.toml":        `command = "x"`,
			"..data/real.toml":  `command = "x"`,
			"d.toml.disabled":   `command = "x"`,
			".hidden/e.toml":    "",
			"z.toml.bak":        "",
			"nested/deep/f.tom": "",
		})
		if err := os.Symlink(filepath.Join("..data", "real.toml"), filepath.Join(dir, "linked.toml")); err != nil {
			t.Fatal(err)
		}
		svcs, err := Load([]string{dir}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(svcs); !reflect.DeepEqual(got, []string{"b.toml", "linked.toml"}) {
			t.Fatalf("loaded %v", got)
		}
	})
	t.Run("dangling symlink", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"a.toml": `command = "x"`})
		if err := os.Symlink("gone.toml", filepath.Join(dir, "b.toml")); err != nil {
			t.Fatal(err)
		}
		_, err := Load([]string{dir}, Options{})
		if err == nil || !strings.Contains(err.Error(), "b.toml: cannot read: no such file or directory") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("services from two paths may depend on each other", func(t *testing.T) {
		one := writeDir(t, map[string]string{"web.toml": "command = \"x\"\nstart-after = [\"db.toml\"]"})
		two := writeDir(t, map[string]string{"db.toml": `command = "x"`})
		svcs, err := Load([]string{one, two}, Options{})
		if err != nil || !reflect.DeepEqual(names(svcs), []string{"db.toml", "web.toml"}) {
			t.Fatalf("got %v, %v", names(svcs), err)
		}
	})
	t.Run("default working directory is the current one", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"a.toml": `command = "x"`})
		svcs, err := Load([]string{dir}, Options{})
		wd, _ := os.Getwd()
		if err != nil || svcs[0].WorkingDirectory != wd {
			t.Fatalf("got %v, %v", svcs, err)
		}
	})
	t.Run("environment by default", func(t *testing.T) {
		t.Setenv("HORUST_TEST_PROGRAM", "/bin/echo")
		dir := writeDir(t, map[string]string{"a.toml": `command = "$HORUST_TEST_PROGRAM hi"`})
		svcs, err := Load([]string{dir}, Options{})
		if err != nil || svcs[0].Command != "/bin/echo hi" {
			t.Fatalf("got %v, %v", svcs, err)
		}
	})
}

// Configuration input is bounded: only regular files (or symlinks to them)
// of at most 1 MiB are read; anything else is a problem naming the path,
// found without blocking or reading it.
func TestLoadInputBounds(t *testing.T) {
	valid := `command = "x"`
	tests := []struct {
		name  string
		make  func(t *testing.T, dir string) // adds the bad entry
		file  string                         // the path the problem names, in dir
		msg   string
		alone bool // the bad entry is the whole services path
	}{
		{"a FIFO named *.toml beside a valid file", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "f.toml")) },
			"f.toml", "cannot read: it is a FIFO: only regular files (or symlinks to them) are read", false},
		{"a symlink to a device named *.toml beside a valid file", func(t *testing.T, dir string) { symlink(t, "/dev/zero", filepath.Join(dir, "z.toml")) },
			"z.toml", "cannot read: it is a symlink to /dev/zero, which is a character device", false},
		{"a directory named *.toml beside a valid file", func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "d.toml")) },
			"d.toml", "cannot read: it is a directory", false},
		{"a file over 1 MiB", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "big.toml"), "# "+strings.Repeat("x", MaxFileSize)+"\n"+valid)
		}, "big.toml", "cannot read: it has 1048592 bytes: configuration files are read up to 1 MiB", false},
		{"a FIFO alone", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "f.toml")) },
			"f.toml", "it is a FIFO", true},
		{"a FIFO as the services path", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "fifo")) },
			"fifo", "services path is a FIFO: want a directory or a regular file", true},
		{"/dev/zero as the services path", nil, "/dev/zero", "services path is a character device", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.make != nil {
				tt.make(t, dir)
			}
			paths := []string{dir}
			want := filepath.Join(dir, tt.file)
			if tt.alone && !strings.HasSuffix(tt.file, ".toml") {
				if filepath.IsAbs(tt.file) {
					want = tt.file
				}
				paths = []string{want}
			}
			if !tt.alone {
				write(t, filepath.Join(dir, "ok.toml"), valid)
			}
			probs := loadWithin(t, paths)
			if len(probs) != 1 || probs[0].File != want || !strings.Contains(probs[0].Msg, tt.msg) {
				t.Fatalf("want one problem of %s: %q; got %v", want, tt.msg, probs)
			}
		})
	}
	t.Run("horust.toml", func(t *testing.T) {
		dir := t.TempDir()
		fifo := filepath.Join(dir, "horust.toml")
		mkfifo(t, fifo)
		for path, msg := range map[string]string{
			fifo:        "cannot read: it is a FIFO",
			"/dev/zero": "cannot read: it is a character device",
		} {
			done := make(chan error, 1)
			go func() { _, err := LoadGlobal(path); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), path+": "+msg) {
					t.Errorf("LoadGlobal(%s) = %v, want %q", path, err, msg)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("LoadGlobal(%s) blocks", path)
			}
		}
	})
}

// loadWithin loads paths and returns the problems; a Load that blocks (on
// a FIFO) fails the test instead of hanging it.
func loadWithin(t *testing.T, paths []string) Problems {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := Load(paths, Options{}); done <- err }()
	select {
	case err := <-done:
		var probs Problems
		if !errors.As(err, &probs) {
			t.Fatalf("Load: %v, want problems", err)
		}
		return probs
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocks")
	}
	return nil
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStartOrder(t *testing.T) {
	mk := func(name string, after ...string) *Service {
		s := Default("/")
		s.Name, s.Command, s.StartAfter = name, "x", after
		return s
	}
	tests := []struct {
		name string
		svcs []*Service
		want []string
	}{
		{"independent services by name", []*Service{mk("c"), mk("a"), mk("b")}, []string{"a", "b", "c"}},
		{"dependencies first", []*Service{mk("a", "z"), mk("z")}, []string{"z", "a"}},
		{"ties broken by name at every step", []*Service{
			mk("web", "db", "cache"), mk("db"), mk("cache"), mk("worker", "db"), mk("api"),
		}, []string{"api", "cache", "db", "web", "worker"}},
		{"diamond", []*Service{mk("d", "b", "c"), mk("b", "a"), mk("c", "a"), mk("a")}, []string{"a", "b", "c", "d"}},
		{"unknown and self references are ignored", []*Service{mk("a", "a", "nope")}, []string{"a"}},
		{"empty", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := startOrderOf(tt.svcs)
			if err != nil {
				t.Fatal(err)
			}
			if n := names(got); !reflect.DeepEqual(n, tt.want) {
				t.Fatalf("order %v, want %v", n, tt.want)
			}
		})
	}
	t.Run("cycle", func(t *testing.T) {
		a, b, c := mk("a.toml", "b.toml"), mk("b.toml", "a.toml"), mk("c.toml", "a.toml")
		a.File = "/x/a.toml"
		_, err := startOrderOf([]*Service{c, b, a})
		if err == nil || err.Error() != "/x/a.toml: start-after: dependency cycle a.toml -> b.toml -> a.toml: these services would each wait for the other to start first" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("two cycles", func(t *testing.T) {
		_, err := startOrderOf([]*Service{mk("a", "b"), mk("b", "a"), mk("c", "d"), mk("d", "c")})
		var probs Problems
		if !errors.As(err, &probs) || len(probs) != 2 ||
			!strings.Contains(probs[0].Msg, "a -> b -> a") || !strings.Contains(probs[1].Msg, "c -> d -> c") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.toml", Line: 3, Col: 7, Key: "user", Msg: "m"}, "a.toml:3:7: user: m"},
		{Problem{File: "a.toml", Line: 3, Key: "user", Msg: "m"}, "a.toml:3: user: m"},
		{Problem{File: "a.toml", Key: "command", Msg: "m"}, "a.toml: command: m"},
		{Problem{File: "dir", Msg: "m"}, "dir: m"},
		{Problem{Msg: "m"}, "m"},
		{Problem{Line: 2, Msg: "m"}, "line 2: m"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.p, got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[3].p}
	if got := ps.Error(); got != "a.toml:3:7: user: m\ndir: m" {
		t.Errorf("Problems.Error() = %q", got)
	}
	var p Problem
	if !errors.As(error(ps), &p) || p.Key != "user" {
		t.Errorf("errors.As did not find the first Problem")
	}
}

func TestLoadGlobal(t *testing.T) {
	tests := []struct {
		name, content string
		want          bool
		err           string
	}{
		{"empty file", "", false, ""},
		{"kebab spelling", "unsuccessful-exit-finished-failed = true", true, ""},
		{"underscore spelling", "unsuccessful_exit_finished_failed = true", true, ""},
		{"false", "unsuccessful-exit-finished-failed = false", false, ""},
		{"unknown key", "\nunsuccessful-exit = true", false, "horust.toml:2: unsuccessful-exit: unknown key"},
		{"wrong type", "unsuccessful-exit-finished-failed = \"yes\"", false, "horust.toml:1: unsuccessful-exit-finished-failed: must be a boolean"},
		{"both spellings", "unsuccessful-exit-finished-failed = true\nunsuccessful_exit_finished_failed = true", false, "horust.toml:2: unsuccessful_exit_finished_failed: unsuccessful-exit-finished-failed and unsuccessful_exit_finished_failed are two spellings"},
		{"invalid TOML", "unsuccessful-exit-finished-failed = ", false, "horust.toml:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(writeDir(t, map[string]string{"horust.toml": tt.content}), "horust.toml")
			g, err := LoadGlobal(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LoadGlobal error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || g.UnsuccessfulExitFinishedFailed != tt.want {
				t.Fatalf("LoadGlobal = %+v, %v; want %v", g, err, tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		g, err := LoadGlobal(filepath.Join(t.TempDir(), "horust.toml"))
		if err != nil || g != (Global{}) {
			t.Fatalf("got %+v, %v", g, err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadGlobal(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestOneShot(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		command string
		argv    []string
	}{
		{"several arguments keep their argv", []string{"sh", "-c", "echo a b"}, "sh -c echo a b", []string{"sh", "-c", "echo a b"}},
		{"one argument with blanks is split", []string{"/usr/bin/env bash -c 'echo hello'"}, "/usr/bin/env bash -c 'echo hello'", []string{"/usr/bin/env", "bash", "-c", "echo hello"}},
		{"one argument without blanks is the program", []string{"/bin/it's"}, "/bin/it's", []string{"/bin/it's"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OneShot(tt.args, "/work")
			if err != nil {
				t.Fatal(err)
			}
			want := Default("/work")
			want.Name, want.Command, want.Argv = tt.command, tt.command, tt.argv
			want.Environment.KeepEnv = true
			if !reflect.DeepEqual(s, want) {
				t.Fatalf("got %+v\nwant %+v", s, want)
			}
		})
	}
	for _, bad := range [][]string{nil, {""}, {"  "}, {"sh -c 'x"}} {
		if _, err := OneShot(bad, "/"); err == nil {
			t.Errorf("OneShot(%q) accepted", bad)
		}
	}
}

// startOrderOf is startOrder without lines, as the order tests call it.
func startOrderOf(svcs []*Service) ([]*Service, error) {
	order, probs := startOrder(svcs, func(*Service, string) int { return 0 })
	if len(probs) > 0 {
		return nil, probs
	}
	return order, nil
}
