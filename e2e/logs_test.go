//go:build linux

package e2e

// End-to-end tests of service output (issue 5, docs/logging.md): rotation,
// retention, the timestamp suffix, stderr following stdout, prefixed lines
// from concurrent services, and that nothing a service wrote is lost when it
// exits, also during a shutdown.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
	"golang.org/x/sys/unix"
)

func init() {
	// logs-bytes N [EXIT]: write N bytes 'a' (no newline) to stdout in one
	// write, then exit with EXIT (0).
	registerRole("logs-bytes", func(args []string) int {
		n, _ := strconv.Atoi(logsArg(args, 0))
		code, _ := strconv.Atoi(logsArg(args, 1))
		if _, err := os.Stdout.Write(bytes.Repeat([]byte{'a'}, n)); err != nil {
			return 3
		}
		return code
	})
	// logs-bytes-runs N1 N2 FILE: the first run (FILE missing) writes N1
	// bytes 'a' and exits 1; later runs write N2 bytes 'b' and exit 0.
	registerRole("logs-bytes-runs", func(args []string) int {
		n1, _ := strconv.Atoi(logsArg(args, 0))
		n2, _ := strconv.Atoi(logsArg(args, 1))
		if _, err := os.Stat(logsArg(args, 2)); err != nil {
			os.WriteFile(logsArg(args, 2), nil, 0o644)
			os.Stdout.Write(bytes.Repeat([]byte{'a'}, n1))
			return 1
		}
		os.Stdout.Write(bytes.Repeat([]byte{'b'}, n2))
		return 0
	})
	// logs-interleave N: N lines alternately on stdout ("out 00") and
	// stderr ("err 01"), one write each, then exit 0.
	registerRole("logs-interleave", func(args []string) int {
		n, _ := strconv.Atoi(logsArg(args, 0))
		for i := range n {
			f, tag := os.Stdout, "out"
			if i%2 == 1 {
				f, tag = os.Stderr, "err"
			}
			if _, err := fmt.Fprintf(f, "%s %02d\n", tag, i); err != nil {
				return 3
			}
		}
		return 0
	})
	// logs-lines TAG N READY: write the pid to READY, wait for SIGUSR1,
	// then write N checkable lines to stdout (each in two writes, split
	// inside the line) and N/10 to stderr, then exit 0.
	registerRole("logs-lines", func(args []string) int {
		n, _ := strconv.Atoi(logsArg(args, 1))
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		ready(logsArg(args, 2))
		<-ch
		return logsWriteLines(logsArg(args, 0), n)
	})
	// logs-burst TAG N [READY]: prepare N short checkable lines; with READY,
	// write the pid to it and wait for SIGTERM. Then write the lines to
	// stdout in one write and exit 0 at once, leaving as much as the pipe
	// holds to its copier.
	registerRole("logs-burst", func(args []string) int {
		n, _ := strconv.Atoi(logsArg(args, 1))
		var buf []byte
		for seq := range n {
			buf = append(buf, logsLine(logsArg(args, 0), seq, logsShort)...)
			buf = append(buf, '\n')
		}
		if file := logsArg(args, 2); file != "" {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			ready(file)
			<-ch
		}
		if _, err := os.Stdout.Write(buf); err != nil {
			return 3
		}
		return 0
	})
	// logs-say-on-term READY TEXT: write the pid to READY, wait for
	// SIGTERM, then write TEXT as a line on stdout and exit 0.
	registerRole("logs-say-on-term", func(args []string) int {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		ready(logsArg(args, 0))
		<-ch
		if _, err := os.Stdout.Write([]byte(logsArg(args, 1) + "\n")); err != nil {
			return 3
		}
		return 0
	})
	// logs-on-usr1 N READY: write the pid to READY, then at each SIGUSR1
	// write N bytes 'c' (no newline) to stdout; run until signalled
	// otherwise.
	registerRole("logs-on-usr1", func(args []string) int {
		n, _ := strconv.Atoi(logsArg(args, 0))
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		ready(logsArg(args, 1))
		for range ch {
			if _, err := os.Stdout.Write(bytes.Repeat([]byte{'c'}, n)); err != nil {
				return 3
			}
		}
		return 0
	})
	// logs-count-on-term READY RESULT FILE TAG [FILE TAG]...: write the pid
	// to READY, wait for SIGTERM, then count the lines of each TAG in its
	// FILE (a glob) and write "TAG=count" lines to RESULT, then exit 0.
	registerRole("logs-count-on-term", func(args []string) int {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		ready(logsArg(args, 0))
		<-ch
		var res strings.Builder
		for i := 2; i+1 < len(args); i += 2 {
			files, _ := filepath.Glob(args[i])
			var all []byte
			for _, f := range logsSortChunks(files) {
				b, _ := os.ReadFile(f)
				all = append(all, b...)
			}
			n := logsCountLines(string(all), args[i+1])
			fmt.Fprintf(&res, "%s=%d\n", args[i+1], n)
		}
		os.WriteFile(logsArg(args, 1)+".tmp", []byte(res.String()), 0o644)
		os.Rename(logsArg(args, 1)+".tmp", logsArg(args, 1))
		return 0
	})
}

// logsSvc is svc with GORACE=atexit_sleep_ms=0 in the service's environment:
// a -race test binary otherwise sleeps a second in exit, which would give the
// copiers that second to catch up and hide a service's exit racing its
// output.
func logsSvc(command string, more ...string) string {
	return svc(command, slices.Concat(more, []string{"[environment]", `additional = { GORACE = "atexit_sleep_ms=0" }`})...)
}

func logsArg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// Payload widths of logsLine: long lines for the writers that split them,
// short ones for bursts (many lines per byte: the most work for a copier).
const (
	logsLong  = 200
	logsShort = 1
)

// logsLine is line seq of tag: "<tag>-<seq>-<payload>", the payload 1 to
// width letters that depend on seq, so that a line cut, mixed or duplicated
// shows.
func logsLine(tag string, seq, width int) string {
	return tag + "-" + strconv.Itoa(seq) + "-" + strings.Repeat(string(rune('a'+seq%26)), seq%width+1)
}

// logsWriteLines writes n lines of tag to stdout, each in two unbuffered
// writes split at a point that varies, and with stderr every tenth line
// "<tag>e-<seq>-..." on stderr too.
func logsWriteLines(tag string, n int) int {
	for seq := range n {
		l := logsLine(tag, seq, logsLong) + "\n"
		k := (seq * 7) % len(l)
		if _, err := os.Stdout.Write([]byte(l[:k])); err != nil {
			return 3
		}
		if _, err := os.Stdout.Write([]byte(l[k:])); err != nil {
			return 3
		}
		if seq%10 == 0 {
			if _, err := os.Stderr.Write([]byte(logsLine(tag+"e", seq, logsLong) + "\n")); err != nil {
				return 3
			}
		}
	}
	return 0
}

// logsCountLines counts the lines of tag in text: "<tag>-..." or
// "<name> | <tag>-...".
func logsCountLines(text, tag string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, " | "+tag+"-"); i >= 0 {
			l = l[i+3:]
		}
		if strings.HasPrefix(l, tag+"-") {
			n++
		}
	}
	return n
}

// logsVerify checks that text is made only of whole checkable lines, each
// "<name> | <tag>-<seq>-<payload>" where want maps the tag to the service
// name ("" for lines without prefix), and that the lines of each tag are
// exactly lines 0 to n-1 in order: none cut, mixed, lost or repeated.
func logsVerify(text string, want map[string]string, n, width int) error {
	next := map[string]int{}
	for tag := range want {
		next[tag] = 0
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		return fmt.Errorf("the text does not end with a newline: ...%q", text[max(0, len(text)-80):])
	}
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		name, body, prefixed := strings.Cut(l, " | ")
		if !prefixed {
			name, body = "", l
		}
		tag, _, _ := strings.Cut(body, "-")
		owner, ok := want[tag]
		if !ok || owner != name {
			return fmt.Errorf("line %d is not an attributed line of a known tag: %.120q", i+1, l)
		}
		if exp := logsLine(tag, next[tag], width); body != exp {
			return fmt.Errorf("line %d: got %.120q, want line %.120q", i+1, l, exp)
		}
		next[tag]++
	}
	for tag, got := range next {
		if got != n {
			return fmt.Errorf("%d lines of %s, want %d", got, tag, n)
		}
	}
	return nil
}

// logsSortChunks sorts chunk files by their numeric suffixes (out.log,
// out.log.1, out.log.2, ..., out.log.10), leaving out the out.log.current
// link to one of them.
func logsSortChunks(files []string) []string {
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".current") })
	key := func(f string) []int64 {
		var k []int64
		for _, part := range strings.Split(filepath.Base(f), ".") {
			if n, err := strconv.ParseInt(part, 10, 64); err == nil {
				k = append(k, n)
			}
		}
		return k
	}
	slices.SortFunc(files, func(a, b string) int { return slices.Compare(key(a), key(b)) })
	return files
}

// logsStart runs horust like startHorust, but with its stdout going straight
// into the file outPath (no copy by the test in between), so that what the
// file holds is exactly what horust has written at the moment it is read.
func logsStart(t *testing.T, o runOpts, outPath string) *horust {
	t.Helper()
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	h := logsStartOut(t, o, out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("horust stdout (%s): %d bytes, first lines:\n%.2000s", outPath, len(readFile(outPath)), readFile(outPath))
		}
	})
	return h
}

// logsStartOut runs horust like startHorust with out as its stdout.
func logsStartOut(t *testing.T, o runOpts, out *os.File) *horust {
	t.Helper()
	o.stdout = out
	return startHorust(t, o)
}

// logsPipe is horust's stdout as a pipe that the test reads only when it
// says so: until then a copier writing prefixed lines blocks once the pipe
// is full, as when the reader of a container's log is slow.
type logsPipe struct {
	r, w *os.File
	got  []byte
}

func newLogsPipe(t *testing.T) *logsPipe {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	// The smallest pipe: a copier blocks after a few lines.
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatalf("shrinking the pipe: %v", err)
	}
	return &logsPipe{r: r, w: w}
}

// started closes the test's copy of the write end (horust has its own).
func (p *logsPipe) started() { p.w.Close() }

// readNow reads what the pipe holds at this moment, without waiting.
func (p *logsPipe) readNow(t *testing.T) {
	t.Helper()
	p.r.SetReadDeadline(time.Time{}) // an expired deadline would fail the read before it is tried
	rc, err := p.r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true // one attempt: do not wait for data
		}); err != nil {
			t.Fatal(err)
		}
		switch {
		case n > 0:
			p.got = append(p.got, buf[:n]...)
		case rerr == syscall.EINTR:
		case rerr == syscall.EAGAIN || rerr == nil: // empty, or ended
			return
		default:
			t.Fatalf("reading horust's stdout: %v", rerr)
		}
	}
}

// readUntil reads the pipe until done is closed, then everything the pipe
// holds at that moment.
func (p *logsPipe) readUntil(t *testing.T, done <-chan struct{}) {
	t.Helper()
	buf := make([]byte, 256<<10)
	for {
		select {
		case <-done:
			p.readNow(t)
			return
		default:
		}
		// The deadline only bounds how long a read waits before done is
		// looked at again; no decision depends on it.
		p.r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, _ := p.r.Read(buf)
		p.got = append(p.got, buf[:n]...)
	}
}

// readAll reads the pipe to its end.
func (p *logsPipe) readAll(t *testing.T, timeout time.Duration) {
	t.Helper()
	p.r.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(p.r)
	p.got = append(p.got, b...)
	if err != nil {
		t.Fatalf("reading horust's stdout to its end: %v", err)
	}
}

// logsReaped waits until pid is gone from /proc: horust has reaped it.
func logsReaped(t *testing.T, pid int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("pid %d to be reaped", pid), func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	})
}

// logsWaitFinished waits, through the control API, until every named service
// is FINISHED or FINISHEDFAILED; it returns as soon as horust says so.
func logsWaitFinished(t *testing.T, h *horust, names ...string) []status.ServiceStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := h.client()
	st, err := c.Wait(ctx, names, control.WaitFinished, 55*time.Second)
	if err != nil {
		t.Fatalf("waiting for %v to finish: %v", names, err)
	}
	return st
}

// logsDir lists the names in dir with their sizes, "out.log=50", and
// symlinks with their targets, "out.log.current->out.log.1".
func logsDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.Name()+"->"+target)
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", e.Name(), info.Size()))
	}
	slices.Sort(got)
	return got
}

// TestLogsRotation runs services whose stdout goes into rotated chunk files
// and checks the chunks once horust reports the service FINISHED.
func TestLogsRotation(t *testing.T) {
	chunks := func(prefix string, from, to, size int, last int) []string {
		var want []string
		for k := from; k <= to; k++ {
			name := prefix
			if k > 0 {
				name += "." + strconv.Itoa(k)
			}
			n := size
			if k == to {
				n = last
			}
			want = append(want, fmt.Sprintf("%s=%d", name, n))
			if k == to {
				want = append(want, prefix+".current->"+name)
			}
		}
		slices.Sort(want)
		return want
	}
	cases := []struct {
		name    string
		command string
		more    []string
		want    []string
	}{
		{
			// The original's test: 500 bytes without newline at 50 bytes
			// per chunk give out.log, out.log.1 ... .9 of 50 bytes and an
			// empty out.log.10.
			name:    "original 500 bytes at 50 per chunk",
			command: role("logs-bytes", "500"),
			more:    []string{`stdout-rotate-size = "50"`},
			want:    chunks("out.log", 0, 10, 50, 0),
		},
		{
			// docs/logging.md: 1000 bytes at 50 with keep 3 leave .17,
			// .18, .19 and the current, empty, .20.
			name:    "keep 3 old chunks",
			command: role("logs-bytes", "1000"),
			more:    []string{`stdout-rotate-size = "50"`, `stdout-rotate-keep = 3`},
			want:    chunks("out.log", 17, 20, 50, 0),
		},
		{
			name:    "keep 1 old chunk of a stream that is not a multiple of the size",
			command: role("logs-bytes", "130"),
			more:    []string{`stdout-rotate-size = "50"`, `stdout-rotate-keep = 1`},
			want:    []string{"out.log.1=50", "out.log.2=30", "out.log.current->out.log.2"},
		},
		{
			name:    "size with a unit",
			command: role("logs-bytes", "2500"),
			more:    []string{`stdout-rotate-size = "1 KB"`},
			want:    []string{"out.log.1=1000", "out.log.2=500", "out.log.current->out.log.2", "out.log=1000"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.log")
			h := startHorust(t, runOpts{files: map[string]string{
				"logs-rot.toml":  logsSvc(tc.command, append([]string{fmt.Sprintf("stdout = %q", out)}, tc.more...)...),
				"logs-keep.toml": logsSvc(role("sleep")), // horust keeps running
			}})
			st := logsWaitFinished(t, h, "logs-rot.toml")
			if st[0].State != status.Finished {
				t.Fatalf("service %s, want FINISHED: %+v", st[0].State, st[0])
			}
			if got := logsDir(t, dir); !slices.Equal(got, tc.want) {
				t.Fatalf("chunks when FINISHED:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestLogsRotationTimestampSuffix: chunk names get the Unix time of the start.
func TestLogsRotationTimestampSuffix(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	before := time.Now().Unix()
	h := startHorust(t, runOpts{files: map[string]string{
		"logs-ts.toml": logsSvc(role("logs-bytes", "500"), fmt.Sprintf("stdout = %q", out),
			`stdout-rotate-size = "50"`, `stdout-should-append-timestamp-to-filename = true`),
		"logs-ts-keep.toml": logsSvc(role("sleep")),
	}})
	logsWaitFinished(t, h, "logs-ts.toml")
	after := time.Now().Unix()
	got := logsDir(t, dir)
	if len(got) != 12 {
		t.Fatalf("want 11 chunks and the link, got %v", got)
	}
	// Every chunk of the series has the same T: out.log.<T> is chunk 0.
	var stamp int64
	for _, g := range got {
		if m := regexp.MustCompile(`^out\.log\.(\d+)=`).FindStringSubmatch(g); m != nil {
			stamp, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if stamp < before || stamp > after {
		t.Fatalf("timestamp %d not within the run [%d, %d]: %v", stamp, before, after, got)
	}
	var want []string
	for k := 0; k <= 10; k++ {
		name, size := fmt.Sprintf("out.log.%d", stamp), 50
		if k > 0 {
			name += "." + strconv.Itoa(k)
		}
		if k == 10 {
			size = 0
			want = append(want, "out.log.current->"+name)
		}
		want = append(want, fmt.Sprintf("%s=%d", name, size))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("chunks:\n got %v\nwant %v", got, want)
	}
}

// TestLogsRotationContinuesAfterRestart: a restart appends to the newest
// chunk (docs/logging.md: 120 bytes then 60 at 50 per chunk).
func TestLogsRotationContinuesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	h := startHorust(t, runOpts{files: map[string]string{
		"logs-restart.toml": logsSvc(role("logs-bytes-runs", "120", "60", filepath.Join(t.TempDir(), "ran")),
			fmt.Sprintf("stdout = %q", out), `stdout-rotate-size = "50"`,
			"[restart]", `strategy = "on-failure"`, `attempts = 2`),
		"logs-restart-keep.toml": logsSvc(role("sleep")),
	}})
	st := logsWaitFinished(t, h, "logs-restart.toml")
	if st[0].State != status.Finished || st[0].Restarts != 1 {
		t.Fatalf("want FINISHED after one restart: %+v", st[0])
	}
	want := []string{"out.log.1=50", "out.log.2=50", "out.log.3=30", "out.log.current->out.log.3", "out.log=50"}
	if got := logsDir(t, dir); !slices.Equal(got, want) {
		t.Fatalf("chunks:\n got %v\nwant %v", got, want)
	}
	all := readFile(out) + readFile(out+".1") + readFile(out+".2") + readFile(out+".3")
	if all != strings.Repeat("a", 120)+strings.Repeat("b", 60) {
		t.Fatalf("the chunks do not hold both runs in order: %q", all)
	}
}

// TestLogsStderrFollowsStdoutIntoChunks: stderr = "STDOUT" shares the pipe,
// so stderr lines land in stdout's chunks in the order they were written,
// and chunks are cut after a newline.
func TestLogsStderrFollowsStdoutIntoChunks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	const n = 40
	h := startHorust(t, runOpts{files: map[string]string{
		"logs-both.toml": logsSvc(role("logs-interleave", strconv.Itoa(n)),
			fmt.Sprintf("stdout = %q", out), `stderr = "STDOUT"`, `stdout-rotate-size = "50"`),
		"logs-both-keep.toml": logsSvc(role("sleep")),
	}})
	logsWaitFinished(t, h, "logs-both.toml")
	files, _ := filepath.Glob(out + "*")
	files = logsSortChunks(files)
	var all strings.Builder
	for _, f := range files {
		c := readFile(f)
		// 7-byte lines, 50-byte chunks, a 25-byte window: every chunk but
		// the last holds 7 whole lines.
		if f != files[len(files)-1] && (len(c) != 49 || !strings.HasSuffix(c, "\n")) {
			t.Errorf("chunk %s is %d bytes %q, want 7 whole lines", filepath.Base(f), len(c), c)
		}
		all.WriteString(c)
	}
	var want strings.Builder
	for i := range n {
		tag := "out"
		if i%2 == 1 {
			tag = "err"
		}
		fmt.Fprintf(&want, "%s %02d\n", tag, i)
	}
	if all.String() != want.String() {
		t.Fatalf("chunks hold\n%s\nwant\n%s", all.String(), want.String())
	}
	if len(files) != n*7/49+1 {
		t.Fatalf("%d chunks, want %d: %v", len(files), n*7/49+1, logsDir(t, dir))
	}
	if s := h.stderr.String(); s != "" {
		t.Fatalf("something went to horust's stderr: %q", s)
	}
}

// TestLogsPrefixConcurrent: three services write many lines at the same time,
// in writes that split lines; on horust's stdout every line is whole and
// attributed, in order, none lost, when the services are reported FINISHED
// and when horust has exited.
func TestLogsPrefixConcurrent(t *testing.T) {
	const n = 20000
	cases := []struct {
		name string
		args []string
		more []string
	}{
		{name: "stdout-prefix", more: []string{"stdout-prefix = true"}},
		{name: "--log-prefix", args: []string{"--log-prefix"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			outPath := filepath.Join(tmp, "horust.out")
			names := []string{"logs-p1.toml", "logs-p2.toml", "logs-p3.toml"}
			files := map[string]string{"logs-p-keep.toml": logsSvc(role("sleep"))}
			for i, name := range names {
				files[name] = logsSvc(role("logs-lines", fmt.Sprintf("t%d", i), strconv.Itoa(n), filepath.Join(tmp, name+".pid")), tc.more...)
			}
			h := logsStart(t, runOpts{files: files, args: tc.args}, outPath)
			var pids []int
			for _, name := range names {
				pids = append(pids, readPid(t, filepath.Join(tmp, name+".pid")))
			}
			for _, pid := range pids { // all three write at the same time
				if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
					t.Fatal(err)
				}
			}
			for _, st := range logsWaitFinished(t, h, names...) {
				if st.State != status.Finished {
					t.Fatalf("%s is %s, want FINISHED: %+v", st.Name, st.State, st)
				}
			}
			want := map[string]string{}
			for i, name := range names {
				want[fmt.Sprintf("t%d", i)] = name
			}
			check := func(when string) {
				t.Helper()
				if err := logsVerify(readFile(outPath), want, n, logsLong); err != nil {
					t.Fatalf("horust's stdout %s: %v", when, err)
				}
			}
			check("when FINISHED")
			h.signal(syscall.SIGTERM)
			if code := h.wait(30 * time.Second); code != 0 {
				t.Fatalf("horust exit code %d", code)
			}
			check("after exit")
			// Stderr lines are prefixed too, on horust's stderr (read once
			// horust has exited: the test copies that pipe itself).
			errLines := strings.Split(h.stderr.String(), "\n")
			for i, name := range names {
				tag := fmt.Sprintf("t%de", i)
				got := 0
				for _, l := range errLines {
					if strings.HasPrefix(l, name+" | "+tag+"-") {
						got++
					}
				}
				if got != n/10 {
					t.Fatalf("%d prefixed stderr lines of %s, want %d", got, name, n/10)
				}
			}
		})
	}
}

// TestLogsPrefixFormats: timestamps, a last line without newline, and a line
// longer than 64 KiB split into prefixed pieces.
func TestLogsPrefixFormats(t *testing.T) {
	tmp := t.TempDir()
	outPath := filepath.Join(tmp, "horust.out")
	long := strings.Repeat("L", 150000)
	script := filepath.Join(tmp, "long.txt")
	if err := os.WriteFile(script, []byte("first\n"+long+"\nlast without newline"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	h := logsStart(t, runOpts{files: map[string]string{
		"logs-fmt-ts.toml":    logsSvc("/bin/cat "+script, "stdout-prefix = true", "stdout-timestamps = true"),
		"logs-fmt-plain.toml": logsSvc("/bin/cat "+script, "stdout-prefix = true"),
		"logs-fmt-keep.toml":  logsSvc(role("sleep")),
	}}, outPath)
	logsWaitFinished(t, h, "logs-fmt-ts.toml", "logs-fmt-plain.toml")
	end := time.Now().Add(time.Second)
	text := readFile(outPath)
	want := []string{"first", long[:65536], long[65536:131072], long[131072:], "last without newline"}
	stamped := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) logs-fmt-ts\.toml \| (.*)$`)
	var gotTS, gotPlain []string
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if m := stamped.FindStringSubmatch(l); m != nil {
			ts, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil || ts.Before(start) || ts.After(end) {
				t.Fatalf("bad time %q (%v), want within [%v, %v]", m[1], err, start, end)
			}
			gotTS = append(gotTS, m[2])
			continue
		}
		rest, ok := strings.CutPrefix(l, "logs-fmt-plain.toml | ")
		if !ok {
			t.Fatalf("unexpected line on horust's stdout: %.120q", l)
		}
		gotPlain = append(gotPlain, rest)
	}
	if !slices.Equal(gotTS, want) {
		t.Fatalf("timestamped lines: got %d lines %.200q, want %d", len(gotTS), gotTS, len(want))
	}
	if !slices.Equal(gotPlain, want) {
		t.Fatalf("prefixed lines: got %d lines %.200q, want %d", len(gotPlain), gotPlain, len(want))
	}
}

// logsBurst describes three services that write n short lines in a burst
// and exit at once: to horust's stdout with a prefix (tag bp), into chunks
// of 4 KB (br), and into a file directly (bf). With onTerm they wait for
// SIGTERM first (their pid files are <tag>.pid in tmp).
type logsBurst struct {
	tmp, outPath, chunkPath, direct string
	n                               int
}

// burstLines is the size of a burst: about 2 MB of 11-byte lines, so that
// the copiers often still have work when a service exits (its pipe holds up
// to 1 MiB). Whether they do depends on timing: the tests that use bursts
// check that nothing is lost; TestLogsExitWaitsForOutput and
// TestLogsShutdownAfterWaitsForOutput check the order deterministically.
const burstLines = 200000

func newLogsBurst(t *testing.T) *logsBurst {
	tmp := t.TempDir()
	return &logsBurst{tmp: tmp, outPath: filepath.Join(tmp, "horust.out"), chunkPath: filepath.Join(tmp, "burst.log"),
		direct: filepath.Join(tmp, "direct.log"), n: burstLines}
}

func (b *logsBurst) services(prefix string, onTerm bool) map[string]string {
	args := func(tag string) []string {
		a := []string{tag, strconv.Itoa(b.n)}
		if onTerm {
			a = append(a, filepath.Join(b.tmp, tag+".pid"))
		}
		return a
	}
	return map[string]string{
		prefix + "-prefix.toml": logsSvc(role("logs-burst", args("bp")...), "stdout-prefix = true"),
		prefix + "-rot.toml": logsSvc(role("logs-burst", args("br")...),
			fmt.Sprintf("stdout = %q", b.chunkPath), `stdout-rotate-size = "4 KB"`),
		prefix + "-file.toml": logsSvc(role("logs-burst", args("bf")...), fmt.Sprintf("stdout = %q", b.direct)),
	}
}

// verify checks every line of the three services, once each, in order.
func (b *logsBurst) verify(t *testing.T, prefix, when string) {
	t.Helper()
	if err := logsVerify(readFile(b.outPath), map[string]string{"bp": prefix + "-prefix.toml"}, b.n, logsShort); err != nil {
		t.Errorf("horust's stdout %s: %v", when, err)
	}
	files, _ := filepath.Glob(b.chunkPath + "*")
	var chunks strings.Builder
	for _, f := range logsSortChunks(files) {
		chunks.WriteString(readFile(f))
	}
	if err := logsVerify(chunks.String(), map[string]string{"br": ""}, b.n, logsShort); err != nil {
		t.Errorf("chunks %s: %v", when, err)
	}
	if err := logsVerify(readFile(b.direct), map[string]string{"bf": ""}, b.n, logsShort); err != nil {
		t.Errorf("direct file %s: %v", when, err)
	}
}

// TestLogsExitNothingLost: services write a burst and exit at once; all of it
// is there as soon as horust reports them FINISHED, and when horust exited.
func TestLogsExitNothingLost(t *testing.T) {
	b := newLogsBurst(t)
	files := b.services("logs-exit", false)
	files["logs-exit-keep.toml"] = logsSvc(role("sleep"))
	h := logsStart(t, runOpts{files: files}, b.outPath)
	for _, st := range logsWaitFinished(t, h, "logs-exit-prefix.toml", "logs-exit-rot.toml", "logs-exit-file.toml") {
		if st.State != status.Finished {
			t.Fatalf("%s is %s, want FINISHED", st.Name, st.State)
		}
	}
	b.verify(t, "logs-exit", "when FINISHED")
	h.signal(syscall.SIGTERM)
	if code := h.wait(30 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d", code)
	}
	b.verify(t, "logs-exit", "after exit")
}

// TestLogsShutdownNothingLost: services that write a burst when they get
// SIGTERM and exit at once. The service ordered after them (shutdown-after)
// is signalled only when their output is complete, on horust's stdout and in
// the files, and everything is there when horust has exited.
func TestLogsShutdownNothingLost(t *testing.T) {
	b := newLogsBurst(t)
	result := filepath.Join(b.tmp, "result")
	files := b.services("logs-term", true)
	files["logs-term-last.toml"] = logsSvc(role("logs-count-on-term", filepath.Join(b.tmp, "last.pid"), result,
		b.outPath, "bp", b.chunkPath+"*", "br", b.direct, "bf"),
		`shutdown-after = ["logs-term-prefix.toml", "logs-term-rot.toml", "logs-term-file.toml"]`)
	h := logsStart(t, runOpts{files: files}, b.outPath)
	for _, f := range []string{"bp.pid", "br.pid", "bf.pid", "last.pid"} {
		readPid(t, filepath.Join(b.tmp, f))
	}
	h.signal(syscall.SIGTERM)
	if code := h.wait(60 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d", code)
	}
	want := fmt.Sprintf("bp=%d\nbr=%d\nbf=%d\n", b.n, b.n, b.n)
	if got := readFile(result); got != want {
		t.Errorf("when the service ordered after them got SIGTERM, their output was not complete:\n got %q\nwant %q", got, want)
	}
	b.verify(t, "logs-term", "after exit")
}

// stuckLines is the size of a burst that the copier cannot finish while
// horust's stdout is not read: about 38 KB, 100 KB once prefixed, where the
// pipe to horust's stdout holds 4 KiB (newLogsPipe); small enough that the
// service itself can write it all into its own pipe (64 KiB) and exit.
const stuckLines = 3600

// logsNotExitedYet checks that horust, having reaped the service, does not
// count it as exited while its copier cannot write.
func logsNotExitedYet(t *testing.T, h *horust, name string, reapedAt time.Time) {
	t.Helper()
	st := h.status(name)
	if st.State != status.Finished && st.State != status.FinishedFailed {
		return
	}
	t.Fatalf("%s is %s %v after it was reaped, while its output cannot be written yet (horust's stdout is not read): "+
		"it must not count as exited before its output is written", name, st.State, time.Since(reapedAt))
}

// TestLogsExitWaitsForOutput: a service exits while its copier is blocked on
// horust's stdout (nobody reads it yet). Horust does not report it exited
// until the copier has written everything; when FINISHED is reported,
// everything is in the pipe.
func TestLogsExitWaitsForOutput(t *testing.T) {
	tmp := t.TempDir()
	p := newLogsPipe(t)
	h := logsStartOut(t, runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{
		"logs-stuck.toml":      logsSvc(role("logs-burst", "st", strconv.Itoa(stuckLines), filepath.Join(tmp, "st.pid")), "stdout-prefix = true"),
		"logs-stuck-keep.toml": logsSvc(role("sleep")),
	}}, p.w)
	p.started()
	pid := readPid(t, filepath.Join(tmp, "st.pid"))
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil { // it writes its lines and exits
		t.Fatal(err)
	}
	logsReaped(t, pid)
	logsNotExitedYet(t, h, "logs-stuck.toml", time.Now())

	c := h.client()
	finished := make(chan struct{})
	var waitErr error
	go func() {
		defer close(finished)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, waitErr = c.Wait(ctx, []string{"logs-stuck.toml"}, control.WaitFinished, 55*time.Second)
	}()
	p.readUntil(t, finished) // reading lets the copier go on
	if waitErr != nil {
		t.Fatal(waitErr)
	}
	want := map[string]string{"st": "logs-stuck.toml"}
	if err := logsVerify(string(p.got), want, stuckLines, logsShort); err != nil {
		t.Fatalf("when the service was reported FINISHED, horust's stdout was not complete: %v", err)
	}
	h.signal(syscall.SIGTERM)
	p.readAll(t, 30*time.Second)
	if code := h.wait(30 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d", code)
	}
	if err := logsVerify(string(p.got), want, stuckLines, logsShort); err != nil {
		t.Fatalf("horust's stdout after exit: %v", err)
	}
	if strings.Contains(h.stderr.String(), "not drained") {
		t.Fatalf("horust gave up waiting for the output:\n%s", h.stderr)
	}
}

// TestLogsShutdownAfterWaitsForOutput: during a shutdown, the service ordered
// after another one (shutdown-after) is signalled only once the output of the
// other one is written, even when horust's stdout is not read for a while:
// its own last line comes after all of the other one's lines.
func TestLogsShutdownAfterWaitsForOutput(t *testing.T) {
	tmp := t.TempDir()
	p := newLogsPipe(t)
	h := logsStartOut(t, runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{
		"logs-sa-first.toml": logsSvc(role("logs-burst", "sa", strconv.Itoa(stuckLines), filepath.Join(tmp, "first.pid")), "stdout-prefix = true"),
		"logs-sa-then.toml": logsSvc(role("logs-say-on-term", filepath.Join(tmp, "then.pid"), "last words"), "stdout-prefix = true",
			`shutdown-after = ["logs-sa-first.toml"]`),
	}}, p.w)
	p.started()
	first := readPid(t, filepath.Join(tmp, "first.pid"))
	readPid(t, filepath.Join(tmp, "then.pid"))
	h.signal(syscall.SIGTERM)
	logsReaped(t, first)
	reaped := time.Now()
	st, err := h.client().Get(context.Background(), "logs-sa-then.toml")
	if err != nil {
		t.Fatalf("horust no longer answers after logs-sa-first.toml was reaped, whose output cannot be written yet (did it exit without its output?): %v", err)
	}
	if st.State != status.Running {
		t.Fatalf("logs-sa-then.toml is %s %v after logs-sa-first.toml was reaped, whose output cannot be written yet: "+
			"it must not be signalled before that output is written", st.State, time.Since(reaped))
	}
	logsNotExitedYet(t, h, "logs-sa-first.toml", reaped)
	p.readAll(t, 30*time.Second)
	if code := h.wait(30 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d", code)
	}
	text := string(p.got)
	last := "logs-sa-then.toml | last words\n"
	body, ok := strings.CutSuffix(text, last)
	if !ok {
		t.Fatalf("horust's stdout does not end with %q: ...%q", last, text[max(0, len(text)-200):])
	}
	if err := logsVerify(body, map[string]string{"sa": "logs-sa-first.toml"}, stuckLines, logsShort); err != nil {
		t.Fatalf("horust's stdout: %v", err)
	}
	if strings.Contains(h.stderr.String(), "not drained") {
		t.Fatalf("horust gave up waiting for the output:\n%s", h.stderr)
	}
}

// TestLogsBrokenStdout: the reader of horust's stdout goes away. Prefixed
// lines are dropped and counted, horust does not die of SIGPIPE, the service
// is not blocked and ends normally, and the loss is logged.
func TestLogsBrokenStdout(t *testing.T) {
	tmp := t.TempDir()
	p := newLogsPipe(t)
	h := logsStartOut(t, runOpts{files: map[string]string{
		"logs-broken.toml":      logsSvc(role("logs-burst", "bk", "100000", filepath.Join(tmp, "bk.pid")), "stdout-prefix = true"),
		"logs-broken-keep.toml": logsSvc(role("sleep")),
	}}, p.w)
	p.started()
	pid := readPid(t, filepath.Join(tmp, "bk.pid"))
	p.r.Close()                                                // nobody reads horust's stdout any more
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil { // about 1 MB of lines, then exit 0
		t.Fatal(err)
	}
	st := logsWaitFinished(t, h, "logs-broken.toml")[0]
	if st.State != status.Finished || st.LastExitCode == nil || *st.LastExitCode != 0 {
		t.Fatalf("want FINISHED with exit code 0: %s", jsonOf(st))
	}
	if h.exited() {
		t.Fatal("horust exited")
	}
	eventually(t, 10*time.Second, "the dropped output to be logged", func() bool {
		e := h.stderr.String()
		return strings.Contains(e, `msg="service output dropped: cannot write" service=logs-broken.toml stream=stdout path=STDOUT error="broken pipe"`)
	})
	h.signal(syscall.SIGTERM)
	if code := h.wait(30 * time.Second); code != 0 {
		t.Fatalf("horust exit code %d", code)
	}
}

// TestLogsChunkDirectoryRemoved: the directory of the chunks disappears while
// the service runs. The data that cannot be written is dropped and logged,
// the service keeps running, and writing resumes by itself once the
// directory is back.
func TestLogsChunkDirectoryRemoved(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHorust(t, runOpts{files: map[string]string{
		"logs-gone.toml": logsSvc(role("logs-on-usr1", "60", filepath.Join(tmp, "gone.pid")),
			fmt.Sprintf("stdout = %q", filepath.Join(dir, "out.log")), `stdout-rotate-size = "50"`),
	}})
	pid := readPid(t, filepath.Join(tmp, "gone.pid"))
	batch := func() {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
	}
	batch() // 60 bytes: out.log full, 10 in out.log.1
	eventually(t, 10*time.Second, "the first chunks", func() bool {
		return slices.Equal(logsDir(t, dir), []string{"out.log.1=10", "out.log.current->out.log.1", "out.log=50"})
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	batch() // 40 more into the deleted out.log.1, then out.log.2 cannot be created: 20 dropped
	eventually(t, 10*time.Second, "the dropped output to be logged", func() bool {
		return strings.Contains(h.stderr.String(), `service=logs-gone.toml stream=stdout path=`+filepath.Join(dir, "out.log.2")) &&
			strings.Contains(h.stderr.String(), "dropped_bytes=20")
	})
	if st := h.status("logs-gone.toml"); st.State != status.Running || st.PID != pid {
		t.Fatalf("the service does not run on: %s", jsonOf(st))
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	batch() // out.log.2 is created at the next data: 50 in it, 10 in out.log.3
	eventually(t, 10*time.Second, "writing to resume", func() bool {
		return slices.Equal(logsDir(t, dir), []string{"out.log.2=50", "out.log.3=10", "out.log.current->out.log.3"})
	})
}

// TestLogsUnwritablePath: a service whose output cannot be opened fails to
// start with a message naming the service, the key and the path; the other
// services keep running.
func TestLogsUnwritablePath(t *testing.T) {
	tmp := t.TempDir()
	regular := filepath.Join(tmp, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing", "out.log")
	under := filepath.Join(regular, "err.log")
	cases := []struct {
		name string
		more []string
		want string
	}{
		{"stdout in a missing directory", []string{fmt.Sprintf("stdout = %q", missing)},
			fmt.Sprintf(`service "logs-bad.toml": stdout: open %s: no such file or directory`, missing)},
		{"stderr under a regular file", []string{fmt.Sprintf("stderr = %q", under)},
			fmt.Sprintf(`service "logs-bad.toml": stderr: open %s: not a directory`, under)},
		{"rotated stdout in a missing directory", []string{fmt.Sprintf("stdout = %q", missing), `stdout-rotate-size = "1 KB"`},
			fmt.Sprintf(`service "logs-bad.toml": stdout: open %s: no such file or directory`, missing)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "bad-ran")
			good := filepath.Join(t.TempDir(), "good")
			h := startHorust(t, runOpts{files: map[string]string{
				"logs-bad.toml":  logsSvc(role("append", marker, "ran"), tc.more...),
				"logs-good.toml": logsSvc(role("append-sleep", good, "up")),
			}})
			st := logsWaitFinished(t, h, "logs-bad.toml")
			if st[0].State != status.FinishedFailed {
				t.Fatalf("bad service is %s, want FINISHEDFAILED: %+v", st[0].State, st[0])
			}
			if !strings.Contains(st[0].Reason, tc.want) {
				t.Errorf("status reason %q does not contain %q", st[0].Reason, tc.want)
			}
			eventually(t, 10*time.Second, "the error on horust's stderr", func() bool {
				return strings.Contains(h.stderr.String(), strconv.Quote(tc.want)[1:len(strconv.Quote(tc.want))-1])
			})
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the service ran although its output could not be opened")
			}
			h.waitState("logs-good.toml", 10*time.Second, "RUNNING")
			eventually(t, 10*time.Second, "the other service to run", func() bool { return readFile(good) == "up\n" })
			if h.exited() {
				t.Fatal("horust exited")
			}
		})
	}
}

// TestLogsRotationOnStdoutIgnored: rotation on a STDOUT target is ignored
// with a warning, and the service does not die of SIGPIPE (as it did in the
// original).
func TestLogsRotationOnStdoutIgnored(t *testing.T) {
	tmp := t.TempDir()
	outPath := filepath.Join(tmp, "horust.out")
	h := logsStart(t, runOpts{env: []string{"HORUST_LOG=warn"}, files: map[string]string{
		"logs-rs.toml":      logsSvc(role("logs-bytes", "500"), `stdout = "STDOUT"`, `stdout-rotate-size = "50"`),
		"logs-rs-keep.toml": logsSvc(role("sleep")),
	}}, outPath)
	st := logsWaitFinished(t, h, "logs-rs.toml")[0]
	if st.State != status.Finished || st.LastExitCode == nil || *st.LastExitCode != 0 || st.LastSignal != "" {
		t.Fatalf("want FINISHED with exit code 0, no signal: %s", jsonOf(st))
	}
	if got := readFile(outPath); got != strings.Repeat("a", 500) {
		t.Fatalf("horust's stdout holds %d bytes %.60q, want the 500 bytes", len(got), got)
	}
	warn := regexp.MustCompile(`level=WARN .*stdout-rotate-size is ignored: stdout goes to STDOUT.*service=logs-rs\.toml`)
	sc := bufio.NewScanner(strings.NewReader(h.stderr.String()))
	found := false
	for sc.Scan() {
		found = found || warn.MatchString(sc.Text())
	}
	if !found {
		t.Fatalf("no warning about the ignored rotation on stderr:\n%s", h.stderr.String())
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Fatalf("files were created next to horust's stdout: %v", logsDir(t, tmp))
	}
}

// TestLogsDroppedOutputIsCounted: output that cannot be written (horust's
// stdout is /dev/full, as a full disk) is dropped and counted in the
// status, and the service keeps running.
func TestLogsDroppedOutputIsCounted(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	h := logsStartOut(t, runOpts{files: map[string]string{
		"logs-talk.toml": svc("/bin/sh -c 'while :; do echo hello; sleep 0.01; done'", "stdout-prefix = true"),
	}}, full)
	h.waitState("logs-talk.toml", 20*time.Second, "RUNNING")
	eventually(t, 20*time.Second, "dropped bytes counted", func() bool {
		return h.status("logs-talk.toml").OutputDropped > 0
	})
	if s := h.state("logs-talk.toml"); s != "RUNNING" {
		t.Fatalf("the service is %s while its output is dropped", s)
	}
}
