package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
)

// reloadBench is a loop supervising n services on the fake OS, whose
// configuration is a directory of n real service files.
type reloadBench struct {
	os   *fakeOS
	loop *Loop
	dir  string
	done chan struct{}
}

// writeServices writes n service files into a new directory.
func writeServices(b *testing.B, n int) string {
	dir := b.TempDir()
	for i := range n {
		text := fmt.Sprintf("command = \"/usr/bin/worker --id %d\"\n[restart]\nstrategy = \"always\"\n[environment]\nadditional = { ID = \"%d\" }\n", i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("w%04d.toml", i)), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func newReloadBench(b *testing.B, n int) *reloadBench {
	dir := writeServices(b, n)
	svcs, err := config.Load([]string{dir}, config.Options{Cwd: "/"})
	if err != nil {
		b.Fatal(err)
	}
	rb := &reloadBench{os: newFakeOS(b), dir: dir, done: make(chan struct{})}
	rb.loop = New(Options{OS: rb.os, Services: svcs, Load: rb.load})
	go func() {
		rb.loop.Run(rb.os.signals())
		close(rb.done)
	}()
	// Every service is started before anything is measured.
	for deadline := time.Now().Add(time.Minute); rb.started() < n; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d services started", rb.started(), n)
		}
		time.Sleep(time.Millisecond)
	}
	b.Cleanup(func() {
		rb.os.stop <- syscall.SIGTERM
		rb.os.stop <- syscall.SIGTERM
		<-rb.done
	})
	return rb
}

func (rb *reloadBench) load() (Configuration, error) {
	svcs, err := config.Load([]string{rb.dir}, config.Options{Cwd: "/"})
	return Configuration{Services: svcs}, err
}

// cpuTime is the CPU time (user and system) the test process has used.
// Unlike the wall time, it hardly grows when other programs load the
// machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// timeValidation makes the loop's Load note when it returned: the
// configuration is validated then.
func (rb *reloadBench) timeValidation() *time.Time {
	var at time.Time
	rb.loop.opt.Load = func() (Configuration, error) {
		cfg, err := rb.load()
		at = time.Now()
		return cfg, err
	}
	return &at
}

func (rb *reloadBench) started() int {
	rb.os.mu.Lock()
	defer rb.os.mu.Unlock()
	n := 0
	for _, e := range rb.os.log {
		if len(e) > 6 && e[:6] == "start " {
			n++
		}
	}
	return n
}

// BenchmarkReload1000 measures a reload of 1,000 unchanged services side by
// side with its floor, loading the same 1,000 files (config.Load): the
// difference is what the reload adds (the message to the loop, the plan,
// matching every service). Nothing may be restarted. Then one service is
// added to the 1,000 and removed again: "add" reports, beside the whole
// reload, how long after the configuration was validated the new service
// was started (ms-to-start). See docs/benchmarks.md.
func BenchmarkReload1000(b *testing.B) {
	const n = 1000
	b.Run("load-floor", func(b *testing.B) {
		rb := &reloadBench{dir: writeServices(b, n)}
		cpu := cpuTime()
		for b.Loop() {
			if _, err := rb.load(); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("unchanged", func(b *testing.B) {
		rb := newReloadBench(b, n)
		ctx := context.Background()
		validated := rb.timeValidation()
		starts := rb.started()
		var inLoop time.Duration
		cpu := cpuTime()
		for b.Loop() {
			rep, err := rb.loop.Reload(ctx, false)
			if err != nil {
				b.Fatal(err)
			}
			inLoop += time.Since(*validated)
			if a, r, c := rep.Changes(); a+r+c != 0 {
				b.Fatalf("a reload of unchanged files changes %d services", a+r+c)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(inLoop.Microseconds())/1000/float64(b.N), "ms-after-validation")
		if got := rb.started(); got != starts {
			b.Fatalf("a reload of unchanged services started %d processes", got-starts)
		}
	})
	b.Run("add", func(b *testing.B) {
		rb := newReloadBench(b, n)
		ctx := context.Background()
		validated := rb.timeValidation()
		extra := filepath.Join(rb.dir, "extra.toml")
		var toStart time.Duration
		for b.Loop() {
			if err := os.WriteFile(extra, []byte("command = \"/usr/bin/extra\"\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			starts := rb.started()
			if _, err := rb.loop.Reload(ctx, false); err != nil {
				b.Fatal(err)
			}
			rb.os.mu.Lock()
			at := rb.os.t0.Add(rb.os.startAt["extra.toml"][len(rb.os.startAt["extra.toml"])-1])
			rb.os.mu.Unlock()
			toStart += at.Sub(*validated)
			if got := rb.started(); got != starts+1 {
				b.Fatalf("adding one service started %d", got-starts)
			}
			b.StopTimer()
			if err := os.Remove(extra); err != nil {
				b.Fatal(err)
			}
			if _, err := rb.loop.Reload(ctx, false); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(toStart.Microseconds())/1000/float64(b.N), "ms-to-start")
	})
}
