//go:build linux

package e2e

// Measurements of horustctl logs (docs/benchmarks.md "horustctl logs"):
//
//	go test -run '^$' -bench CtlLogs -benchtime 5x ./e2e/

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// logs-rate BYTES SECONDS: write "ready" to stdout, wait for SIGUSR1,
	// then write BYTES per second of 100-byte lines "r-<seq> aaa..." for
	// SECONDS, in a write every 10 ms, then "end" and wait for TERM.
	registerRole("logs-rate", func(args []string) int {
		rate, _ := strconv.Atoi(logsArg(args, 0))
		secs, _ := strconv.Atoi(logsArg(args, 1))
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1, syscall.SIGTERM)
		os.Stdout.WriteString("ready\n")
		if <-ch == syscall.SIGTERM {
			return 0
		}
		perTick := rate / 100 / 100 // lines per 10 ms
		tick := time.NewTicker(10 * time.Millisecond)
		seq := 0
		var buf []byte
		for range secs * 100 {
			<-tick.C
			buf = buf[:0]
			for range perTick {
				l := fmt.Appendf(buf[len(buf):], "r-%09d ", seq)
				buf = append(buf, l...)
				buf = append(buf, bytes.Repeat([]byte{'a'}, 99-len(l))...)
				buf = append(buf, '\n')
				seq++
			}
			if _, err := os.Stdout.Write(buf); err != nil {
				return 3
			}
		}
		os.Stdout.WriteString("end\n")
		signal.Reset(syscall.SIGUSR1)
		<-ch
		return 0
	})
}

// benchHorust runs horust on the services in dir, with its socket in uds,
// until the benchmark ends.
func benchHorust(b *testing.B, dir, uds string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(horustBin, "--services-path", dir, "--uds-folder-path", uds)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command(horustctlBin, "-u", uds, "wait", "--timeout", "10s", "s.toml").CombinedOutput()
		if err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			b.Fatalf("horust did not start s.toml: %s", out)
		}
	}
}

// BenchmarkCtlLogsTail1000Chunks: horustctl logs -n 100 on a service with
// 1,000 rotated chunks of 10 kB, next to horustctl status (the same process
// start and connection, no reading) as the floor.
func BenchmarkCtlLogsTail1000Chunks(b *testing.B) {
	dir, uds, logDir := b.TempDir(), b.TempDir(), b.TempDir()
	path := filepath.Join(logDir, "out.log")
	line := strings.Repeat("x", 99) + "\n"
	chunk := []byte(strings.Repeat(line, 100))
	for k := range 1000 {
		if err := os.WriteFile(chunkName(path, k), chunk, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	toml := svc(role("sleep"), fmt.Sprintf("stdout = %q", path), `stdout-rotate-size = "10 kB"`)
	if err := os.WriteFile(filepath.Join(dir, "s.toml"), []byte(toml), 0o644); err != nil {
		b.Fatal(err)
	}
	benchHorust(b, dir, uds)
	for _, c := range []struct {
		name string
		args []string
		want int // lines
	}{
		{"status", []string{"status", "s.toml"}, 1},
		{"logs-n100", []string{"logs", "s.toml", "-n", "100"}, 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				out, err := exec.Command(horustctlBin, append([]string{"-u", uds}, c.args...)...).Output()
				if err != nil || bytes.Count(out, []byte("\n")) != c.want {
					b.Fatalf("%v: %d lines, %v", c.args, bytes.Count(out, []byte("\n")), err)
				}
			}
		})
	}
}

func chunkName(path string, k int) string {
	if k == 0 {
		return path
	}
	return path + "." + strconv.Itoa(k)
}

// BenchmarkCtlLogsFollow10MBs: a service writes 10 MB/s of 100-byte lines
// for 5 s into 1 MB chunks; horust's CPU (in % of a core over the 5 s) is
// measured without a follower and with horustctl logs -f, which must get
// every line once and in order.
func BenchmarkCtlLogsFollow10MBs(b *testing.B) {
	const rate, secs = 10_000_000, 5
	for _, follow := range []bool{false, true} {
		b.Run(fmt.Sprintf("follow=%v", follow), func(b *testing.B) {
			var cpu float64
			for b.Loop() {
				cpu += followRun(b, rate, secs, follow)
			}
			b.ReportMetric(cpu/float64(b.N), "%cpu")
		})
	}
}

func followRun(b *testing.B, rate, secs int, follow bool) float64 {
	dir, uds, logDir := b.TempDir(), b.TempDir(), b.TempDir()
	path := filepath.Join(logDir, "out.log")
	toml := svc(role("logs-rate", strconv.Itoa(rate), strconv.Itoa(secs)), fmt.Sprintf("stdout = %q", path), `stdout-rotate-size = "1 MB"`)
	if err := os.WriteFile(filepath.Join(dir, "s.toml"), []byte(toml), 0o644); err != nil {
		b.Fatal(err)
	}
	h := benchHorust(b, dir, uds)
	var got chan error
	if follow {
		ctl := exec.Command(horustctlBin, "-u", uds, "logs", "-f", "-n", "1", "s.toml")
		out, err := ctl.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := ctl.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			// Closing the pipe first: a horustctl blocked writing to it
			// (the check below stopped reading) would not see Ctrl-C.
			_ = ctl.Process.Signal(os.Interrupt)
			_ = out.Close()
			_ = ctl.Wait()
		}()
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			b.Fatalf("first line %q", sc.Text())
		}
		got = make(chan error, 1)
		go func() { got <- checkSeq(sc) }()
	} else {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(readFile(path+".current"), "ready\n") && readFile(path) != "ready\n" {
			if time.Now().After(deadline) {
				b.Fatal("the service did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	pid := servicePid(b, uds)
	before, t0 := cpuTicks(b, h.Process.Pid), time.Now()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	if follow {
		if err := <-got; err != nil {
			b.Fatal(err)
		}
	} else {
		deadline := time.Now().Add(time.Duration(secs+30) * time.Second)
		for !strings.HasSuffix(readFile(path+".current"), "end\n") {
			if time.Now().After(deadline) {
				b.Fatal("the service did not finish")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ticks := cpuTicks(b, h.Process.Pid) - before
	return float64(ticks) / 100 / time.Since(t0).Seconds() * 100
}

// checkSeq reads the lines of logs-rate up to "end": each r-<seq> once, in order.
func checkSeq(sc *bufio.Scanner) error {
	next := 0
	for sc.Scan() {
		l := sc.Text()
		if l == "end" {
			return nil
		}
		var seq int
		if _, err := fmt.Sscanf(l, "r-%d ", &seq); err != nil || seq != next || len(l) != 99 {
			return fmt.Errorf("line %d: %.40q", next, l)
		}
		next++
	}
	return fmt.Errorf("the follow ended after %d lines: %v", next, sc.Err())
}

// servicePid is the pid of s.toml.
func servicePid(b *testing.B, uds string) int {
	out, err := exec.Command(horustctlBin, "-u", uds, "--json", "status", "s.toml").Output()
	if err != nil {
		b.Fatal(err)
	}
	var pid int
	if i := bytes.Index(out, []byte(`"pid": `)); i >= 0 {
		fmt.Sscan(string(out[i+7:]), &pid)
	}
	if pid == 0 {
		b.Fatalf("no pid in %s", out)
	}
	return pid
}
