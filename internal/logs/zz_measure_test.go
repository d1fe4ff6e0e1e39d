package logs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"golang.org/x/sys/unix"
)

func cpu(who int) time.Duration {
	var ru unix.Rusage
	unix.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ucpu() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano())
}

func TestMeasure(t *testing.T) {
	if os.Getenv("MEASURE") == "" {
		t.Skip()
	}
	const n = 1 << 30
	for _, mode := range []string{"floor", "rotate", "prefix", "floor", "rotate", "prefix"} {
		dir, _ := os.MkdirTemp("/dev/shm", "m")
		f, _ := os.Create(filepath.Join(dir, "horust.out"))
		out := NewOutputs(f, f, false)
		svc := &config.Service{Name: "bench.toml", Stdout: filepath.Join(dir, "direct.log"), Stderr: "STDOUT"}
		switch mode {
		case "rotate":
			svc.Stdout, svc.StdoutRotateSize, svc.StdoutRotateKeep = filepath.Join(dir, "out.log"), 100<<20, 2
		case "prefix":
			svc.Stdout, svc.Prefix = "STDOUT", true
		}
		u0 := ucpu()
		c0, ch0 := cpu(unix.RUSAGE_SELF), cpu(unix.RUSAGE_CHILDREN)
		t0 := time.Now()
		run(t, svc, out, "flood:"+strconv.Itoa(n))
		el := time.Since(t0)
		c1, ch1 := cpu(unix.RUSAGE_SELF), cpu(unix.RUSAGE_CHILDREN)
		t.Logf("%-7s %7.0f MB/s  horust cpu %v/GB (user %v) child cpu %v", mode, float64(n)/el.Seconds()/1e6, (c1-c0)*1e9/n, (ucpu()-u0)*1e9/n, ch1-ch0)
		f.Close()
		os.RemoveAll(dir)
	}
}
