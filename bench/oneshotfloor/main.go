// Command oneshotfloor is the floor of the one-shot benchmark for a Go
// program: the least a Go supervisor must do to run one command. It starts
// the Go runtime, forks and execs its arguments, waits for that child and
// exits with its status; nothing else (no signals, no configuration).
//
//	oneshotfloor /bin/true
package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(2)
	}
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		os.Exit(127)
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	os.Exit(ws.ExitStatus())
}
