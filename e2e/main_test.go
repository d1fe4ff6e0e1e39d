//go:build linux

// Package e2e holds black-box tests of the built horust, horustctl and
// horust-probe: real processes, real signals, real sockets, horust as PID 1
// in a new pid namespace. TestMain builds the binaries once; the test binary itself
// plays the services (see roles.go), so no script is needed on disk.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var (
	horustBin    string // the built horust
	horustctlBin string // the built horustctl
	probeBin     string // the built horust-probe, beside horust (https checks)
	selfBin      string // this test binary, which plays the services
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "role:") {
		// syscall.Exit, not os.Exit: under -race, os.Exit(0) sleeps 1 s
		// (atexit_sleep_ms) before the process ends.
		syscall.Exit(playRole(strings.TrimPrefix(os.Args[1], "role:"), os.Args[2:]))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "horust-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Services run as other users in some tests: the binaries and the test
	// binary must be reachable by them.
	_ = os.Chmod(dir, 0o755)
	for _, b := range []struct{ out, pkg string }{{"horust", "../cmd/horust"}, {"horustctl", "../cmd/horustctl"}, {"horust-probe", "../cmd/horust-probe"}} {
		args := []string{"build", "-o", filepath.Join(dir, b.out)}
		if raceEnabled && b.out == "horust" {
			// The suite under -race checks horust under the race detector
			// too. (horustctl is a short-lived client with one goroutine
			// of interest; a race build of it only slows every call.)
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", b.pkg, err)
			return 1
		}
	}
	if raceEnabled {
		// A race-detector binary sleeps 1 s at exit by default, waiting
		// for late reports: horust exits in every test.
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	horustBin = filepath.Join(dir, "horust")
	horustctlBin = filepath.Join(dir, "horustctl")
	probeBin = filepath.Join(dir, "horust-probe")
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A copy other users can execute (the go test binary may live in a
	// private temp directory).
	selfBin = filepath.Join(dir, "player")
	if testing.CoverMode() != "" {
		// Under go test -cover this binary is instrumented, and each
		// service it plays would print a GOCOVERDIR warning into the
		// output the tests check (services get a clean environment): the
		// player is then built without coverage.
		cmd := exec.Command("go", "test", "-c", "-o", selfBin, ".")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building the player: %v\n", err)
			return 1
		}
	} else if err := copyFile(self, selfBin, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}
