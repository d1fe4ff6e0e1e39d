//go:build linux

// Command copyfloor measures the fastest a log copier can be on this
// machine: a writer (dd from /dev/zero, 64 KiB writes) into a pipe, and a
// reader (this program, which does nothing else) that moves
// everything from the pipe into a file on /dev/shm either with read(2) and
// write(2) (a 256 KiB buffer, a 1 MiB pipe: what horust's copier does,
// without any rotation or prefix logic) or with splice(2); against dd
// writing the file itself. It prints MB/s and the reader's CPU per GB.
//
//	go run ./bench/copyfloor [-bytes 1000000000] [-dir /dev/shm]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	size := flag.Int64("bytes", 1_000_000_000, "bytes to move")
	dir := flag.String("dir", "/dev/shm", "where the output file goes")
	reps := flag.Int("reps", 3, "repetitions of each mode")
	flag.Parse()
	out := filepath.Join(*dir, fmt.Sprintf("copyfloor-%d", os.Getpid()))
	defer os.Remove(out)
	gen := fmt.Sprintf("exec dd if=/dev/zero bs=65536 count=%d status=none", *size/65536)
	for range *reps {
		for _, mode := range []string{"direct", "read-write", "splice"} {
			el, cpu, n, err := run(mode, gen, out)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", mode, err)
				os.Exit(1)
			}
			fmt.Printf("RESULT copyfloor %s mb_per_s %.0f\n", mode, float64(n)/1e6/el.Seconds())
			if mode != "direct" {
				fmt.Printf("RESULT copyfloor %s reader_cpu_s_per_gb %.2f\n", mode, cpu.Seconds()/(float64(n)/1e9))
			}
		}
	}
}

// run moves the generator's output into out and returns the elapsed time,
// the reader's CPU time and the bytes moved.
func run(mode, gen, out string) (time.Duration, time.Duration, int64, error) {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	cmd := exec.Command("/bin/sh", "-c", gen)
	if mode == "direct" {
		cmd.Stdout = f
		t := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, 0, err
		}
		st, err := f.Stat()
		if err != nil {
			return 0, 0, 0, err
		}
		return time.Since(t), 0, st.Size(), nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.Close()
	_, _ = unix.FcntlInt(r.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	cmd.Stdout = w
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	w.Close()
	rfd, ofd := int(r.Fd()), int(f.Fd())
	buf := make([]byte, 256<<10)
	var total, off int64
	for {
		var n int64
		var err error
		if mode == "splice" {
			n, err = unix.Splice(rfd, nil, ofd, &off, 1<<20, unix.SPLICE_F_MOVE)
		} else {
			var m int
			m, err = unix.Read(rfd, buf)
			n = int64(m)
			for b := buf[:max(m, 0)]; len(b) > 0 && err == nil; {
				var k int
				k, err = unix.Write(ofd, b)
				b = b[k:]
			}
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, 0, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	el := time.Since(t)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	if err := cmd.Wait(); err != nil {
		return 0, 0, 0, err
	}
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	return el, cpu, total, nil
}
