//go:build linux

package logs

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"golang.org/x/sys/unix"
)

// The test binary plays the services: with helperEnv set it runs the
// operations given as arguments and exits.
const helperEnv = "HORUST_LOGS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper(os.Args[1:]))
	}
	// Under go test -cover the helpers are instrumented too, and without
	// GOCOVERDIR each prints a warning into the output the tests check.
	if testing.CoverMode() != "" && os.Getenv("GOCOVERDIR") == "" {
		dir, err := os.MkdirTemp("", "horust-logs-cover-")
		if err == nil {
			os.Setenv("GOCOVERDIR", dir)
			code := m.Run()
			os.RemoveAll(dir)
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

// helper runs operations in order:
//
//	out:TEXT / err:TEXT      write TEXT to stdout / stderr
//	fill:C:N / efill:C:N     write N bytes C to stdout / stderr (no newline)
//	lines:NAME:N / elines:NAME:N   N lines "NAME <i> xxx..." through a 64 KiB+1
//	                               buffer, so reads cut lines anywhere
//	flood:N                  N bytes of 100-byte lines in 8 KiB writes
func helper(ops []string) int {
	for _, op := range ops {
		kind, arg, _ := strings.Cut(op, ":")
		f := os.Stdout
		switch kind {
		case "err":
			f, kind = os.Stderr, "out"
		case "efill", "elines":
			f, kind = os.Stderr, kind[1:]
		}
		var err error
		switch kind {
		case "out":
			_, err = f.WriteString(arg)
		case "fill":
			c, n, _ := strings.Cut(arg, ":")
			count, _ := strconv.Atoi(n)
			_, err = f.Write(bytes.Repeat([]byte(c), count))
		case "flood": // N bytes of 100-byte lines in 8 KiB writes, like head -c
			count, _ := strconv.Atoi(arg)
			block := bytes.Repeat(append(bytes.Repeat([]byte{'a'}, 99), '\n'), 100)
			for off := 0; count > 0 && err == nil; {
				var n int
				n, err = f.Write(block[off : off+min(8192, count)])
				count -= n
				off = (off + n) % 100
			}
		case "lines":
			name, n, _ := strings.Cut(arg, ":")
			count, _ := strconv.Atoi(n)
			bw := bufio.NewWriterSize(f, 65537)
			for i := range count {
				fmt.Fprintf(bw, "%s %d %s\n", name, i, strings.Repeat("x", 40+i%50))
			}
			err = bw.Flush()
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
	}
	return 0
}

// child is a started service of a test.
type child struct {
	proc  *os.Process
	done  chan struct{}
	calls atomic.Int32
}

// start sets up the output of svc, starts the helper with ops, and calls
// Started.
func start(t *testing.T, svc *config.Service, out *Outputs, ops ...string) (*child, *Wiring) {
	t.Helper()
	w, err := Setup(svc, out, nil)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return startWired(t, w, ops...), w
}

// startWired starts the helper with ops on the output of w and calls
// Started.
func startWired(t *testing.T, w *Wiring, ops ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.StartProcess(exe, append([]string{exe}, ops...), &os.ProcAttr{
		Env:   []string{helperEnv + "=1", "GORACE=atexit_sleep_ms=0", "GOCOVERDIR=" + os.Getenv("GOCOVERDIR")},
		Files: []*os.File{nil, w.Stdout, w.Stderr},
	})
	if err != nil {
		w.Abort()
		t.Fatalf("start helper: %v", err)
	}
	c := &child{proc: p, done: make(chan struct{})}
	w.Started(func() {
		if c.calls.Add(1) == 1 {
			close(c.done)
		}
	})
	return c
}

// wait waits for onDone, then reaps the child and checks that it exited 0
// and that onDone was called once.
func (c *child) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatal("onDone was not called within 20s")
	}
	st, err := c.proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Success() {
		t.Fatalf("helper: %v", st)
	}
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("onDone called %d times", n)
	}
}

// run starts the helper with ops and waits for it and its copiers.
func run(t *testing.T, svc *config.Service, out *Outputs, ops ...string) {
	t.Helper()
	c, _ := start(t, svc, out, ops...)
	c.wait(t)
}

// testOutputs returns Outputs whose stdout and stderr are files of the test
// (the same file when same is set), and their paths.
func testOutputs(t *testing.T, prefixAll, same bool) (o *Outputs, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	stdout, stderr = filepath.Join(dir, "horust.out"), filepath.Join(dir, "horust.err")
	fo, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fo.Close() })
	fe := fo
	if same {
		stderr = stdout
	} else if fe, err = os.Create(stderr); err != nil {
		t.Fatal(err)
	} else {
		t.Cleanup(func() { fe.Close() })
	}
	return NewOutputs(fo, fe, prefixAll), stdout, stderr
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirSizes returns the size of every file in dir by name. Symlinks (the
// <path>.current link) are left out: currentLink checks them.
func dirSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, e := range ents {
		if e.Type()&os.ModeSymlink != 0 {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = info.Size()
	}
	return m
}

// currentLink returns the target of path's <path>.current link; "" when
// there is none.
func currentLink(t *testing.T, path string) string {
	t.Helper()
	target, err := os.Readlink(path + ".current")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return target
}

func formatSizes(m map[string]int64) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%d ", n, m[n])
	}
	return b.String()
}

// openFDs counts the open file descriptors of the test process.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// logCounter collects log records of the code under test.
type logCounter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCounter) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func (l *logCounter) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logCounter) count(msg string) int { return strings.Count(l.text(), "msg=\""+msg) }

// openDevFull opens /dev/full, where every write fails with ENOSPC.
func openDevFull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pipeOutputs returns Outputs whose stdout and stderr are one pipe, like
// horust's stdout under Docker, and a function that closes the pipe and
// returns everything that went through it. Writes to a pipe above 4 KiB are
// not atomic: only the Outputs' lock keeps lines whole.
func pipeOutputs(t *testing.T, prefixAll bool) (*Outputs, func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The smallest pipe: a batch of lines larger than 4 KiB takes several
	// steps, between which other writers could slip in.
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = buf.ReadFrom(r)
		r.Close()
	}()
	// stderr is another *os.File on the same pipe, as fd 1 and fd 2 of a
	// container often are: Go's own per-file write lock does not cover
	// both.
	fd, err := unix.FcntlInt(w.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w2 := os.NewFile(uintptr(fd), "stderr")
	closed := false
	collect := func() string {
		if !closed {
			closed = true
			w.Close()
			w2.Close()
		}
		<-done
		return buf.String()
	}
	t.Cleanup(func() { collect() })
	return NewOutputs(w, w2, prefixAll), collect
}
