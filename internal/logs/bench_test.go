//go:build linux

package logs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"golang.org/x/sys/unix"
)

// The benchmarks write 1 MB blocks of 100-byte lines into the child's end of
// the pipe, as a service would, and report the copier's rate (MB/s); run
// them with -count and compare with benchstat. BenchmarkFloorDirectFile is
// the same writes straight into a file: the rate the copiers are measured
// against. Files go to /dev/shm when it exists, so the disk is not measured.

// benchBlock is 10485 lines of 99 bytes and a newline.
var benchBlock = bytes.Repeat(append(bytes.Repeat([]byte{'a'}, 99), '\n'), 10485)

func benchDir(b *testing.B) string {
	b.Helper()
	if dir, err := os.MkdirTemp("/dev/shm", "horust-logs-bench"); err == nil {
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func BenchmarkFloorDirectFile(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "direct.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(benchBlock)))
	for b.Loop() {
		if _, err := f.Write(benchBlock); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCopyRotate(b *testing.B) {
	dir := benchDir(b)
	out := NewOutputs(nil, nil, false)
	svc := &config.Service{Name: "bench.toml", Stdout: filepath.Join(dir, "out.log"), Stderr: "STDOUT",
		StdoutRotateSize: 64 << 20, StdoutRotateKeep: 1}
	benchCopy(b, svc, out)
}

func BenchmarkCopyPrefix(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "horust.out"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := NewOutputs(f, f, true)
	benchCopy(b, &config.Service{Name: "bench.toml", Stdout: "STDOUT", Stderr: "STDOUT"}, out)
}

func BenchmarkCopyPrefixTimestamps(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "horust.out"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := NewOutputs(f, f, true)
	benchCopy(b, &config.Service{Name: "bench.toml", Stdout: "STDOUT", Stderr: "STDOUT", Timestamps: true}, out)
}

// benchCopy writes b.N blocks into the child's end of svc's pipe and waits
// until the copier has written them all.
func benchCopy(b *testing.B, svc *config.Service, out *Outputs) {
	b.Helper()
	w, err := Setup(svc, out, nil)
	if err != nil {
		b.Fatal(err)
	}
	fd, err := unix.FcntlInt(w.Stdout.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		w.Abort()
		b.Fatal(err)
	}
	child := os.NewFile(uintptr(fd), "child stdout")
	done := make(chan struct{})
	w.Started(func() { close(done) })
	b.SetBytes(int64(len(benchBlock)))
	for b.Loop() {
		if _, err := child.Write(benchBlock); err != nil {
			b.Fatal(err)
		}
	}
	child.Close()
	<-done
	if st := out.Stats(svc.Name); st.Dropped != 0 {
		b.Fatalf("dropped %d bytes", st.Dropped)
	}
}

// BenchmarkService runs the measurement at a smaller scale: a real
// service, `yes <99 a> | head -c 256M`, writes 100-byte lines, and horust's
// side is direct (the floor: the child writes the file itself), rotation or
// prefixing. It reports MB/s, horust's CPU seconds per GB (user and system
// time of this process, which runs only the copier meanwhile) and the
// service's (sh, yes and head): in direct mode the service pays the write
// into the file that a copier pays in the other modes.
func BenchmarkService(b *testing.B) {
	const n = 256 << 20
	if _, err := exec.LookPath("yes"); err != nil {
		b.Skip("no yes(1)")
	}
	script := "yes " + strings.Repeat("a", 99) + " | head -c " + strconv.Itoa(n)
	for _, mode := range []string{"direct", "rotate", "prefix"} {
		b.Run(mode, func(b *testing.B) {
			dir := benchDir(b)
			f, err := os.Create(filepath.Join(dir, "horust.out"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			out := NewOutputs(f, f, false)
			svc := &config.Service{Name: "bench.toml", Stdout: filepath.Join(dir, "direct.log"), Stderr: "STDOUT"}
			switch mode {
			case "rotate":
				svc.Stdout, svc.StdoutRotateSize, svc.StdoutRotateKeep = filepath.Join(dir, "out.log"), 100<<20, 1
			case "prefix":
				svc.Stdout, svc.Prefix = "STDOUT", true
			}
			b.SetBytes(n)
			var cpu, childCPU time.Duration
			for b.Loop() {
				if err := os.Truncate(filepath.Join(dir, "horust.out"), 0); err != nil {
					b.Fatal(err)
				}
				os.Remove(filepath.Join(dir, "direct.log"))
				before, childBefore := selfCPU(), cpuOf(unix.RUSAGE_CHILDREN)
				w, err := Setup(svc, out, nil)
				if err != nil {
					b.Fatal(err)
				}
				p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", script}, &os.ProcAttr{Files: []*os.File{nil, w.Stdout, w.Stderr}})
				if err != nil {
					w.Abort()
					b.Fatal(err)
				}
				done := make(chan struct{})
				w.Started(func() { close(done) })
				if _, err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				<-done
				cpu += selfCPU() - before
				childCPU += cpuOf(unix.RUSAGE_CHILDREN) - childBefore
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N)/(n/1e9), "cpu-s/GB")
			b.ReportMetric(childCPU.Seconds()/float64(b.N)/(n/1e9), "service-cpu-s/GB")
		})
	}
}

// selfCPU is the user and system time of this process so far.
func selfCPU() time.Duration { return cpuOf(unix.RUSAGE_SELF) }

// cpuOf is the user and system time of this process (RUSAGE_SELF) or of its
// reaped children (RUSAGE_CHILDREN) so far.
func cpuOf(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTail1000Chunks reads the last 100 lines of a stream of 1,000
// chunks of 10 kB (horustctl logs -n 100 without the process and the
// socket): the chunks are listed, and only the newest are read.
func BenchmarkTail1000Chunks(b *testing.B) {
	path := filepath.Join(b.TempDir(), "out.log")
	chunk := bytes.Repeat(append(bytes.Repeat([]byte{'x'}, 99), '\n'), 100)
	for k := range 1000 {
		if err := os.WriteFile(chunkName(path, chunkID{k: int64(k)}), chunk, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	out := NewOutputs(nil, nil, false)
	svc := &config.Service{Name: "t.toml", Stdout: path, Stderr: "STDOUT", StdoutRotateSize: 10_000}
	lines := 0
	count := func(p []byte) error { lines += bytes.Count(p, []byte{'\n'}); return nil }
	for b.Loop() {
		lines = 0
		r, err := out.Open(svc, "stdout", count)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Tail(100); err != nil {
			b.Fatal(err)
		}
		r.Close()
		if lines != 100 {
			b.Fatalf("%d lines", lines)
		}
	}
}
