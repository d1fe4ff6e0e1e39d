//go:build linux

package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// lastLines is the reference: the last n lines of s, a last line without
// a newline counting as one.
func lastLines(s string, n int) string {
	if n == 0 || s == "" {
		return ""
	}
	body := strings.TrimSuffix(s, "\n")
	i := len(body)
	for ; n > 0 && i >= 0; n-- {
		i = strings.LastIndexByte(body[:i], '\n')
	}
	return s[i+1:]
}

func TestRingTail(t *testing.T) {
	line := func(i int) string { return fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i%97)) }
	tests := []struct {
		name  string
		lines int
	}{
		{"empty", 0},
		{"one line", 1},
		{"fewer lines than fit", 100},
		{"wrapped many times: whole lines only", 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r ring
			var all strings.Builder
			for i := range tt.lines {
				r.add([]byte(line(i)))
				all.WriteString(line(i))
			}
			held := all.String()[max(0, all.Len()-RingSize):]
			if i := strings.IndexByte(held, '\n'); all.Len() > RingSize {
				held = held[i+1:] // the ring keeps whole lines
			}
			for _, n := range []int{0, 1, 2, 10, 100, 1 << 20} {
				got, end := r.tail(n)
				if want := lastLines(held, n); string(got) != want {
					t.Fatalf("tail(%d): %d bytes %.40q..., want %d bytes %.40q...", n, len(got), got, len(want), want)
				}
				if end != uint64(all.Len()) {
					t.Fatalf("tail(%d) ends at %d, want %d", n, end, all.Len())
				}
			}
			if len(held) > RingSize {
				t.Fatalf("holds %d bytes", len(held))
			}
		})
	}
}

func TestRingManyLinesAtOnce(t *testing.T) {
	// The copier adds the whole lines of one read together: of more than
	// the ring holds, the last whole lines that fit stay (and an old line
	// that still fits beside them).
	var r ring
	r.add([]byte("old\n"))
	var blob strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&blob, "%04d%s\n", i, strings.Repeat("b", 95))
	}
	r.add([]byte(blob.String()))
	got, _ := r.tail(1 << 20)
	if want := "old\n" + blob.String()[(1000-RingSize/100)*100:]; string(got) != want {
		t.Fatalf("%d bytes from %.10q, want %d from %.10q", len(got), got, len(want), want)
	}
}

func TestRingLongLineKeepsItsEnd(t *testing.T) {
	var r ring
	r.add([]byte("short\n"))
	long := strings.Repeat("a", RingSize+100) + "\n"
	r.add([]byte(long))
	got, _ := r.tail(10)
	if want := long[len(long)-RingSize:]; string(got) != want {
		t.Fatalf("%d bytes, want the last %d of the long line", len(got), len(want))
	}
	r.add([]byte("next\n"))
	if got, _ := r.tail(1); string(got) != "next\n" {
		t.Fatalf("tail(1) = %q", got)
	}
}

func TestRingSinceSaysWhatWasMissed(t *testing.T) {
	var r ring
	r.add([]byte("a\n"))
	_, pos := r.tail(1)
	r.add([]byte("b\n"))
	data, next, missed, _ := r.since(pos)
	if string(data) != "b\n" || missed != 0 {
		t.Fatalf("since: %q, missed %d", data, missed)
	}
	for range 2 * RingSize / 100 {
		r.add(bytes.Repeat([]byte("z"), 99))
		r.add([]byte("\n"))
	}
	data, _, missed, _ = r.since(next)
	if missed == 0 || uint64(len(data))+missed != 2*RingSize/100*100 {
		t.Fatalf("%d bytes and %d missed, want %d in all", len(data), missed, 2*RingSize/100*100)
	}
}

// writeChunks writes contents as the chunks of path (oldest first).
func writeChunks(t *testing.T, path string, contents ...string) {
	t.Helper()
	for k, c := range contents {
		if err := os.WriteFile(chunkName(path, chunkID{k: int64(k)}), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// collector gathers what a Reader emits.
type collector struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	news chan struct{}
}

func newCollector() *collector { return &collector{news: make(chan struct{}, 1)} }

func (c *collector) emit(p []byte) error {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	select {
	case c.news <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitLen waits until at least n bytes were emitted, and returns them.
func (c *collector) waitLen(t *testing.T, n int) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if s := c.String(); len(s) >= n {
			return s
		}
		select {
		case <-c.news:
		case <-deadline:
			s := c.String()
			t.Fatalf("%d bytes after 20 s, want %d; the end: %q", len(s), n, s[max(0, len(s)-200):])
		}
	}
}

func TestTailAcrossChunks(t *testing.T) {
	// Chunks cut inside lines (long lines are cut at the size), an empty
	// current chunk, and a last line without a newline.
	chunkSets := map[string][]string{
		"lines cut across chunks": {"a1\na2\na", "3\nb1\n", "b2\nb3 long", " line\nc1\nc2\n", ""},
		"no newline at the end":   {"x\ny\n", "z"},
		"one chunk":               {"only\n"},
		"no lines at all":         {"", ""},
	}
	for name, chunks := range chunkSets {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.log")
			writeChunks(t, path, chunks...)
			all := strings.Join(chunks, "")
			out := NewOutputs(nil, nil, false)
			svc := &config.Service{Name: "t.toml", Stdout: path, Stderr: "STDOUT", StdoutRotateSize: 100}
			for n := 0; n <= strings.Count(all, "\n")+2; n++ {
				c := newCollector()
				r, err := out.Open(svc, "stdout", c.emit)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Tail(n); err != nil {
					t.Fatal(err)
				}
				r.Close()
				if want := lastLines(all, n); c.String() != want {
					t.Fatalf("-n %d: %q, want %q", n, c.String(), want)
				}
			}
		})
	}
}

func TestTailOpensOnlyTheChunksItNeeds(t *testing.T) {
	// 1,000 chunks, and the old ones unreadable (a directory where a chunk
	// would be): the last lines come from the newest chunks alone.
	path := filepath.Join(t.TempDir(), "out.log")
	for k := range 1000 {
		name := chunkName(path, chunkID{k: int64(k)})
		if k > 0 && k < 998 {
			if err := os.Mkdir(name, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(name, []byte(strings.Repeat(fmt.Sprintf("chunk %d\n", k), 50)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := NewOutputs(nil, nil, false)
	svc := &config.Service{Name: "t.toml", Stdout: path, Stderr: "STDOUT", StdoutRotateSize: 1000}
	c := newCollector()
	r, err := out.Open(svc, "stdout", c.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Tail(60); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("chunk 998\n", 10) + strings.Repeat("chunk 999\n", 50); c.String() != want {
		t.Fatalf("got %q", c.String())
	}
}

// follow starts Follow in the background; the returned function stops it
// and returns its error.
func follow(t *testing.T, r *Reader) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Follow(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Follow did not return after its context ended")
		}
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestFollowAcrossRotations(t *testing.T) {
	// A writer cuts chunks of 1 KiB while a follower reads: every line
	// arrives once, in order, across about 200 cuts and a restart.
	for _, keep := range []int{0, 3} {
		t.Run(fmt.Sprintf("keep %d", keep), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.log")
			out := NewOutputs(nil, nil, false)
			svc := &config.Service{Name: "f.toml", Stdout: path, Stderr: "STDOUT", StdoutRotateSize: 1024, StdoutRotateKeep: keep}
			open := func() *rotSink {
				sk, err := openRotation(path, "stdout", 1024, keep, 0, out.account(svc.Name), slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				sk.written = out.fileNotifier(path)
				return sk
			}
			sk := open()
			sk.write([]byte("before\n"))
			c := newCollector()
			r, err := out.Open(svc, "stdout", c.emit)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Tail(1); err != nil {
				t.Fatal(err)
			}
			stop := follow(t, r)
			var want strings.Builder
			want.WriteString("before\n")
			for i := range 4000 {
				if i == 2000 {
					sk.finish() // a restart continues the chunks
					sk = open()
				}
				line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("y", i%70))
				want.WriteString(line)
				sk.write([]byte(line))
				if keep > 0 && i%16 == 0 {
					// A follower slower than the pruning would skip
					// chunks: this one keeps up.
					c.waitLen(t, want.Len())
				}
			}
			sk.finish()
			got := c.waitLen(t, want.Len())
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got != want.String() {
				t.Fatalf("followed %d bytes, wrote %d; they differ", len(got), want.Len())
			}
		})
	}
}

func TestFollowSaysWhatWasPruned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	out := NewOutputs(nil, nil, false)
	svc := &config.Service{Name: "f.toml", Stdout: path, Stderr: "STDOUT", StdoutRotateSize: 10, StdoutRotateKeep: 1}
	writeChunks(t, path, "old 1\n")
	c := newCollector()
	r, err := out.Open(svc, "stdout", c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tail(1); err != nil {
		t.Fatal(err)
	}
	// Before the follower looks again, chunks 1 to 3 come and go.
	writeChunks(t, path, "", "", "", "", "new 4\n")
	for k := range 4 {
		os.Remove(chunkName(path, chunkID{k: int64(k)}))
	}
	follow(t, r)
	out.fileNotifier(path).notify()
	want := "old 1\n[horust: 3 chunks skipped: this reader fell behind]\nnew 4\n"
	if got := c.waitLen(t, len(want)); got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestFollowDirectFile(t *testing.T) {
	// The service writes the file itself: inotify wakes the follower; a
	// truncated file is read again from its start.
	path := filepath.Join(t.TempDir(), "out.log")
	out := NewOutputs(nil, nil, false)
	svc := &config.Service{Name: "d.toml", Stdout: path, Stderr: "STDOUT"}
	c := newCollector()
	r, err := out.Open(svc, "stdout", c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tail(10); err != nil { // the file does not exist yet
		t.Fatal(err)
	}
	follow(t, r)
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendTo("one\n")
	c.waitLen(t, 4)
	appendTo("two\n")
	c.waitLen(t, 8)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo("3\n")
	if got := c.waitLen(t, 10); got != "one\ntwo\n3\n" {
		t.Fatalf("%q", got)
	}
}

func TestFollowPrefixedStream(t *testing.T) {
	o, _ := pipeOutputs(t, false)
	svc := &config.Service{Name: "p.toml", Stdout: "STDOUT", Stderr: "STDOUT", Prefix: true}
	run(t, svc, o, "out:first\nsecond\n")
	c := newCollector()
	r, err := o.Open(svc, "stderr", c.emit) // stderr follows stdout
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tail(1); err != nil {
		t.Fatal(err)
	}
	follow(t, r)
	run(t, svc, o, "out:third\n", "err:no newline")
	want := "second\nthird\nno newline\n"
	if got := c.waitLen(t, len(want)); got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestOpenRefusesWhatHorustNeverSees(t *testing.T) {
	out := NewOutputs(nil, nil, false)
	tests := []struct {
		name   string
		svc    config.Service
		stream string
		want   string // "" when Open succeeds
	}{
		{"direct stdout", config.Service{Stdout: "STDOUT", Stderr: "STDERR"}, "stdout",
			`the stdout of 'x.toml' goes straight to horust's STDOUT (zero copy)`},
		{"direct stderr", config.Service{Stdout: "/tmp/x.log", Stderr: "STDERR"}, "stderr", `goes straight to horust's STDERR`},
		{"a device", config.Service{Stdout: "/dev/null", Stderr: "STDERR"}, "stdout", `goes to /dev/null, which is not a regular file`},
		{"a file", config.Service{Stdout: "/tmp/x.log", Stderr: "STDERR"}, "stdout", ""},
		{"prefixed", config.Service{Stdout: "STDOUT", Stderr: "STDERR", Prefix: true}, "stderr", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.svc.Name = "x.toml"
			_, err := out.Open(&tt.svc, tt.stream, func([]byte) error { return nil })
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (!errors.Is(err, ErrNotKept) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := NewOutputs(nil, nil, true).Open(&config.Service{Name: "x.toml"}, "stdout", nil); err != nil {
		t.Fatalf("--log-prefix: %v", err)
	}
}

func TestFollowTimestampedSeries(t *testing.T) {
	// With the timestamp suffix a restart begins a new series
	// <path>.<T'>: the follower goes on there after the old one's last
	// chunk.
	path := filepath.Join(t.TempDir(), "out.log")
	out := NewOutputs(nil, nil, false)
	svc := &config.Service{Name: "f.toml", Stdout: path, Stderr: "STDOUT", StdoutRotateSize: 20, AppendTimestamp: true}
	open := func(stamp int64) *rotSink {
		sk, err := openRotation(path, "stdout", 20, 0, stamp, out.account(svc.Name), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		sk.written = out.fileNotifier(path)
		return sk
	}
	sk := open(1_800_000_000)
	sk.write([]byte("first run 1\n"))
	c := newCollector()
	r, err := out.Open(svc, "stdout", c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tail(1); err != nil {
		t.Fatal(err)
	}
	follow(t, r)
	var want strings.Builder
	want.WriteString("first run 1\n")
	for i := range 5 {
		line := fmt.Sprintf("first run line %d\n", i)
		want.WriteString(line)
		sk.write([]byte(line))
	}
	sk.finish()
	c.waitLen(t, want.Len())
	sk = open(1_800_000_007)
	for i := range 5 {
		line := fmt.Sprintf("second run line %d\n", i)
		want.WriteString(line)
		sk.write([]byte(line))
	}
	sk.finish()
	if got := c.waitLen(t, want.Len()); got != want.String() {
		t.Fatalf("%q\nwant %q", got, want.String())
	}
}
