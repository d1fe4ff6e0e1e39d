//go:build linux

package e2e

// End-to-end tests of the live view (horustctl top, status --watch): in a
// real terminal (a tmux pane, as a person sees it) and into a pipe.

import (
	"bufio"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmux runs a tmux command on the test's own server (socket sock).
func tmux(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// paneRow is the fields of the pane's line that starts with name, nil when
// there is none.
func paneRow(pane, name string) []string {
	for _, l := range strings.Split(pane, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}

// TestLiveViewInTerminal: horustctl top in an 80x24 tmux pane shows the
// services' table, redraws it (a crash is counted as a restart, the crash
// loop is shown), and quits on q with exit 0, giving the terminal back.
func TestLiveViewInTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (.ci/run installs it)")
	}
	h := startHorust(t, runOpts{files: map[string]string{
		"web.toml":   svc(role("sleep")),
		"crash.toml": svc(role("exit", "3", "200ms"), "[restart]", `strategy = "always"`),
	}})
	h.waitState("web.toml", 20*time.Second, "RUNNING")
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	// The shell prints the exit code once horustctl has ended, and stays,
	// so that the pane can be read after q.
	script := horustctlBin + " -u " + h.uds + " top; echo horustctl-exit=$?; sleep 600"
	tmux(t, sock, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })

	var pane string
	capture := func() string { pane = tmux(t, sock, "capture-pane", "-p"); return pane }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the pane:\n%s", pane)
		}
	})
	eventually(t, 30*time.Second, "the view to show a restart of crash.toml and its crash loop", func() bool {
		capture()
		web, crash := paneRow(pane, "web.toml"), paneRow(pane, "crash.toml")
		if len(web) < 4 || len(crash) < 4 || web[1] != "RUNNING" {
			return false
		}
		restarts, err := strconv.Atoi(crash[3])
		return err == nil && restarts >= 1 && strings.Contains(pane, "crash loop")
	})
	for _, want := range []string{"q to quit", "NAME", "STATE", "RESTARTS", "UPTIME", "HEALTH"} {
		if !strings.Contains(pane, want) {
			t.Errorf("the pane lacks %q:\n%s", want, pane)
		}
	}
	// Redrawn: web.toml's uptime moves on.
	up := paneRow(pane, "web.toml")[4]
	eventually(t, 20*time.Second, "web.toml's uptime to change", func() bool {
		row := paneRow(capture(), "web.toml")
		return len(row) > 4 && row[4] != up
	})

	tmux(t, sock, "send-keys", "q")
	eventually(t, 20*time.Second, "horustctl to exit after q", func() bool {
		return strings.Contains(capture(), "horustctl-exit=")
	})
	if !strings.Contains(pane, "horustctl-exit=0") {
		t.Errorf("horustctl did not exit 0 after q:\n%s", pane)
	}
	// The view was on the alternate screen: the terminal is given back clean.
	if paneRow(pane, "web.toml") != nil {
		t.Errorf("the table stayed on the terminal after q:\n%s", pane)
	}
}

// TestLiveViewPlain: with stdout a pipe, horustctl status --watch prints
// the table again and again, a blank line between tables, and ends with
// exit 0 on SIGINT.
func TestLiveViewPlain(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{"plain.toml": svc(role("sleep"))}})
	h.waitState("plain.toml", 20*time.Second, "RUNNING")
	cmd := exec.Command(horustctlBin, "-u", h.uds, "status", "--watch", "plain.toml")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(out)
	var got []string
	for tables := 0; tables < 2 && sc.Scan(); {
		got = append(got, sc.Text())
		if strings.HasPrefix(sc.Text(), "plain.toml ") {
			tables++
		}
	}
	want := []string{"NAME", "plain.toml", "", "NAME", "plain.toml"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want lines starting with %q", got, want)
	}
	for i, l := range got {
		if f := strings.Fields(l); (want[i] == "" && l != "") || (want[i] != "" && (len(f) == 0 || f[0] != want[i])) {
			t.Fatalf("line %d is %q; got %q, want lines starting with %q", i, l, got, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("horustctl after SIGINT: %v, want exit 0", err)
	}
}

// TestTerminalLibraryOnlyInHorustctl: the live view's terminal library is
// linked into horustctl, never into horust.
func TestTerminalLibraryOnlyInHorustctl(t *testing.T) {
	for bin, want := range map[string]bool{horustBin: false, horustctlBin: true} {
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		has := false
		for _, d := range bi.Deps {
			has = has || d.Path == "github.com/gdamore/tcell/v2"
		}
		if has != want {
			t.Errorf("%s links tcell: %v, want %v", filepath.Base(bin), has, want)
		}
	}
}
