//go:build linux

package e2e

// End-to-end tests of horustctl logs (docs/logging.md "Reading output back"):
// the last lines of a file, of rotated chunks and of prefixed output, -f
// across rotations, and the refusals.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// logs-seq N READY: write the pid to READY, then at each SIGUSR1 write
	// the next N numbered lines "seq-000001" (one write each) to stdout and
	// "err-000001" every tenth to stderr; run until signalled otherwise.
	registerRole("logs-seq", func(args []string) int {
		var n int
		fmt.Sscan(logsArg(args, 0), &n)
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		ready(logsArg(args, 1))
		seq := 0
		for range ch {
			for range n {
				seq++
				if _, err := fmt.Printf("seq-%06d\n", seq); err != nil {
					return 3
				}
				if seq%10 == 0 {
					fmt.Fprintf(os.Stderr, "err-%06d\n", seq)
				}
			}
		}
		return 0
	})
}

// seqLines is lines from to to of logs-seq with prefix tag, every step-th.
func seqLines(tag string, from, to, step int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		if i%step == 0 {
			fmt.Fprintf(&b, "%s-%06d\n", tag, i)
		}
	}
	return b.String()
}

// seqService starts horust with one logs-seq service s.toml (with more
// TOML) writing n lines per SIGUSR1, and returns it with the service's pid.
func seqService(t *testing.T, n int, more ...string) (*horust, int) {
	t.Helper()
	readyFile := filepath.Join(t.TempDir(), "ready")
	h := startHorust(t, runOpts{files: map[string]string{
		"s.toml": svc(role("logs-seq", fmt.Sprint(n), readyFile), more...),
	}})
	return h, readPid(t, readyFile)
}

// usr1 makes the service write its next lines, and waits until want lines
// of it are where wait says.
func usr1(t *testing.T, pid int, what string, done func() bool) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, what, done)
}

func TestCtlLogsFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	h, pid := seqService(t, 50, fmt.Sprintf("stdout = %q\nstderr = \"STDOUT\"", out))
	usr1(t, pid, "50 lines in the file", func() bool { return strings.Contains(readFile(out), "seq-000050\n") })
	got, errOut, code := h.ctl("logs", "s.toml", "-n", "3")
	if want := "seq-000049\nseq-000050\nerr-000050\n"; code != 0 || got != want {
		t.Fatalf("logs -n 3: exit %d, %q (stderr %q), want %q", code, got, errOut, want)
	}
	// stderr follows stdout into the file: --stderr reads the same file.
	if got, _, code := h.ctl("logs", "s.toml", "--stderr", "-n", "1"); code != 0 || got != "err-000050\n" {
		t.Fatalf("logs --stderr -n 1: exit %d, %q", code, got)
	}
}

func TestCtlLogsRotatedChunks(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	h, pid := seqService(t, 400, fmt.Sprintf("stdout = %q", out), `stdout-rotate-size = "500"`)
	usr1(t, pid, "400 lines in the chunks", func() bool { return strings.Contains(readFile(out+".current"), "seq-000400\n") })
	chunks, _ := filepath.Glob(out + ".*")
	if len(chunks) < 8 {
		t.Fatalf("%d chunks, want more than 8 (4,400 bytes in chunks of 500)", len(chunks))
	}
	got, _, code := h.ctl("logs", "s.toml", "-n", "250")
	if want := seqLines("seq", 151, 400, 1); code != 0 || got != want {
		t.Fatalf("logs -n 250: exit %d, %d bytes, want %d: %q", code, len(got), len(want), got)
	}
	if got, _, code := h.ctl("logs", "s.toml"); code != 0 || got != seqLines("seq", 301, 400, 1) {
		t.Fatalf("logs (100 by default): exit %d, %q", code, got)
	}
	// stderr goes to horust's own stderr: refused, with the way out.
	_, errOut, code := h.ctl("logs", "s.toml", "--stderr")
	if code != 1 || !strings.Contains(errOut, "goes straight to horust's STDERR") || !strings.Contains(errOut, "stdout-prefix") {
		t.Fatalf("logs --stderr of direct output: exit %d, %q", code, errOut)
	}
}

// ctlFollow starts horustctl logs -f with args and returns its lines as
// they come; stop interrupts it (Ctrl-C) and returns its exit code.
func ctlFollow(t *testing.T, h *horust, args ...string) (lines <-chan string, stop func() int) {
	t.Helper()
	cmd := exec.Command(horustctlBin, append([]string{"-u", h.uds, "logs", "-f"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 100000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	stopped := false
	stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		_ = cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if err != nil {
			t.Logf("horustctl logs -f: %v, stderr %q", err, errb.String())
		}
		return cmd.ProcessState.ExitCode()
	}
	t.Cleanup(func() { stop() })
	return ch, stop
}

// collect reads lines until it has n of them.
func collect(t *testing.T, lines <-chan string, n int) []string {
	t.Helper()
	var got []string
	deadline := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("horustctl logs -f ended after %d lines, want %d", len(got), n)
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("%d lines after 30 s, want %d; the last: %q", len(got), n, got[max(0, len(got)-3):])
		}
	}
	return got
}

func TestCtlLogsFollowAcrossRotations(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	h, pid := seqService(t, 200, fmt.Sprintf("stdout = %q", out), `stdout-rotate-size = "1000"`, `stdout-rotate-keep = 50`)
	usr1(t, pid, "the first 200 lines", func() bool { return strings.Contains(readFile(out+".current"), "seq-000200\n") })
	lines, stop := ctlFollow(t, h, "s.toml", "-n", "2")
	if got := collect(t, lines, 2); strings.Join(got, ",") != "seq-000199,seq-000200" {
		t.Fatalf("the last 2 lines: %q", got)
	}
	// 2,000 lines more in ten bursts: about 20 cuts while it follows.
	for i := range 10 {
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		got := collect(t, lines, 200)
		if want := seqLines("seq", 201+200*i, 400+200*i, 1); strings.Join(got, "\n")+"\n" != want {
			t.Fatalf("burst %d: a line lost, doubled or out of order:\n%s", i, strings.Join(got, "\n"))
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("horustctl logs -f ended with %d on Ctrl-C, want 0", code)
	}
}

func TestCtlLogsPrefixed(t *testing.T) {
	h, pid := seqService(t, 30, "stdout-prefix = true")
	usr1(t, pid, "30 prefixed lines", func() bool { return strings.Contains(h.stdout.String(), "s.toml | seq-000030\n") })
	eventually(t, 10*time.Second, "the stderr lines", func() bool { return strings.Contains(h.stderr.String(), "s.toml | err-000030\n") })
	if got, _, code := h.ctl("logs", "s.toml", "-n", "2"); code != 0 || got != "seq-000029\nseq-000030\n" {
		t.Fatalf("logs -n 2: exit %d, %q", code, got)
	}
	if got, _, code := h.ctl("logs", "s.toml", "--stderr"); code != 0 || got != seqLines("err", 1, 30, 10) {
		t.Fatalf("logs --stderr: exit %d, %q", code, got)
	}
	lines, stop := ctlFollow(t, h, "s.toml", "-n", "1", "--stderr")
	// The last line says that the follow is under way.
	if got := collect(t, lines, 1); got[0] != "err-000030" {
		t.Fatalf("the last line: %q", got)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, lines, 3); strings.Join(got, "\n")+"\n" != seqLines("err", 31, 60, 10) {
		t.Fatalf("followed %q", got)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d on Ctrl-C", code)
	}
}

func TestCtlLogsRefusals(t *testing.T) {
	h := startHorust(t, runOpts{files: map[string]string{"web.toml": svc(role("sleep"))}})
	h.waitState("web.toml", 10*time.Second, "RUNNING")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"output straight to horust's stdout", []string{"logs", "web.toml"}, 1,
			`horustctl: output not kept by horust: the stdout of 'web.toml' goes straight to horust's STDOUT (zero copy) and horust never sees it; to read it with horustctl logs, send it to a file (stdout = "/var/log/web.log") or set stdout-prefix = true` + "\n"},
		{"an unknown service", []string{"logs", "nope.toml"}, 1, "horustctl: no such service 'nope.toml'\n"},
		{"a near miss", []string{"logs", "web"}, 1, "horustctl: no such service 'web'; did you mean 'web.toml'?\n"},
		{"no name", []string{"logs"}, 2, "horustctl: logs needs exactly one service name\n"},
		{"negative lines", []string{"logs", "web.toml", "-n", "-1"}, 2, "horustctl: --lines must be 0 or more\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := h.ctl(tt.args...)
			if code != tt.code || out != "" || !strings.HasPrefix(errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q\nwant exit %d, stderr %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}
