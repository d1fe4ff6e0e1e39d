package watch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// watching runs Run on paths with a short settle time until the test ends,
// and returns the count of calls.
func watching(t *testing.T, paths ...string) *atomic.Int64 {
	t.Helper()
	var calls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		close(ready)
		done <- Run(ctx, paths, 50*time.Millisecond, func() { calls.Add(1) }, slog.New(slog.DiscardHandler))
	}()
	<-ready
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &calls
}

// eventually polls until cond holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// untilSeen rewrites path until the watch reports a change: the watch may
// not be set up yet when the test's first write happens.
func untilSeen(t *testing.T, calls *atomic.Int64, change func()) {
	t.Helper()
	before := calls.Load()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the change was not reported")
		}
		change()
		// Poll for the report for a while, then change again.
		again := time.Now().Add(time.Second)
		for calls.Load() == before && time.Now().Before(again) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestWatchServiceDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.toml"), "command = \"a\"\n")
	calls := watching(t, dir)
	untilSeen(t, calls, func() { write(t, filepath.Join(dir, "a.toml"), "command = \"b\"\n") })
	// A burst of changes settles into far fewer reports.
	before := calls.Load()
	for i := range 20 {
		write(t, filepath.Join(dir, "b.toml"), "command = \"x\"\n"+string(rune('a'+i)))
	}
	eventually(t, "the burst to be reported", func() bool { return calls.Load() > before })
	if n := calls.Load() - before; n >= 20 {
		t.Fatalf("%d reports for a burst of 20 writes: the changes did not settle", n)
	}
}

func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	// A ConfigMap volume: files are symlinks through ..data, which is
	// swapped to a new timestamped directory by one rename.
	dir := t.TempDir()
	mk := func(gen, text string) {
		d := filepath.Join(dir, "..2026_"+gen)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(d, "a.toml"), text)
	}
	mk("1", "command = \"a\"\n")
	if err := os.Symlink("..2026_1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/a.toml", filepath.Join(dir, "a.toml")); err != nil {
		t.Fatal(err)
	}
	calls := watching(t, dir)
	n := 1
	untilSeen(t, calls, func() {
		n++
		gen := string(rune('0' + n))
		mk(gen, "command = \"b\"\n")
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink("..2026_"+gen, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWatchOneFileInADirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "horust.toml") // does not exist yet
	calls := watching(t, cfg)
	untilSeen(t, calls, func() { write(t, cfg, "unsuccessful-exit-finished-failed = true\n") })
}

func TestWatchNothingWatchable(t *testing.T) {
	err := Run(context.Background(), []string{"/nonexistent/dir/x.toml"}, time.Millisecond, func() {}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("no error for paths that cannot be watched")
	}
}
