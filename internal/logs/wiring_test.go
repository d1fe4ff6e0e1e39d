//go:build linux

package logs

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"golang.org/x/sys/unix"
)

// fileType returns the S_IFMT bits of f.
func fileType(t *testing.T, f *os.File) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & unix.S_IFMT
}

func TestDirectOutput(t *testing.T) {
	// Direct output: no pipe and no copier; the child writes into horust's
	// own fds or into a file horust opened in append mode.
	tests := []struct {
		name           string
		stdout, stderr string // "F" and "G" are files of the test
		wantF, wantG   string
		wantOut        string
		wantErr        string
		shared         bool
	}{
		{"defaults: horust's stdout and stderr", "STDOUT", "STDERR", "", "", "o1\no2\n", "e1\n", false},
		{"stdout to a file", "F", "STDERR", "o1\no2\n", "", "", "e1\n", false},
		{"stderr follows stdout into the file", "F", "STDOUT", "o1\ne1\no2\n", "", "", "", true},
		{"stdout follows stderr into the file", "STDERR", "G", "", "o1\ne1\no2\n", "", "", true},
		{"two files", "F", "G", "o1\no2\n", "e1\n", "", "", false},
		{"the same file twice is one file", "F", "./F", "o1\ne1\no2\n", "", "", "", true},
		{"stdout to horust's stderr", "STDERR", "STDERR", "", "", "", "o1\ne1\no2\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // relative paths are relative to horust's cwd
			out, outPath, errPath := testOutputs(t, false, false)
			svc := &config.Service{Name: "d.toml", Stdout: tt.stdout, Stderr: tt.stderr}
			w, err := Setup(svc, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.copiers) != 0 {
				t.Fatalf("%d copiers for direct output", len(w.copiers))
			}
			if (w.Stdout == w.Stderr) != tt.shared {
				t.Fatalf("stdout and stderr shared: %v, want %v", w.Stdout == w.Stderr, tt.shared)
			}
			for _, f := range []*os.File{w.Stdout, w.Stderr} {
				if f != out.stdout && f != out.stderr && fileType(t, f) != unix.S_IFREG {
					t.Fatalf("child gets %s, not a regular file", f.Name())
				}
			}
			c := startWired(t, w, "out:o1\n", "err:e1\n", "out:o2\n")
			c.wait(t)
			for path, want := range map[string]string{"F": tt.wantF, "G": tt.wantG, outPath: tt.wantOut, errPath: tt.wantErr} {
				got, err := os.ReadFile(path)
				if err != nil && want != "" {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s: %q, want %q", path, got, want)
				}
			}
		})
	}
}

func TestDirectFileAppendsAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "svc.log")
	if err := os.WriteFile(path+".old", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, _ := testOutputs(t, false, false)
	svc := &config.Service{Name: "a.toml", Stdout: path, Stderr: "STDERR"}
	run(t, svc, out, "out:first\n")
	run(t, svc, out, "out:second\n")
	if got := readFile(t, path); got != "first\nsecond\n" {
		t.Fatalf("%q: the second start did not append", got)
	}
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o644 &^ umask); info.Mode().Perm() != want {
		t.Fatalf("mode %v, want %v", info.Mode().Perm(), want)
	}
}

func TestWriteThenExitLosesNothing(t *testing.T) {
	// A service that writes a lot and exits at once: when onDone runs,
	// everything is in place.
	const n = 3 << 20
	tests := []struct {
		name   string
		svc    func(dir string) *config.Service
		result func(t *testing.T, dir, horustOut string) int
	}{
		{"direct file", func(dir string) *config.Service {
			return &config.Service{Name: "w.toml", Stdout: filepath.Join(dir, "o"), Stderr: "STDOUT"}
		}, func(t *testing.T, dir, _ string) int { return len(readFile(t, filepath.Join(dir, "o"))) }},
		{"rotation", func(dir string) *config.Service {
			return &config.Service{Name: "w.toml", Stdout: filepath.Join(dir, "o"), Stderr: "STDOUT", StdoutRotateSize: 1 << 20}
		}, func(t *testing.T, dir, _ string) int {
			total := 0
			for _, size := range dirSizes(t, dir) {
				total += int(size)
			}
			return total
		}},
		{"prefix", func(dir string) *config.Service {
			return &config.Service{Name: "w.toml", Stdout: "STDOUT", Stderr: "STDOUT", Prefix: true}
		}, func(t *testing.T, _, horustOut string) int {
			text := readFile(t, horustOut)
			if !strings.HasSuffix(text, "w.toml | "+strings.Repeat("z", (n-1)%(64<<10))+"\n") {
				t.Fatalf("output ends with %q", text[max(0, len(text)-100):])
			}
			return strings.Count(text, "z") + 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out, horustOut, _ := testOutputs(t, false, false)
			c, _ := start(t, tt.svc(dir), out, "fill:z:"+strconv.Itoa(n-1), "err:\n")
			if tt.name == "direct file" {
				// onDone is called by Started: the child writes the
				// file itself.
				c.wait(t)
			}
			select {
			case <-c.done:
			case <-time.After(20 * time.Second):
				t.Fatal("onDone was not called")
			}
			// Checked before the child is reaped (when piped): onDone
			// alone says the output is complete.
			if got := tt.result(t, dir, horustOut); got != n {
				t.Fatalf("%d bytes of output at onDone, want %d", got, n)
			}
			if tt.name != "direct file" {
				c.wait(t)
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "x.log")
	under := filepath.Join(notDir, "x.log")
	tests := []struct {
		name string
		svc  config.Service
		want string
	}{
		{"stdout in a missing directory", config.Service{Stdout: missing, Stderr: "STDERR"},
			`service "bad.toml": stdout: open ` + missing + `: no such file or directory`},
		{"stderr under a regular file", config.Service{Stdout: "STDOUT", Stderr: under},
			`service "bad.toml": stderr: open ` + under + `: not a directory`},
		{"rotated stdout in a missing directory", config.Service{Stdout: missing, Stderr: "STDERR", StdoutRotateSize: 10},
			`service "bad.toml": stdout: open ` + missing + `: no such file or directory`},
		{"rotated stderr, after a good stdout", config.Service{Stdout: filepath.Join(dir, "ok.log"), Stderr: missing, StderrRotateSize: 10},
			`service "bad.toml": stderr: open ` + missing + `: no such file or directory`},
		{"stdout following an unwritable stderr", config.Service{Stdout: "STDERR", Stderr: missing},
			`service "bad.toml": stderr: open ` + missing + `: no such file or directory`},
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name string
			svc  config.Service
			want string
		}{"stdout in a read-only directory", config.Service{Stdout: filepath.Join(ro, "x.log"), Stderr: "STDERR"},
			`service "bad.toml": stdout: open ` + filepath.Join(ro, "x.log") + `: permission denied`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, _ := testOutputs(t, true, false)
			before := openFDs(t)
			svc := tt.svc
			svc.Name = "bad.toml"
			w, err := Setup(&svc, out, nil)
			if err == nil {
				w.Abort()
				t.Fatal("Setup succeeded")
			}
			if err.Error() != tt.want {
				t.Fatalf("error %q\nwant  %q", err, tt.want)
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d fds open after a failed Setup, %d before", after, before)
			}
		})
	}
}

func TestNothingLeaks(t *testing.T) {
	dir := t.TempDir()
	svcs := map[string]*config.Service{
		"direct":  {Stdout: filepath.Join(dir, "d.log"), Stderr: "STDERR"},
		"rotated": {Stdout: filepath.Join(dir, "r.log"), Stderr: filepath.Join(dir, "e.log"), StdoutRotateSize: 10, StderrRotateSize: 10},
		"prefix":  {Stdout: "STDOUT", Stderr: "STDERR", Prefix: true},
	}
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		svc := svcs[name]
		svc.Name = name
		t.Run(name+": Abort closes everything", func(t *testing.T) {
			out, _, _ := testOutputs(t, false, false)
			before := openFDs(t)
			w, err := Setup(svc, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.Abort()
			w.Abort()
			if after := openFDs(t); after != before {
				t.Fatalf("%d fds open after Abort, %d before", after, before)
			}
		})
		t.Run(name+": a finished run closes everything", func(t *testing.T) {
			out, _, _ := testOutputs(t, false, false)
			before := openFDs(t)
			c, w := start(t, svc, out, "out:0123456789abcdef\n", "err:x\n")
			c.wait(t)
			w.Started(func() { t.Error("onDone called by a second Started") })
			if after := openFDs(t); after != before {
				t.Fatalf("%d fds open after the run, %d before", after, before)
			}
		})
	}
}

func TestPipeEnds(t *testing.T) {
	// The child's end is blocking (a service's stdout must not turn
	// O_NONBLOCK), both ends are close-on-exec.
	out, _, _ := testOutputs(t, false, false)
	svc := &config.Service{Name: "p.toml", Stdout: "STDOUT", Stderr: "STDERR", Prefix: true}
	w, err := Setup(svc, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if fileType(t, w.Stdout) != unix.S_IFIFO {
		t.Fatal("the child's stdout is not a pipe")
	}
	rfd := int(w.copiers[0].r.Fd())
	for _, fd := range []int{int(w.Stdout.Fd()), rfd} {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Fatalf("fd %d is not close-on-exec (%v)", fd, err)
		}
	}
	fl, err := unix.FcntlInt(w.Stdout.Fd(), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Fatalf("the child's end is non-blocking (%v)", err)
	}
}

// smallTmpfs mounts a tmpfs of 64 KiB for the test, or skips.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestRotationOnAFullDisk(t *testing.T) {
	const n = 1 << 20
	t.Run("keeping every chunk fills the disk: the rest is dropped and counted", func(t *testing.T) {
		dir := smallTmpfs(t)
		out, _, _ := testOutputs(t, false, false)
		var logged logCounter
		svc := rotSvc(filepath.Join(dir, "out.log"), 16<<10, 0)
		w, err := Setup(svc, out, logged.logger())
		if err != nil {
			t.Fatal(err)
		}
		startWired(t, w, "fill:f:"+strconv.Itoa(n)).wait(t)
		st := out.Stats(svc.Name)
		if st.Dropped == 0 || st.Copied+st.Dropped != n {
			t.Fatalf("stats %+v, want some dropped and %d in all", st, n)
		}
		var onDisk int64
		chunks := dirSizes(t, dir)
		for _, size := range chunks {
			onDisk += size
		}
		if onDisk != int64(st.Copied) {
			t.Fatalf("%d bytes on disk, %d counted as copied", onDisk, st.Copied)
		}
		// Dropped bytes do not fill chunks: no empty chunk is cut while
		// the disk is full (they would use up stdout-rotate-keep).
		empty := 0
		for _, size := range chunks {
			if size == 0 {
				empty++
			}
		}
		if empty > 1 || len(chunks) > 5 {
			t.Fatalf("chunks %s: want at most 5 (64 KiB / 16 KiB + the current), at most one empty", formatSizes(chunks))
		}
		if got := logged.count("service output dropped"); got != 1 {
			t.Fatalf("logged %d times, want once: %s", got, logged.text())
		}
	})
	t.Run("keeping one old chunk never fills it", func(t *testing.T) {
		dir := smallTmpfs(t)
		out, _, _ := testOutputs(t, false, false)
		svc := rotSvc(filepath.Join(dir, "out.log"), 16<<10, 1)
		run(t, svc, out, "fill:f:"+strconv.Itoa(n))
		if st := out.Stats(svc.Name); st.Dropped != 0 || st.Copied != n {
			t.Fatalf("stats %+v", st)
		}
		if got := dirSizes(t, dir); len(got) != 2 {
			t.Fatalf("chunks %s, want 2", formatSizes(got))
		}
	})
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		svc  config.Service
		want []string
	}{
		{"defaults", config.Service{Stdout: "STDOUT", Stderr: "STDERR"}, nil},
		{"rotation on STDOUT", config.Service{Stdout: "STDOUT", Stderr: "STDERR", StdoutRotateSize: 10},
			[]string{"stdout-rotate-size is ignored: stdout goes to STDOUT, rotation needs a file"}},
		{"rotation on STDERR", config.Service{Stdout: "/f", Stderr: "STDERR", StderrRotateSize: 10},
			[]string{"stderr-rotate-size is ignored: stderr goes to STDERR, rotation needs a file"}},
		{"stderr rotation while following stdout", config.Service{Stdout: "/f", Stderr: "STDOUT", StdoutRotateSize: 5, StderrRotateSize: 10},
			[]string{"stderr-rotate-size is ignored: stderr follows stdout"}},
		{"stdout rotation while following stderr", config.Service{Stdout: "STDERR", Stderr: "/f", StdoutRotateSize: 10},
			[]string{"stdout-rotate-size is ignored: stdout follows stderr"}},
		{"keep without size", config.Service{Stdout: "/f", Stderr: "STDERR", StdoutRotateKeep: 3},
			[]string{"stdout-rotate-keep is ignored without stdout-rotate-size"}},
		{"timestamp suffix without rotation", config.Service{Stdout: "/f", Stderr: "STDERR", AppendTimestamp: true},
			[]string{"stdout-should-append-timestamp-to-filename is ignored without rotation"}},
		{"timestamp suffix with stderr rotation", config.Service{Stdout: "STDOUT", Stderr: "/e", StderrRotateSize: 9, AppendTimestamp: true}, nil},
		{"one file, two rotations", config.Service{Stdout: "/f", Stderr: "/f", StdoutRotateSize: 10, StderrRotateSize: 20},
			[]string{"stdout and stderr are the same file: stdout-rotate-size and stdout-rotate-keep apply, stderr-rotate-size and stderr-rotate-keep are ignored"}},
		{"one file, one rotation", config.Service{Stdout: "/f", Stderr: "/f", StderrRotateSize: 20}, nil},
		{"prefix with files only", config.Service{Stdout: "/f", Stderr: "/e", Prefix: true},
			[]string{"stdout-prefix is ignored: no output goes to STDOUT or STDERR"}},
		{"prefix with stderr on STDERR", config.Service{Stdout: "/f", Stderr: "STDERR", Prefix: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Warnings(&tt.svc); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRotationOnADeviceWritesDirectly(t *testing.T) {
	// stdout = "/dev/null" with rotation: no chunks next to a device, the
	// child gets the device itself, with a warning.
	out, _, _ := testOutputs(t, false, false)
	var logged logCounter
	svc := &config.Service{Name: "dev.toml", Stdout: "/dev/null", Stderr: "STDOUT", StdoutRotateSize: 10}
	w, err := Setup(svc, out, logged.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if len(w.copiers) != 0 || fileType(t, w.Stdout) != unix.S_IFCHR {
		t.Fatalf("%d copiers; the child does not get the device", len(w.copiers))
	}
	if !strings.Contains(logged.text(), "rotation ignored: the target is not a regular file") {
		t.Fatalf("no warning: %q", logged.text())
	}
}
