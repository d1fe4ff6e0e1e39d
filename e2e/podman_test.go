//go:build linux

package e2e

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The podman tests run horust where it lives: as PID 1 of a container, built
// by a real engine from the static binaries, FROM scratch plus a static
// busybox for the services' shell (no registry is needed). .ci/run installs
// podman, runc and busybox-static; the tests skip with the reason where no
// engine can run.

// podmanGrace is the grace period of podman stop: horust must be done well
// before it (a container killed by podman exits 137, not with horust's code).
const podmanGrace = 30

// podman runs podman as root with its own storage and state under a temporary folder,
// the runc runtime (crun refuses a hybrid cgroup layout), no default ulimits
// (setting RLIMIT_NPROC may be refused), and no network.
type podman struct {
	t    *testing.T
	dir  string
	conf string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	requireRoot(t)
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install podman runc)", tool)
		}
	}
	if err := staticELF("/bin/busybox"); err != nil {
		t.Skipf("no static busybox for the image (apt-get install busybox-static): %v", err)
	}
	dir := t.TempDir()
	p := &podman{t: t, dir: dir, conf: filepath.Join(dir, "containers.conf")}
	conf := fmt.Sprintf("[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"+
		"events_logger = \"file\"\ntmp_dir = %q\nvolume_path = %q\n", filepath.Join(dir, "tmp"), filepath.Join(dir, "volumes"))
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := p.run("info", "--format", "{{.Host.OCIRuntime.Name}}"); code != 0 {
		t.Skipf("podman cannot run here: %s", out)
	}
	t.Cleanup(func() {
		// Containers first: their mounts live under dir.
		p.run("rm", "--all", "--force", "--time", "0")
		p.run("rmi", "--all", "--force")
	})
	return p
}

// run runs podman with args and returns its combined output and exit code.
func (p *podman) run(args ...string) (string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "runroot"), "--storage-driver", "vfs"}
	cmd := exec.CommandContext(ctx, "podman", append(base, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), 0
}

// must runs podman with args and fails the test unless it exits 0.
func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, code := p.run(args...)
	if code != 0 {
		p.t.Fatalf("podman %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return strings.TrimSpace(out)
}

// exitCode waits for a container to stop and returns its exit code.
func (p *podman) exitCode(name string) string {
	p.t.Helper()
	return p.must("wait", name)
}

// build builds an image named tag from the static horust, horustctl and
// busybox, the services in services (file name to content) under
// /etc/horust/services, and the Containerfile lines in extra.
func (p *podman) build(tag string, services map[string]string, extra ...string) {
	p.t.Helper()
	ctx := filepath.Join(p.dir, "ctx-"+tag)
	rootfs := filepath.Join(ctx, "rootfs")
	for _, d := range []string{"bin", "etc/horust/services", "var/run", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777); err != nil {
		p.t.Fatal(err)
	}
	bins := staticBinaries(p.t)
	for src, dst := range map[string]string{bins.horust: "horust", bins.horustctl: "horustctl", "/bin/busybox": "bin/busybox"} {
		if err := copyFile(src, filepath.Join(rootfs, dst), 0o755); err != nil {
			p.t.Fatal(err)
		}
	}
	applets, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		p.t.Fatalf("busybox --list: %v", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
				p.t.Fatal(err)
			}
		}
	}
	for name, content := range services {
		if err := os.WriteFile(filepath.Join(rootfs, "etc/horust/services", name), []byte(content), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	containerfile := append([]string{"FROM scratch", "COPY rootfs/ /", "ENV PATH=/bin", "STOPSIGNAL SIGTERM"}, extra...)
	if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(strings.Join(containerfile, "\n")+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.must("build", "--quiet", "--tag", tag, ctx)
}

// staticELF says why path is not a static executable, or nil.
func staticELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

type static struct{ horust, horustctl string }

// staticBinaries builds horust and horustctl as the release does: no cgo,
// static. The e2e binaries may be dynamic (cgo is on where gcc is).
func staticBinaries(t *testing.T) static {
	t.Helper()
	dir := t.TempDir()
	s := static{filepath.Join(dir, "horust"), filepath.Join(dir, "horustctl")}
	for out, pkg := range map[string]string{s.horust: "../cmd/horust", s.horustctl: "../cmd/horustctl"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
		if err := staticELF(out); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// exampleServices are the files of examples/services, plus two services of
// the test: one whose children outlive it (orphans that horust, as PID 1,
// must reap) and one that fails, so that horust exits 101 with
// --unsuccessful-exit-finished-failed: an exit code no engine makes up.
func exampleServices(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../examples/services/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example services: %v", err)
	}
	svcs := map[string]string{}
	for _, f := range files {
		svcs[filepath.Base(f)] = readFile(f)
	}
	svcs["orphans.toml"] = `command = """/bin/sh -c '
  for i in 1 2 3; do (sh -c "sleep 0.$$i; touch /tmp/orphan.$$i" &); done
  echo "orphans: left 3 children"
  exec sleep 3600
'"""
`
	svcs["fails.toml"] = `command = "/bin/sh -c 'exit 3'"
[restart]
strategy = "never"
`
	return svcs
}

// zombies lists the processes of the container that are zombies, as
// "pid (comm)".
func (p *podman) zombies(name string) []string {
	p.t.Helper()
	out := p.must("exec", name, "/bin/sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null")
	var z []string
	for _, line := range strings.Split(out, "\n") {
		// pid (comm) state ...; comm may hold spaces, the state follows the last ')'.
		if i := strings.LastIndexByte(line, ')'); i > 0 && strings.HasPrefix(line[i+1:], " Z") {
			z = append(z, line[:i+1])
		}
	}
	return z
}

func TestPodmanServices(t *testing.T) {
	p := newPodman(t)
	p.build("horust-services", exampleServices(t),
		`ENTRYPOINT ["/horust", "--services-path", "/etc/horust/services", "--unsuccessful-exit-finished-failed"]`)
	const ctr = "horust-services"
	p.must("run", "--detach", "--name", ctr, "--network", "none",
		"--env", "HORUST_LOG=info", "--env", "HORUST_LOG_FORMAT=json", "horust-services")

	t.Run("horust is PID 1 and starts the example services", func(t *testing.T) {
		if comm := p.must("exec", ctr, "cat", "/proc/1/comm"); comm != "horust" {
			t.Fatalf("PID 1 is %q", comm)
		}
		want := map[string]string{"database.toml": "RUNNING", "migrate.toml": "FINISHED", "backend.toml": "RUNNING",
			"worker.toml": "RUNNING", "orphans.toml": "RUNNING", "fails.toml": "FINISHEDFAILED"}
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("last horustctl status --json:\n%s", last)
			}
		}()
		eventually(t, 60*time.Second, "the services in their states (horustctl status --json)", func() bool {
			out, code := p.run("exec", ctr, "/horustctl", "status", "--json")
			last = out
			var reply struct {
				Services []struct{ Name, State string }
			}
			if code != 0 || json.Unmarshal([]byte(out), &reply) != nil {
				return false
			}
			got := map[string]string{}
			for _, s := range reply.Services {
				got[s.Name] = s.State
			}
			for name, state := range want {
				if got[name] != state {
					return false
				}
			}
			return true
		})
		if table := p.must("exec", ctr, "/horustctl", "status"); !strings.Contains(table, "backend.toml") {
			t.Fatalf("horustctl status:\n%s", table)
		}
	})

	t.Run("orphans of a service leave no zombie", func(t *testing.T) {
		eventually(t, 30*time.Second, "the orphans to finish", func() bool {
			_, code := p.run("exec", ctr, "test", "-e", "/tmp/orphan.3")
			return code == 0
		})
		eventually(t, 30*time.Second, "no zombie in the container", func() bool {
			return len(p.zombies(ctr)) == 0
		})
	})

	t.Run("podman stop ends in order, with horust's exit code", func(t *testing.T) {
		p.must("stop", "--time", fmt.Sprint(podmanGrace), ctr)
		// 101: fails.toml is FinishedFailed; podman's SIGKILL would give 137.
		if code := p.exitCode(ctr); code != "101" {
			t.Fatalf("container exit code %s, want horust's 101", code)
		}
		logs := p.must("logs", ctr)
		order := exitOrder(logs)
		pos := map[string]int{}
		for i, name := range order {
			pos[name] = i
		}
		for _, first := range []string{"backend.toml", "worker.toml"} {
			if _, ok := pos[first]; !ok {
				t.Fatalf("%s never exited; exits in order: %v\n%s", first, order, logs)
			}
			if _, ok := pos["database.toml"]; !ok || pos[first] > pos["database.toml"] {
				t.Fatalf("database.toml (shutdown-after backend and worker) did not stop last; exits in order: %v\n%s", order, logs)
			}
		}
	})
}

// exitOrder lists the services in the order of horust's JSON log records
// about their exits (a "service" and an "exit_code" field), first exit only.
func exitOrder(logs string) []string {
	var order []string
	seen := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue // a service's own output
		}
		name, ok := rec["service"].(string)
		if _, exited := rec["exit_code"]; ok && exited && !seen[name] {
			seen[name] = true
			order = append(order, name)
		}
	}
	return order
}

func TestPodmanOneShot(t *testing.T) {
	p := newPodman(t)
	p.build("horust-oneshot", nil, `ENTRYPOINT ["/horust", "--"]`)

	t.Run("the command's exit code", func(t *testing.T) {
		out, code := p.run("run", "--rm", "--network", "none", "horust-oneshot", "/bin/sh", "-c", "echo hello; exit 7")
		if code != 7 || !strings.Contains(out, "hello") {
			t.Fatalf("exit %d, want 7; output:\n%s", code, out)
		}
	})

	t.Run("podman kill --signal HUP reaches the command", func(t *testing.T) {
		const ctr = "horust-oneshot-hup"
		p.must("run", "--detach", "--name", ctr, "--network", "none", "horust-oneshot",
			"/bin/sh", "-c", `trap "echo got HUP; exit 42" HUP; echo waiting; while :; do sleep 0.1; done`)
		eventually(t, 30*time.Second, "the command to set its trap", func() bool {
			out, _ := p.run("logs", ctr)
			return strings.Contains(out, "waiting")
		})
		p.must("kill", "--signal", "HUP", ctr)
		if code := p.exitCode(ctr); code != "42" {
			out, _ := p.run("logs", ctr)
			t.Fatalf("container exit code %s, want the command's 42; output:\n%s", code, out)
		}
		if out := p.must("logs", ctr); !strings.Contains(out, "got HUP") {
			t.Fatalf("the command did not see SIGHUP:\n%s", out)
		}
	})
}
