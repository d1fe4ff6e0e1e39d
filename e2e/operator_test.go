//go:build linux

package e2e

// End-to-end tests of the operator's frictions (issue 18): the socket
// folder from HORUST_UDS_FOLDER_PATH, an unknown --uds-group, a horustctl
// wait started before horust, and the "did you mean" of an unknown service.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctlEnv runs horustctl with more variables in its environment.
func ctlEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(horustctlBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("horustctl: %v", err)
	}
	return out.String(), errb.String(), code
}

// TestUDSFolderFromEnvironment: without --uds-folder-path (-u), horust and
// horustctl both take the folder from HORUST_UDS_FOLDER_PATH.
func TestUDSFolderFromEnvironment(t *testing.T) {
	uds := filepath.Join(t.TempDir(), "sock")
	env := []string{"HORUST_UDS_FOLDER_PATH=" + uds}
	h := startHorust(t, runOpts{noArgs: true, env: env,
		args: []string{"--services-path", servicesDir(t, map[string]string{"env-uds.toml": svc(role("sleep"))})}})
	eventually(t, 20*time.Second, "the socket in $HORUST_UDS_FOLDER_PATH", func() bool {
		m, _ := filepath.Glob(filepath.Join(uds, "horust-*.sock"))
		return len(m) == 1
	})
	eventually(t, 20*time.Second, "the service to run", func() bool {
		out, _, code := ctlEnv(t, env, "status", "env-uds.toml")
		return code == 0 && out == "Current status for 'env-uds.toml' is: 'RUNNING'.\n"
	})
	// -u wins over the variable.
	empty := t.TempDir()
	_, errOut, code := ctlEnv(t, env, "-u", empty, "status")
	ctlExpect(t, "-u over the variable", "", errOut, code, 1, nil, "no horust socket found in "+empty+ctlNoSocketHint)
	_ = h
}

// TestUDSGroupUnknown: --uds-group naming a group that does not exist stops
// horust with exit 1 before it starts anything.
func TestUDSGroupUnknown(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	h := startHorust(t, runOpts{args: []string{"--uds-group", "no-such-group-h18"},
		files: map[string]string{"grp.toml": svc("/bin/sh -c 'touch " + marker + "; sleep 30'")}})
	if code := h.wait(20 * time.Second); code != 1 {
		t.Fatalf("horust exited %d, want 1; stderr %s", code, h.stderr)
	}
	if s := h.stderr.String(); !strings.Contains(s, "--uds-group") || !strings.Contains(s, "no-such-group-h18") {
		t.Fatalf("the error does not name the flag and the group: %q", s)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a service ran although horust refused its --uds-group")
	}
}

// TestUDSGroupByName: --uds-group naming a group gives the control socket
// that group (looked up by horust in /etc/group, here checked against
// os/user).
func TestUDSGroupByName(t *testing.T) {
	requireRoot(t) // root may give the socket any group
	var g *user.Group
	for _, name := range []string{"nogroup", "daemon", "adm", "users"} {
		if found, err := user.LookupGroup(name); err == nil && found.Gid != strconv.Itoa(os.Getgid()) {
			g = found
			break
		}
	}
	if g == nil {
		t.Skip("none of nogroup, daemon, adm, users is a group here other than the test's own")
	}
	h := startHorust(t, runOpts{args: []string{"--uds-group", g.Name},
		files: map[string]string{"grp.toml": svc(role("sleep"))}})
	var st syscall.Stat_t
	if err := syscall.Stat(ctlSocket(t, h), &st); err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(int(st.Gid)) != g.Gid {
		t.Fatalf("the socket's group is %d, want %s (%s)", st.Gid, g.Gid, g.Name)
	}
}

// TestCtlWaitBeforeHorust: a script starts horustctl wait before horust has
// made its socket (its folder does not even exist): the wait waits for the
// socket within --timeout, then for the service.
func TestCtlWaitBeforeHorust(t *testing.T) {
	uds := filepath.Join(t.TempDir(), "later")
	wait := exec.Command(horustctlBin, "-u", uds, "wait", "early.toml", "--timeout", "60s")
	var errb bytes.Buffer
	wait.Stderr = &errb
	if err := wait.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- wait.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("wait returned before horust ran: %v, %s", err, errb.String())
	case <-time.After(500 * time.Millisecond):
	}
	startHorust(t, runOpts{noArgs: true, args: []string{"--uds-folder-path", uds,
		"--services-path", servicesDir(t, map[string]string{"early.toml": svc(role("sleep"))})}})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait: %v, %s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		_ = wait.Process.Kill()
		t.Fatal("wait did not return once horust ran the service")
	}
}

// TestCtlUnknownServiceSuggestion: an unknown name gets the near miss.
func TestCtlUnknownServiceSuggestion(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{"backend.toml": svc(role("sleep"))}})
	h.waitState("backend.toml", 20*time.Second, "RUNNING")
	out, errOut, code := h.ctl("restart", "backend")
	ctlExpect(t, "restart backend", out, errOut, code, 1, ptr(""), "no such service 'backend'; did you mean 'backend.toml'?")
}

// TestFilePathNotYetIsDebug: a file-path check whose file the starting
// service has not made yet is logged at debug, not as a warning; once the
// service ran, the file going away is a warning again.
func TestFilePathNotYetIsDebug(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	h := startHorust(t, runOpts{env: []string{"HORUST_LOG=debug"}, files: map[string]string{
		"fp.toml": svc(role("health-touch-after", "500ms", ready), "[healthiness]", fmt.Sprintf("file-path = %q", ready), `interval = "100ms"`),
	}})
	h.waitState("fp.toml", 20*time.Second, "RUNNING")
	failed := regexp.MustCompile(`level=(\w+) msg="health check failed" service=fp.toml`)
	levels := func() []string {
		var l []string
		for _, m := range failed.FindAllStringSubmatch(h.stderr.String(), -1) {
			l = append(l, m[1])
		}
		return l
	}
	if got := levels(); !slices.Equal(got, []string{"DEBUG"}) {
		t.Fatalf("while starting, the missing file was logged at %v, want once at DEBUG", got)
	}
	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the warning for a running service's missing file", func() bool {
		return slices.Contains(levels(), "WARN")
	})
}

// TestNotifyStatusInTable: the status table shows a notify service's last
// STATUS= text beside its readiness.
func TestNotifyStatusInTable(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{
		"nst.toml": svc(role("notify", "0s", "serving 3 clients"), "[healthiness]", "notify = true"),
	}})
	h.waitState("nst.toml", 20*time.Second, "RUNNING")
	out, errOut, code := h.ctl("status")
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "nst.toml ") {
			row = l
		}
	}
	if code != 0 || !strings.Contains(row, "notify: ready (serving 3 clients)") {
		t.Fatalf("exit %d, stderr %q; the row of nst.toml lacks its STATUS= text:\n%s", code, errOut, out)
	}
}

// TestValidateWarnsAboutStarts: --validate warns, without failing, about
// what would make a start fail on this machine (a program not on PATH or
// not executable, a missing output folder, working directory or user), and
// fails on what start-up refuses (a CPU limit below the kernel's minimum,
// an unknown --uds-group).
func TestValidateWarnsAboutStarts(t *testing.T) {
	tmp := t.TempDir()
	notExec := filepath.Join(tmp, "not-exec.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := servicesDir(t, map[string]string{
		"ok.toml":       svc("/bin/sleep 1"),
		"nopath.toml":   svc("no-such-program-h18 --flag"),
		"noexec.toml":   svc(notExec),
		"nofolder.toml": svc("/bin/sleep 1", `stdout = "`+filepath.Join(tmp, "missing", "out.log")+`"`),
		"nodir.toml":    svc("/bin/sleep 1", `working-directory = "`+filepath.Join(tmp, "gone")+`"`),
		"nouser.toml":   svc("/bin/sleep 1", `user = "no-such-user-h18"`),
		"nocheck.toml":  svc("/bin/sleep 1", "[healthiness]", `command = "no-such-check-h18"`),
	})
	out, errOut, code := runHorust(t, 20*time.Second, nil, "--validate", "--services-path", dir)
	if code != 0 || !strings.Contains(out, "7 service(s), in start order:") {
		t.Fatalf("exit %d, want 0 with the start order; stdout %q stderr %q", code, out, errOut)
	}
	for _, want := range []string{
		`warning: nopath.toml: command: program "no-such-program-h18" not found in any of the PATH directories`,
		"warning: noexec.toml: command: program " + notExec + ": not executable (mode -rw-r--r--)",
		"warning: nofolder.toml: stdout: the folder of " + filepath.Join(tmp, "missing", "out.log") + ": stat " + filepath.Join(tmp, "missing") + ": no such file or directory",
		"warning: nodir.toml: working-directory: stat " + filepath.Join(tmp, "gone") + ": no such file or directory",
		`warning: nouser.toml: user: user "no-such-user-h18"`,
		`warning: nocheck.toml: healthiness.command: program "no-such-check-h18" not found`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "ok.toml") {
		t.Errorf("a warning about the good service:\n%s", errOut)
	}

	good := servicesDir(t, map[string]string{"ok.toml": svc("/bin/sleep 1")})
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"cpu below the kernel's minimum", []string{"--services-path", servicesDir(t, map[string]string{
			"cpu.toml": svc("/bin/sleep 1", "[resource-limit]", "cpu = 0.001")})},
			"cpu.toml:3: resource-limit.cpu: 0.001 is below the kernel's minimum of 0.01"},
		{"unknown --uds-group", []string{"--services-path", good, "--uds-group", "no-such-group-h18"}, "--uds-group"},
	} {
		out, errOut, code := runHorust(t, 20*time.Second, nil, append([]string{"--validate"}, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.err) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1, nothing, and %q", tc.name, code, out, errOut, tc.err)
		}
	}
}

// TestTemplateLeavesCommentLines: a variable in a TOML comment line is not
// templated (a commented-out key may name a variable that is not set); one
// in a key is.
func TestTemplateLeavesCommentLines(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	h := startHorust(t, runOpts{env: []string{"H18_SET=from-env"}, files: map[string]string{
		"tmpl.toml": "# user = \"${H18_NOT_SET}\"\n  # also $H18_NOT_SET\n" +
			svc(role("append", out, "$H18_SET")),
	}})
	if code := h.wait(20 * time.Second); code != 0 {
		t.Fatalf("horust exited %d, want 0 once the service finished; stderr %s", code, h.stderr)
	}
	if got := readFile(out); got != "from-env\n" {
		t.Fatalf("the service wrote %q, want the templated %q", got, "from-env\n")
	}
}

// TestSampleServiceValidatesAlone: the --sample-service output, saved to a
// file, passes --validate by itself.
func TestSampleServiceValidatesAlone(t *testing.T) {
	sample, errOut, code := runHorust(t, 20*time.Second, nil, "--sample-service")
	if code != 0 {
		t.Fatalf("--sample-service: exit %d, stderr %s", code, errOut)
	}
	file := writeTemp(t, "hello.toml", sample)
	out, errOut, code := runHorust(t, 20*time.Second, nil, "--validate", "--services-path", file)
	if code != 0 || out != "1 service(s), in start order:\n  1. hello.toml\n" {
		t.Fatalf("--validate of the sample: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
}

// TestSameVersionBothBinaries: -V prints one line, and the same version,
// commit and Go on horust and horustctl.
func TestSameVersionBothBinaries(t *testing.T) {
	hv, errOut, code := runHorust(t, 20*time.Second, nil, "-V")
	if code != 0 || errOut != "" || !strings.HasPrefix(hv, "horust ") {
		t.Fatalf("horust -V: exit %d, stdout %q, stderr %q", code, hv, errOut)
	}
	cv, errOut, code := runCtl(t, "-V")
	if code != 0 || errOut != "" || !strings.HasPrefix(cv, "horustctl ") {
		t.Fatalf("horustctl -V: exit %d, stdout %q, stderr %q", code, cv, errOut)
	}
	if h, c := strings.TrimPrefix(hv, "horust "), strings.TrimPrefix(cv, "horustctl "); h != c || strings.Count(h, "\n") != 1 {
		t.Fatalf("the versions differ: horust %q, horustctl %q", h, c)
	}
}
