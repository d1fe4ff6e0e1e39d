//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func writeService(t *testing.T, dir, name, body string) {
	t.Helper()
	// Written aside and renamed, as an editor or a deployment tool does:
	// a reload never sees half a file.
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// names lists the services horust knows.
func (h *horust) names() []string {
	h.t.Helper()
	list, err := h.client().List(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, st := range list {
		out = append(out, st.Name)
	}
	return out
}

func TestReloadAddsRemovesChangesAndKeeps(t *testing.T) {
	out := t.TempDir()
	changeFile := filepath.Join(out, "change")
	h := startHorust(t, runOpts{files: map[string]string{
		"keep.toml":   svc(role("sleep")),
		"change.toml": svc(role("append-sleep", changeFile, "v1")),
		"drop.toml":   svc(role("sleep")),
	}})
	for _, n := range []string{"keep.toml", "change.toml", "drop.toml"} {
		h.waitState(n, 20*time.Second, "RUNNING")
	}
	keepPID := h.status("keep.toml").PID
	dropPID := h.status("drop.toml").PID

	writeService(t, h.dir, "change.toml", svc(role("append-sleep", changeFile, "v2")))
	writeService(t, h.dir, "new.toml", svc(role("sleep"), `start-after = ["keep.toml"]`))
	if err := os.Remove(filepath.Join(h.dir, "drop.toml")); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := h.ctl("reload", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "dry run: nothing was changed (1 to add, 1 to remove, 1 to restart)") ||
		!strings.Contains(stdout, "changed    change.toml  (command)") {
		t.Fatalf("reload --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if h.state("drop.toml") != "RUNNING" || h.state("new.toml") != "" || strings.Contains(readFile(changeFile), "v2") {
		t.Fatal("the dry run changed something")
	}

	stdout, stderr, code = h.ctl("reload")
	if code != 0 || !strings.Contains(stdout, "reloaded: configuration generation 2 (1 added, 1 removed, 1 restarted)") {
		t.Fatalf("reload: exit %d\n%s%s", code, stdout, stderr)
	}
	h.waitState("new.toml", 20*time.Second, "RUNNING")
	eventually(t, 20*time.Second, "change.toml to run its new definition", func() bool {
		return strings.Contains(readFile(changeFile), "v2") && h.state("change.toml") == "RUNNING"
	})
	eventually(t, 20*time.Second, "drop.toml to be stopped and forgotten", func() bool {
		_, err := h.client().Get(context.Background(), "drop.toml")
		return errors.Is(err, control.ErrNotFound) && !pidAlive(dropPID)
	})
	if st := h.status("keep.toml"); st.PID != keepPID || st.Restarts != 0 {
		t.Fatalf("the unchanged service was touched: %+v (pid was %d)", st, keepPID)
	}
	if got := strings.Join(h.names(), " "); got != "change.toml keep.toml new.toml" && got != "keep.toml change.toml new.toml" {
		t.Fatalf("services after the reload: %s", got)
	}
	stdout, _, _ = h.ctl("status")
	if !strings.Contains(stdout, "configuration generation 2; last reload") || !strings.Contains(stdout, "(control socket): ok") {
		t.Fatalf("status does not show the reload:\n%s", stdout)
	}

	// A bad file changes nothing and is reported with its file, line and key.
	writeService(t, h.dir, "bad.toml", "command = \"x\"\n[restart]\nstrategy = \"sometimes\"\n")
	stdout, stderr, code = h.ctl("reload")
	if code != 1 || !strings.Contains(stderr, filepath.Join(h.dir, "bad.toml")+":3") || !strings.Contains(stderr, "restart.strategy") ||
		!strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("reload of a bad file: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if h.state("bad.toml") != "" || h.status("keep.toml").PID != keepPID {
		t.Fatal("a bad reload changed something")
	}
	cfg, err := h.client().Config(context.Background())
	if err != nil || cfg.Generation != 2 || cfg.ReloadsInvalid != 1 || cfg.LastReload.Result != "invalid" {
		t.Fatalf("config %+v, %v", cfg, err)
	}
}

func TestReloadSIGHUPInOneShotModeIsForwarded(t *testing.T) {
	file := filepath.Join(t.TempDir(), "trap")
	h := startHorust(t, runOpts{noArgs: true, args: []string{"--uds-folder-path", t.TempDir(), "--", selfBin, "role:trap", "HUP", "7", "0s", file}})
	readPid(t, file)
	h.signal(syscall.SIGHUP)
	if code := h.wait(20 * time.Second); code != 7 {
		t.Fatalf("exit code %d, want the command's 7 after it got SIGHUP", code)
	}
	if !strings.Contains(readFile(file), "got HUP") {
		t.Fatal("the command did not get SIGHUP")
	}
}

func TestReloadDuringACrashLoop(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{
		"crash.toml": svc("/bin/false", "[restart]\nstrategy = \"always\"\nmax-backoff = \"200ms\""),
	}})
	eventually(t, 20*time.Second, "a crash loop", func() bool { return h.status("crash.toml").Restarts >= 3 })
	if _, stderr, code := h.ctl("reload"); code != 0 {
		t.Fatalf("unchanged reload: %d %s", code, stderr)
	}
	before := h.status("crash.toml").Restarts
	eventually(t, 20*time.Second, "the crash loop to go on, its count kept", func() bool { return h.status("crash.toml").Restarts > before })
	// Changed into a service that runs: it starts over and runs.
	writeService(t, h.dir, "crash.toml", svc(role("sleep"), "[restart]\nstrategy = \"always\""))
	if _, stderr, code := h.ctl("reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, stderr)
	}
	h.waitState("crash.toml", 20*time.Second, "RUNNING")
	if st := h.status("crash.toml"); st.Restarts != 0 || st.QuickExits != 0 {
		t.Fatalf("the changed service did not start over: %+v", st)
	}
}

func TestReloadDuringShutdownIsRefused(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := startHorust(t, runOpts{files: map[string]string{
		"slow.toml": svc(role("ignore-term", pidFile), "[termination]\nwait = \"3s\""),
	}})
	readPid(t, pidFile)
	h.waitState("slow.toml", 20*time.Second, "RUNNING")
	h.signal(syscall.SIGTERM)
	h.waitState("slow.toml", 20*time.Second, "INKILLING")
	_, stderr, code := h.ctl("reload")
	if code != 1 || !strings.Contains(stderr, "shutting down") {
		t.Fatalf("reload during shutdown: exit %d, %s", code, stderr)
	}
	if code := h.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestReloadWatchSeesAConfigMapSwap(t *testing.T) {
	// A ConfigMap volume: the files are symlinks through ..data, which is
	// swapped to a new directory in one rename.
	dir := t.TempDir()
	gen := func(name string, files map[string]string) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, body := range files {
			if err := os.WriteFile(filepath.Join(d, n), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
				if err := os.Symlink("..data/"+n, filepath.Join(dir, n)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	gen("..v1", map[string]string{"a.toml": svc(role("sleep"))})
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	uds := t.TempDir()
	h := startHorust(t, runOpts{noArgs: true, args: []string{"--services-path", dir, "--uds-folder-path", uds, "--watch"}})
	h.uds = uds
	h.waitState("a.toml", 20*time.Second, "RUNNING")
	aPID := h.status("a.toml").PID

	gen("..v2", map[string]string{"a.toml": svc(role("sleep")), "b.toml": svc(role("sleep"))})
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	h.waitState("b.toml", 20*time.Second, "RUNNING")
	if h.status("a.toml").PID != aPID {
		t.Fatal("the unchanged service was restarted")
	}
	cfg, err := h.client().Config(context.Background())
	if err != nil || cfg.LastReload == nil || cfg.LastReload.Trigger != "watch" {
		t.Fatalf("config %+v, %v", cfg, err)
	}
}

// TestReloadLeavesNothingBehind reloads 100 times with 100 services, each
// reload adding, removing and changing a few of them: horust's descriptors,
// goroutines and memory stay flat.
func TestReloadLeavesNothingBehind(t *testing.T) {
	const n = 100
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("s%03d.toml", i)] = svc("/bin/sleep 3600", "[termination]\nwait = \"1s\"")
	}
	h := startHorust(t, runOpts{files: files})
	c := h.client()
	eventually(t, 60*time.Second, "every service to run", func() bool {
		list, err := c.List(context.Background())
		if err != nil || len(list) != n {
			return false
		}
		for _, st := range list {
			if st.State != status.Running {
				return false
			}
		}
		return true
	})
	pid := h.cmd.Process.Pid
	round := func(r int) {
		t.Helper()
		// Remove one, add one back, change one.
		a, b := fmt.Sprintf("s%03d.toml", r%n), fmt.Sprintf("s%03d.toml", (r+50)%n)
		_ = os.Remove(filepath.Join(h.dir, a))
		writeService(t, h.dir, b, svc("/bin/sleep 3600", fmt.Sprintf("[termination]\nwait = \"1s\"\n[environment]\nadditional = { ROUND = \"%d\" }", r)))
		if _, err := c.Reload(context.Background(), false); err != nil {
			t.Fatalf("reload %d: %v", r, err)
		}
		writeService(t, h.dir, a, svc("/bin/sleep 3600", "[termination]\nwait = \"1s\""))
		if _, err := c.Reload(context.Background(), false); err != nil {
			t.Fatalf("reload %d: %v", r, err)
		}
	}
	settled := func() {
		t.Helper()
		eventually(t, 60*time.Second, "every service to run again", func() bool {
			list, err := c.List(context.Background())
			if err != nil || len(list) != n {
				return false
			}
			for _, st := range list {
				if st.State != status.Running {
					return false
				}
			}
			return true
		})
	}
	measure := func() (fds, goroutines, rssKB int) {
		t.Helper()
		resp, err := ctlHTTP(ctlSocket(t, h)).Get("http://horust/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return countFDs(pid), int(fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue()), procStatusKB(t, pid, "VmRSS")
	}
	for r := range 10 { // warm up: pools and maps reach their size
		round(r)
	}
	settled()
	fds0, g0, rss0 := measure()
	for r := 10; r < 50; r++ {
		round(r)
	}
	settled()
	fds1, g1, rss1 := measure()
	t.Logf("after 20 reloads: %d fds, %d goroutines, %d kB; after 100: %d fds, %d goroutines, %d kB", fds0, g0, rss0, fds1, g1, rss1)
	if fds1 > fds0+2 || g1 > g0+5 {
		t.Fatalf("reloads leak: %d → %d fds, %d → %d goroutines", fds0, fds1, g0, g1)
	}
	if rss1 > rss0+4096 {
		t.Fatalf("reloads leak memory: VmRSS %d → %d kB", rss0, rss1)
	}
}
