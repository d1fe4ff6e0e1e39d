//go:build linux

package e2e

import (
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envHost is what horust's own environment adds in these tests.
var envHost = []string{
	"ENV_E2E_HOST=host",
	"ENV_E2E_BOTH=host",
	"USER=bogus-user",
	"HOME=/bogus-home",
	"HOSTNAME=bogus-host",
	"TERM=xterm-e2e",
	"PATH=/env-e2e/bin:/usr/bin:/bin",
}

// envHostname is the HOSTNAME a service must get: /etc/hostname without its
// trailing newline when that is a regular file, horust's $HOSTNAME otherwise.
func envHostname(t *testing.T) string {
	t.Helper()
	fi, err := os.Stat("/etc/hostname")
	if err != nil || !fi.Mode().IsRegular() {
		return "bogus-host"
	}
	b, err := os.ReadFile("/etc/hostname")
	if err != nil {
		return "localhost"
	}
	return strings.TrimRight(string(b), "\r\n")
}

// envRead waits for the env role's file and returns it as a map; it fails
// on a line that is not NAME=VALUE (a value with a newline in it).
func envRead(t *testing.T, file string) map[string]string {
	t.Helper()
	eventually(t, 20*time.Second, "the environment file "+file, func() bool { _, err := os.Stat(file); return err == nil })
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(readFile(file), "\n"), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("line %q of the environment is not NAME=VALUE (a value with a newline?):\n%s", l, readFile(file))
		}
		env[k] = v
	}
	return env
}

func envSelf(t *testing.T) *user.User {
	t.Helper()
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skipf("horust's own user has no passwd entry: %v", err)
	}
	return u
}

func TestEnvironmentPrecedence(t *testing.T) {
	self := envSelf(t)
	host := envHostname(t)
	always := map[string]string{
		"HOSTNAME": host,
		"PATH":     "/env-e2e/bin:/usr/bin:/bin",
		"USER":     self.Username,
		"HOME":     self.HomeDir,
		"TERM":     "xterm-e2e",
	}
	with := func(over map[string]string) map[string]string {
		m := maps.Clone(always)
		maps.Copy(m, over)
		return m
	}
	cases := []struct {
		name  string
		toml  []string
		exact map[string]string // the whole environment
		has   map[string]string // some of it (keep-env)
		lacks []string
	}{
		{name: "only the always-set variables and TERM", exact: always},
		{name: "keep-env passes horust's environment under the always-set ones",
			toml: []string{"keep-env = true"},
			has:  with(map[string]string{"ENV_E2E_HOST": "host", "ENV_E2E_BOTH": "host"})},
		{name: "re-export overrides the always-set variables",
			toml:  []string{`re-export = ["ENV_E2E_HOST", "USER", "HOSTNAME"]`},
			exact: with(map[string]string{"ENV_E2E_HOST": "host", "USER": "bogus-user", "HOSTNAME": "bogus-host"}),
			lacks: []string{"ENV_E2E_BOTH"}},
		{name: "additional overrides everything",
			toml: []string{`re-export = ["ENV_E2E_BOTH", "HOME"]`,
				`additional = { ENV_E2E_BOTH = "additional", HOME = "/add-home", PATH = "/add/bin", HOSTNAME = "add-host", USER = "add-user", TERM = "add-term", ENV_E2E_NEW = "new" }`},
			exact: map[string]string{"ENV_E2E_BOTH": "additional", "HOME": "/add-home", "PATH": "/add/bin", "HOSTNAME": "add-host",
				"USER": "add-user", "TERM": "add-term", "ENV_E2E_NEW": "new"}},
		{name: "additional overrides keep-env",
			toml: []string{"keep-env = true", `additional = { ENV_E2E_HOST = "additional" }`},
			has:  with(map[string]string{"ENV_E2E_HOST": "additional", "ENV_E2E_BOTH": "host"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "env")
			h := startHorust(t, runOpts{env: envHost, files: map[string]string{
				"env-subject.toml": svc(role("env", file), append([]string{"[environment]"}, tc.toml...)...),
			}})
			env := envRead(t, file)
			if tc.exact != nil && !maps.Equal(env, tc.exact) {
				t.Fatalf("environment %v, want exactly %v", env, tc.exact)
			}
			for k, v := range tc.has {
				if got, ok := env[k]; !ok || got != v {
					t.Errorf("%s=%q (set: %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range tc.lacks {
				if _, ok := env[k]; ok {
					t.Errorf("%s is set, want it absent", k)
				}
			}
			if strings.Contains(env["HOSTNAME"], "\n") {
				t.Errorf("HOSTNAME %q has a newline", env["HOSTNAME"])
			}
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0", code)
			}
		})
	}
}

func TestEnvironmentMissingReExport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "env")
	h := startHorust(t, runOpts{env: append([]string{"HORUST_LOG=error"}, envHost...), files: map[string]string{
		"env-missing.toml": svc(role("env", file), "[environment]", `re-export = ["ENV_E2E_NOT_IN_HORUST", "ENV_E2E_HOST"]`),
	}})
	env := envRead(t, file)
	h.waitState("env-missing.toml", 20*time.Second, "RUNNING")
	if env["ENV_E2E_HOST"] != "host" {
		t.Errorf("the name horust has was not re-exported: %v", env)
	}
	if _, ok := env["ENV_E2E_NOT_IN_HORUST"]; ok {
		t.Error("the missing name is set")
	}
	log := h.stderr.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "key=ENV_E2E_NOT_IN_HORUST") || !strings.Contains(log, "service=env-missing.toml") {
		t.Fatalf("no error line names the service and the missing variable:\n%s", log)
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d, want 0", code)
	}
}

// envWhoami waits for the whoami role's file and returns its fields.
func envWhoami(t *testing.T, file string) map[string]string {
	t.Helper()
	eventually(t, 20*time.Second, "the whoami file "+file, func() bool { _, err := os.Stat(file); return err == nil })
	line := strings.TrimSuffix(readFile(file), "\n")
	out := map[string]string{}
	// uid=0 gid=0 groups=[0 1] cwd=/x
	rest := line
	for _, key := range []string{"uid", "gid", "groups", "cwd"} {
		rest = strings.TrimPrefix(rest, " ")
		v, ok := strings.CutPrefix(rest, key+"=")
		if !ok {
			t.Fatalf("whoami line %q: no %s", line, key)
		}
		switch key {
		case "groups":
			end := strings.Index(v, "]")
			out[key], rest = v[:end+1], v[end+1:]
		case "cwd":
			out[key] = v
		default:
			f, r, _ := strings.Cut(v, " ")
			out[key], rest = f, r
		}
	}
	return out
}

func TestEnvironmentWorkingDirectory(t *testing.T) {
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("default is horust's working directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "who")
		startHorust(t, runOpts{files: map[string]string{"wd-default.toml": svc(role("whoami", file))}})
		if got := envWhoami(t, file)["cwd"]; got != here {
			t.Fatalf("cwd %q, want horust's %q", got, here)
		}
	})
	t.Run("set", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(t.TempDir(), "who")
		startHorust(t, runOpts{files: map[string]string{"wd-set.toml": svc(role("whoami", file), fmt.Sprintf("working-directory = %q", dir))}})
		if got := envWhoami(t, file)["cwd"]; got != dir {
			t.Fatalf("cwd %q, want %q", got, dir)
		}
	})
	t.Run("missing directory is a failed start", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-dir")
		h := startHorust(t, runOpts{env: []string{"HORUST_LOG=error"}, files: map[string]string{
			"wd-missing.toml": svc(role("sleep"), fmt.Sprintf("working-directory = %q", missing)),
			"wd-other.toml":   svc(role("sleep")),
		}})
		h.waitState("wd-missing.toml", 20*time.Second, "FINISHEDFAILED")
		st := h.status("wd-missing.toml")
		if !strings.Contains(st.Reason, "working-directory") || !strings.Contains(st.Reason, missing) {
			t.Errorf("reason %q does not name working-directory and the path", st.Reason)
		}
		log := h.stderr.String()
		if !strings.Contains(log, "service=wd-missing.toml") || !strings.Contains(log, "working-directory") || !strings.Contains(log, missing) {
			t.Errorf("no error line names the service, working-directory and the path:\n%s", log)
		}
		if s := h.state("wd-other.toml"); s != "RUNNING" {
			t.Fatalf("the other service is %s", s)
		}
		h.signal(syscall.SIGTERM)
		if code := h.wait(20 * time.Second); code != 0 {
			t.Fatalf("horust exit code %d, want 0", code)
		}
	})
}

// envSharedDir is a directory every user can write, outside the test's
// private temp directories.
func envSharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "horust-e2e-env-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// envGroups is the sorted list of a user's groups in the whoami format.
func envGroups(t *testing.T, u *user.User) string {
	t.Helper()
	ids, err := u.GroupIds()
	if err != nil {
		t.Fatalf("groups of %s: %v", u.Username, err)
	}
	return envSortGroups(ids)
}

func envSortGroups(ids []string) string {
	n := make([]int, 0, len(ids))
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil {
			n = append(n, g)
		}
	}
	sort.Ints(n)
	n = slices.Compact(n)
	return fmt.Sprint(n)
}

func TestEnvironmentUser(t *testing.T) {
	requireRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody here: %v", err)
	}
	root := envSelf(t)
	// A service without user keeps horust's credentials, supplementary
	// groups included (horust inherits the test's).
	own, err := syscall.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	var ownGroups []string
	for _, g := range own {
		ownGroups = append(ownGroups, strconv.Itoa(g))
	}
	const noEntry = "54321"
	if _, err := user.LookupId(noEntry); err == nil {
		t.Skipf("uid %s has a passwd entry here", noEntry)
	}
	cases := []struct {
		name                string
		user                string // the TOML value
		uid, gid, groups    string
		envUser, envHome    string
		failed, failedMatch string
	}{
		{name: "unset is horust's own user and groups", user: "",
			uid: root.Uid, gid: root.Gid, groups: envSortGroups(ownGroups), envUser: root.Username, envHome: root.HomeDir},
		{name: "by name", user: `"nobody"`,
			uid: nobody.Uid, gid: nobody.Gid, groups: envGroups(t, nobody), envUser: "nobody", envHome: nobody.HomeDir},
		{name: "by number", user: nobody.Uid,
			uid: nobody.Uid, gid: nobody.Gid, groups: envGroups(t, nobody), envUser: "nobody", envHome: nobody.HomeDir},
		{name: "number without a passwd entry", user: noEntry,
			uid: noEntry, gid: noEntry, groups: "[]", envUser: noEntry, envHome: "/"},
		{name: "unknown name is a failed start of that service", user: `"no-such-user-e2e"`, failed: "FINISHEDFAILED", failedMatch: "no-such-user-e2e"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := envSharedDir(t)
			more := []string{fmt.Sprintf("working-directory = %q", dir)}
			if tc.user != "" {
				more = append(more, "user = "+tc.user)
			}
			who, envFile := filepath.Join(dir, "who"), filepath.Join(dir, "env")
			h := startHorust(t, runOpts{env: []string{"HORUST_LOG=error"}, files: map[string]string{
				"user-who.toml":   svc(role("whoami", who), more...),
				"user-env.toml":   svc(role("env", envFile), more...),
				"user-other.toml": svc(role("sleep")),
			}})
			if tc.failed != "" {
				for _, n := range []string{"user-who.toml", "user-env.toml"} {
					h.waitState(n, 20*time.Second, tc.failed)
					if st := h.status(n); !strings.Contains(st.Reason, tc.failedMatch) {
						t.Errorf("%s: reason %q does not name the user", n, st.Reason)
					}
				}
				if log := h.stderr.String(); !strings.Contains(log, "service=user-who.toml") || !strings.Contains(log, tc.failedMatch) {
					t.Errorf("no error line names the service and the user:\n%s", log)
				}
				if s := h.state("user-other.toml"); s != "RUNNING" {
					t.Fatalf("the other service is %s", s)
				}
			} else {
				w := envWhoami(t, who)
				if w["uid"] != tc.uid || w["gid"] != tc.gid {
					t.Errorf("uid %s gid %s, want %s %s", w["uid"], w["gid"], tc.uid, tc.gid)
				}
				if got := envSortGroups(strings.Fields(strings.Trim(w["groups"], "[]"))); got != tc.groups {
					t.Errorf("supplementary groups %s, want %s", got, tc.groups)
				}
				env := envRead(t, envFile)
				if env["USER"] != tc.envUser || env["HOME"] != tc.envHome {
					t.Errorf("USER=%q HOME=%q, want %q %q", env["USER"], env["HOME"], tc.envUser, tc.envHome)
				}
			}
			h.signal(syscall.SIGTERM)
			if code := h.wait(20 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d, want 0", code)
			}
		})
	}
}

func TestEnvironmentFailedStartExitCode(t *testing.T) {
	cases := []struct{ name, toml string }{
		{"missing working directory", fmt.Sprintf("working-directory = %q", filepath.Join(os.TempDir(), "horust-e2e-no-such-dir"))},
		{"unknown user", `user = "no-such-user-e2e"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startHorust(t, runOpts{args: []string{"--unsuccessful-exit-finished-failed"}, files: map[string]string{
				"env-fails.toml": svc(role("sleep"), tc.toml),
			}})
			if code := h.wait(20 * time.Second); code != 101 {
				t.Fatalf("horust exit code %d, want 101", code)
			}
		})
	}
}
