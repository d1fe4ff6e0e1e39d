//go:build linux

package logs

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

func rotSvc(path string, size uint64, keep int) *config.Service {
	return &config.Service{Name: "rot.toml", Stdout: path, Stderr: "STDERR", StdoutRotateSize: size, StdoutRotateKeep: keep}
}

// sizes builds the expected map: name=size pairs.
func sizes(pairs ...any) map[string]int64 {
	m := map[string]int64{}
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i].(string)] = int64(pairs[i+1].(int))
	}
	return m
}

func TestRotationLikeOriginal(t *testing.T) {
	// The original's test: 500 bytes without newlines at 50 bytes per chunk
	// give out.log, out.log.1 ... out.log.9 of 50 bytes and an empty
	// out.log.10.
	dir := t.TempDir()
	out, _, _ := testOutputs(t, false, false)
	run(t, rotSvc(filepath.Join(dir, "out.log"), 50, 0), out, "fill:a:500")
	want := sizes("out.log", 50, "out.log.10", 0)
	for k := 1; k <= 9; k++ {
		want["out.log."+strconv.Itoa(k)] = 50
	}
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("chunks: got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	if got := readFile(t, filepath.Join(dir, "out.log.9")); got != strings.Repeat("a", 50) {
		t.Fatalf("out.log.9 = %q", got)
	}
	if got := currentLink(t, filepath.Join(dir, "out.log")); got != "out.log.10" {
		t.Fatalf("out.log.current -> %q, want the chunk being written, out.log.10", got)
	}
}

func TestRotationCutRule(t *testing.T) {
	line := func(n int) string { return strings.Repeat("l", n-1) + "\n" }
	tests := []struct {
		name string
		size uint64
		data string
		want []int // chunk sizes in order
	}{
		{"no newline: cut at the size", 50, strings.Repeat("a", 120), []int{50, 50, 20}},
		{"small chunk: cut after the last newline of its last half", 100, strings.Repeat(line(30), 10), []int{90, 90, 90, 30}},
		{"small chunk: newline in the first half does not cut", 100, line(40) + strings.Repeat("b", 80), []int{100, 20}},
		{"newline exactly at the size", 100, line(100) + "tail", []int{100, 4}},
		{"big chunk: newline in the last 4 KiB cuts", 10000, strings.Repeat(line(4000), 3), []int{8000, 4000}},
		{"big chunk: newline before the last 4 KiB does not cut", 10000, strings.Repeat(line(5500), 2), []int{10000, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.log")
			out, _, _ := testOutputs(t, false, false)
			run(t, rotSvc(path, tt.size, 0), out, "out:"+tt.data)
			var got []int
			var all strings.Builder
			for k := 0; ; k++ {
				name := chunkName(path, chunkID{k: int64(k)})
				b, err := os.ReadFile(name)
				if err != nil {
					break
				}
				got = append(got, len(b))
				all.Write(b)
			}
			if all.String() != tt.data {
				t.Fatalf("chunks joined differ from the data written (%d vs %d bytes)", all.Len(), len(tt.data))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("chunk sizes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRotationCutAfterNewlineOfAnEarlierRead(t *testing.T) {
	// The chunk already ends with a newline in its window when a read
	// without newline crosses the size: the cut is right there.
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	r, err := openRotation(path, "stdout", 100, 0, 0, &account{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.write([]byte(strings.Repeat("a", 79) + "\n"))
	r.write([]byte(strings.Repeat("b", 30)))
	r.finish()
	got := dirSizes(t, dir)
	if want := sizes("out.log", 80, "out.log.1", 30); !maps.Equal(got, want) {
		t.Fatalf("got %s, want %s", formatSizes(got), formatSizes(want))
	}
}

func TestRotationKeep(t *testing.T) {
	// 1000 bytes at 50 per chunk: chunks 0..19 full and 20 empty; keep 3
	// leaves 17, 18, 19 and the current 20.
	dir := t.TempDir()
	out, _, _ := testOutputs(t, false, false)
	run(t, rotSvc(filepath.Join(dir, "out.log"), 50, 3), out, "fill:k:1000")
	want := sizes("out.log.17", 50, "out.log.18", 50, "out.log.19", 50, "out.log.20", 0)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	if got := currentLink(t, filepath.Join(dir, "out.log")); got != "out.log.20" {
		t.Fatalf("out.log.current -> %q, want out.log.20", got)
	}
}

func TestRotationRestartContinues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	out, _, _ := testOutputs(t, false, false)
	svc := rotSvc(path, 50, 0)
	run(t, svc, out, "fill:a:120")
	run(t, svc, out, "fill:b:60")
	want := sizes("out.log", 50, "out.log.1", 50, "out.log.2", 50, "out.log.3", 30)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	if got := readFile(t, path+".2"); got != strings.Repeat("a", 20)+strings.Repeat("b", 30) {
		t.Fatalf("the previous run's tail was not kept: %q", got)
	}
	if got := readFile(t, path); got != strings.Repeat("a", 50) {
		t.Fatalf("chunk 0 was overwritten: %q", got)
	}

	// The retention counts the chunks of earlier runs.
	svc.StdoutRotateKeep = 1
	run(t, svc, out, "fill:c:10")
	want = sizes("out.log.2", 50, "out.log.3", 40)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("with keep 1: got %s\nwant %s", formatSizes(got), formatSizes(want))
	}

	// A lower size than the current chunk's cuts it at the start.
	svc.StdoutRotateSize = 20
	run(t, svc, out, "fill:d:5")
	want = sizes("out.log.3", 40, "out.log.4", 5)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("with size 20: got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	if got := currentLink(t, path); got != "out.log.4" {
		t.Fatalf("out.log.current -> %q, want out.log.4", got)
	}
}

func TestRotationTimestampSuffix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	out, _, _ := testOutputs(t, false, false)
	svc := rotSvc(path, 50, 0)
	svc.AppendTimestamp = true
	before := time.Now().Unix()
	run(t, svc, out, "fill:t:120")
	after := time.Now().Unix()
	got := dirSizes(t, dir)
	var stamp int64
	for name := range got {
		rest, ok := strings.CutPrefix(name, "out.log.")
		if !ok {
			t.Fatalf("unexpected file %q", name)
		}
		ts, _, _ := strings.Cut(rest, ".")
		stamp, _ = strconv.ParseInt(ts, 10, 64)
	}
	if stamp < before || stamp > after {
		t.Fatalf("stamp %d not within [%d, %d]: %s", stamp, before, after, formatSizes(got))
	}
	T := strconv.FormatInt(stamp, 10)
	want := sizes("out.log."+T, 50, "out.log."+T+".1", 50, "out.log."+T+".2", 20)
	if !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
}

func TestRotationTimestampSeries(t *testing.T) {
	// Runs in one second continue one series; retention spans every series
	// and ignores files that are not chunks.
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	for _, name := range []string{"out.log.1600000000", "out.log.1600000000.1", "out.log.1700000000", "out.log.x", "out.log.0", "out.log.01", "out.log"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	for range 2 {
		r, err := openRotation(path, "stdout", 10, 3, 1800000000, &account{}, log)
		if err != nil {
			t.Fatal(err)
		}
		r.write([]byte("0123456"))
		r.finish()
	}
	want := sizes("out.log.1600000000.1", 3, "out.log.1700000000", 3, "out.log.1800000000", 10, "out.log.1800000000.1", 4,
		"out.log.x", 3, "out.log.0", 3, "out.log.01", 3, "out.log", 3)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	if got := currentLink(t, path); got != "out.log.1800000000.1" {
		t.Fatalf("out.log.current -> %q, want out.log.1800000000.1", got)
	}
}

// TestRotationCurrentLinkReplacesLeftovers: a temporary link left by a run
// that died between symlink and rename, and a link to an old chunk, are
// replaced; the link is relative, so it survives moving the folder.
func TestRotationCurrentLinkReplacesLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	if err := os.Symlink("elsewhere", path+".current.tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("out.log.7", path+".current"); err != nil {
		t.Fatal(err)
	}
	r, err := openRotation(path, "stdout", 10, 0, 0, &account{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.write([]byte("0123456789abc"))
	r.finish()
	if got := currentLink(t, path); got != "out.log.1" {
		t.Fatalf("out.log.current -> %q, want out.log.1", got)
	}
	if _, err := os.Lstat(path + ".current.tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary link is still there: %v", err)
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(moved, "out.log.current")); got != "abc" {
		t.Fatalf("reading through the moved link: %q, want abc", got)
	}
}

func TestRotationStderrFollowsStdout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	out, hout, herr := testOutputs(t, false, false)
	svc := rotSvc(path, 5, 0)
	svc.Stderr = "STDOUT"
	run(t, svc, out, "out:aaaa", "err:bbbb", "out:cccc")
	want := sizes("out.log", 5, "out.log.1", 5, "out.log.2", 2)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	joined := readFile(t, path) + readFile(t, path+".1") + readFile(t, path+".2")
	if joined != "aaaabbbbcccc" {
		t.Fatalf("chunks hold %q", joined)
	}
	if readFile(t, hout)+readFile(t, herr) != "" {
		t.Fatal("horust's own outputs got data")
	}
}

func TestRotationStderrOwnChunks(t *testing.T) {
	dir := t.TempDir()
	out, _, _ := testOutputs(t, false, false)
	svc := &config.Service{Name: "e.toml", Stdout: filepath.Join(dir, "out.log"), Stderr: filepath.Join(dir, "err.log"),
		StderrRotateSize: 4, StderrRotateKeep: 1}
	run(t, svc, out, "out:plain", "err:0123456789")
	want := sizes("out.log", 5, "err.log.1", 4, "err.log.2", 2)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
}

func TestParseChunk(t *testing.T) {
	tests := []struct {
		name    string
		stamped bool
		want    chunkID
		ok      bool
	}{
		{"out.log", false, chunkID{}, true},
		{"out.log.7", false, chunkID{k: 7}, true},
		{"out.log.07", false, chunkID{}, false},
		{"out.log.0", false, chunkID{}, false},
		{"out.log.1700000000", false, chunkID{}, false},
		{"out.log.1.2", false, chunkID{}, false},
		{"out.log.1700000000", true, chunkID{stamp: 1700000000}, true},
		{"out.log.1700000000.3", true, chunkID{stamp: 1700000000, k: 3}, true},
		{"out.log.17", true, chunkID{}, false},
		{"out.log", true, chunkID{}, false},
		{"out.log.1700000000.", true, chunkID{}, false},
		{"out.logs.1", false, chunkID{}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s stamped=%v", tt.name, tt.stamped), func(t *testing.T) {
			got, ok := parseChunk("out.log", tt.name, tt.stamped)
			if ok != tt.ok || ok && got != tt.want {
				t.Fatalf("got %v %v, want %v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRotationBigChunksCutAtLines(t *testing.T) {
	// 100-byte lines into 1 MiB chunks: each chunk ends at the last whole
	// line that fits, 1048500 bytes.
	const n = 3_000_000
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	out, _, _ := testOutputs(t, false, false)
	run(t, rotSvc(path, 1<<20, 0), out, "flood:"+strconv.Itoa(n))
	want := sizes("out.log", 1048500, "out.log.1", 1048500, "out.log.2", n-2*1048500)
	if got := dirSizes(t, dir); !maps.Equal(got, want) {
		t.Fatalf("got %s\nwant %s", formatSizes(got), formatSizes(want))
	}
	line := strings.Repeat("a", 99) + "\n"
	for name := range want {
		if text := readFile(t, filepath.Join(dir, name)); strings.ReplaceAll(text, line, "") != "" {
			t.Fatalf("%s is not whole lines", name)
		}
	}
	if st := out.Stats("rot.toml"); st.Copied != n || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}
