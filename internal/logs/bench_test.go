package logs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
