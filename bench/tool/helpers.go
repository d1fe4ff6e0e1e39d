package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// forkExecWait runs argv once with stdio on null and waits for it.
func forkExecWait(path string, argv []string, files []uintptr) (syscall.WaitStatus, error) {
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: files})
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return ws, err
		}
	}
}

// cmdRestartFloor is the physical floor of a restart: no supervisor, just
// fork, exec and wait of the same command in a loop for -dur.
func cmdRestartFloor(args []string) error {
	fs := flag.NewFlagSet("restart-floor", flag.ExitOnError)
	dur := fs.Duration("dur", 10*time.Second, "how long to loop")
	_ = fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("missing -- ARGV")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	for end := time.Now().Add(*dur); time.Now().Before(end); {
		if _, err := forkExecWait(path, argv, files); err != nil {
			return err
		}
	}
	return nil
}

// cmdOneshotLoop runs argv -n times back to back (after -warmup runs) and
// prints the median and 90th percentile wall time, fork to reaped, in µs.
func cmdOneshotLoop(args []string) error {
	fs := flag.NewFlagSet("oneshot-loop", flag.ExitOnError)
	n := fs.Int("n", 200, "measured runs")
	warm := fs.Int("warmup", 5, "runs not measured")
	_ = fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("missing -- ARGV")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	var ds []float64
	fails := 0
	for i := 0; i < *warm+*n; i++ {
		t0 := time.Now()
		ws, err := forkExecWait(path, argv, files)
		d := float64(time.Since(t0).Nanoseconds()) / 1e3
		if err != nil {
			return err
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			fails++
		}
		if i >= *warm {
			ds = append(ds, d)
		}
	}
	sort.Float64s(ds)
	fmt.Printf("median_us %.1f\np90_us %.1f\nfails %d\n", ds[len(ds)/2], ds[len(ds)*9/10], fails)
	return nil
}

// cmdOneshotRounds runs several commands in rounds, each command once per
// round in turn, so that a change of load on a shared machine hits every
// command alike, and prints each one's median wall time (fork to reaped)
// and its ratio to the first command's median. Each command is one
// argument, split at blanks.
//
//	hbench oneshot-rounds -n 300 "tini -- /bin/true" "horust -- /bin/true"
func cmdOneshotRounds(args []string) error {
	fs := flag.NewFlagSet("oneshot-rounds", flag.ExitOnError)
	n := fs.Int("n", 300, "measured rounds")
	warm := fs.Int("warmup", 3, "rounds not measured")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("missing commands")
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	argvs := make([][]string, fs.NArg())
	paths := make([]string, fs.NArg())
	for i, c := range fs.Args() {
		argvs[i] = strings.Fields(c)
		if len(argvs[i]) == 0 {
			return fmt.Errorf("command %d is empty", i+1)
		}
		if paths[i], err = lookPath(argvs[i][0]); err != nil {
			return err
		}
	}
	ds := make([][]float64, len(argvs))
	for r := range *warm + *n {
		for i, argv := range argvs {
			t0 := time.Now()
			ws, err := forkExecWait(paths[i], argv, files)
			d := float64(time.Since(t0).Nanoseconds()) / 1e3
			if err != nil {
				return err
			}
			if !ws.Exited() || ws.ExitStatus() != 0 {
				return fmt.Errorf("%q: %v", fs.Arg(i), ws)
			}
			if r >= *warm {
				ds[i] = append(ds[i], d)
			}
		}
	}
	var first float64
	for i, d := range ds {
		sort.Float64s(d)
		med := d[len(d)/2]
		if i == 0 {
			first = med
		}
		fmt.Printf("%10.0f µs  %5.2fx  %s\n", med, med/first, fs.Arg(i))
	}
	return nil
}

// cmdMinit is the smallest useful PID 1, the floor of the reaping
// scenario: start argv, reap every child as it exits, exit with argv's
// status.
func cmdMinit(args []string) error {
	argv := args
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return errors.New("missing -- ARGV")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return err
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		return err
	}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for s := range sigc {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if p == pid {
			if ws.Signaled() {
				os.Exit(128 + int(ws.Signal()))
			}
			os.Exit(ws.ExitStatus())
		}
	}
}

// cmdWriter writes -bytes bytes of 100-byte lines (99 'a' and a newline) in
// writes of -chunk bytes, to -o (opened by the writer itself, in append
// mode: the floor) or to stdout (the supervisor's choice), records its start
// and end (unix ns) in -report, and with -linger then waits for a signal, so
// that a supervisor neither restarts it nor finishes.
func cmdWriter(args []string) error {
	fs := flag.NewFlagSet("writer", flag.ExitOnError)
	total := fs.Int64("bytes", 1e9, "payload bytes")
	chunk := fs.Int("chunk", 64<<10, "bytes per write")
	outPath := fs.String("o", "", "write to this file instead of stdout")
	report := fs.String("report", "", "file to record start and end times in")
	linger := fs.Bool("linger", false, "wait for a signal after writing")
	_ = fs.Parse(args)
	line := make([]byte, 100)
	for i := range line {
		line[i] = 'a'
	}
	line[99] = '\n'
	// a buffer of whole lines, long enough for any chunk start offset
	buf := make([]byte, 0, *chunk+200)
	for len(buf) < *chunk+100 {
		buf = append(buf, line...)
	}
	out := os.Stdout
	if *outPath != "" {
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		out = f
	}
	start := time.Now()
	for done := int64(0); done < *total; {
		off := int(done % 100)
		n := int64(*chunk)
		if n > *total-done {
			n = *total - done
		}
		w, err := out.Write(buf[off : off+int(n)])
		if err != nil {
			return err
		}
		done += int64(w)
	}
	end := time.Now()
	if *report != "" {
		tmp := *report + ".tmp"
		if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d %d\n", start.UnixNano(), end.UnixNano(), *total), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *report); err != nil {
			return err
		}
	}
	if *linger {
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		<-sigc
	}
	return nil
}
