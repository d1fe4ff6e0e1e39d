//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// roles are the extra parts the test binary can play, registered by test
// files with registerRole (in an init function) so that each area of tests
// keeps its own helpers.
var roles = map[string]func(args []string) int{}

// registerRole adds a role; `player role:NAME args...` runs fn(args) and
// exits with its result.
func registerRole(name string, fn func(args []string) int) {
	if _, dup := roles[name]; dup {
		panic("duplicate e2e role " + name)
	}
	roles[name] = fn
}

// playRole is the test binary playing a service: `player role:NAME args...`.
// Roles block with select{} or signal waits, never with polling.
func playRole(role string, args []string) int {
	if fn, ok := roles[role]; ok {
		return fn(args)
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	dur := func(s string) time.Duration { d, _ := time.ParseDuration(s); return d }
	switch role {
	case "sleep": // run until TERM, INT, HUP or KILL ends it (a Go program ignores USR1 and USR2 nobody asked for)
		select {}
	case "exit": // exit CODE [AFTER]
		time.Sleep(dur(arg(1)))
		return atoi(arg(0))
	case "append": // append FILE TEXT, then exit 0 (or CODE)
		appendLine(arg(0), arg(1))
		return atoi(arg(2))
	case "append-sleep": // append FILE TEXT, then run until signalled
		appendLine(arg(0), arg(1))
		select {}
	case "trap": // trap SIG CODE [DELAY] [FILE]: on SIG append "got SIG" to FILE, wait DELAY, exit CODE
		sig := sigByName(arg(0))
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, sig)
		ready(arg(3))
		<-ch
		if arg(3) != "" {
			appendLine(arg(3), "got "+arg(0))
		}
		time.Sleep(dur(arg(2)))
		return atoi(arg(1))
	case "ignore-term": // ignore TERM and INT, run until SIGKILL; writes its pid to FILE
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		ready(arg(0))
		select {}
	case "env": // env FILE: write the environment, one per line, then run
		os.WriteFile(arg(0)+".tmp", []byte(strings.Join(os.Environ(), "\n")+"\n"), 0o644)
		os.Rename(arg(0)+".tmp", arg(0))
		select {}
	case "whoami": // whoami FILE: uid gid groups cwd
		groups, _ := syscall.Getgroups()
		wd, _ := os.Getwd()
		os.WriteFile(arg(0)+".tmp", []byte(fmt.Sprintf("uid=%d gid=%d groups=%v cwd=%s\n", os.Getuid(), os.Getgid(), groups, wd)), 0o644)
		os.Rename(arg(0)+".tmp", arg(0))
		select {}
	case "print": // print OUT ERR: one line on stdout, one on stderr, exit 0
		fmt.Fprintln(os.Stdout, arg(0))
		fmt.Fprintln(os.Stderr, arg(1))
		return 0
	case "grandchild": // grandchild FILE: start a child that ignores TERM (its pid in FILE), then run
		p, err := os.StartProcess(selfPath(), []string{selfPath(), "role:ignore-term", arg(0)}, &os.ProcAttr{Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			return 3
		}
		p.Release()
		select {}
	case "orphans": // orphans N MARKER: leave N short-lived orphans behind, touch MARKER, run
		// Each sh backgrounds a sleep and exits at once: the sleep is an
		// orphan that the kernel hands to horust (subreaper or PID 1).
		n := atoi(arg(0))
		for range n {
			p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "/bin/sleep 0.05 &"}, &os.ProcAttr{})
			if err == nil {
				p.Wait() // the test's own helper reaps its own child
			}
		}
		ready(arg(1))
		select {}
	case "daemon": // daemon FILE: double fork out of the session; the daemon writes its pid and runs
		if arg(1) == "child" {
			syscall.Setsid()
			p, err := os.StartProcess(selfPath(), []string{selfPath(), "role:ignore-term", arg(0)}, &os.ProcAttr{})
			if err == nil {
				p.Release()
			}
			return 0
		}
		p, err := os.StartProcess(selfPath(), []string{selfPath(), "role:daemon", arg(0), "child"}, &os.ProcAttr{})
		if err != nil {
			return 3
		}
		p.Release()
		select {}
	case "notify": // notify DELAY [STATUS]: send READY=1 (and STATUS) to NOTIFY_SOCKET after DELAY, then run
		time.Sleep(dur(arg(0)))
		if err := sdNotify("READY=1\nSTATUS=" + arg(1)); err != nil {
			fmt.Fprintln(os.Stderr, "notify:", err)
			return 4
		}
		select {}
	case "listen": // listen ADDR [AFTER]: accept TCP connections on ADDR after AFTER
		time.Sleep(dur(arg(1)))
		l, err := net.Listen("tcp", arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 5
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return 6
			}
			c.Close()
		}
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
	return 100
}

func selfPath() string {
	p, _ := os.Executable()
	return p
}

// ready writes the pid to file (atomically), when a file is given.
func ready(file string) {
	if file == "" {
		return
	}
	os.WriteFile(file+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o644)
	os.Rename(file+".tmp", file)
}

func appendLine(file, text string) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, text)
	f.Close()
}

func sigByName(name string) syscall.Signal {
	switch strings.TrimPrefix(name, "SIG") {
	case "INT":
		return syscall.SIGINT
	case "HUP":
		return syscall.SIGHUP
	case "USR1":
		return syscall.SIGUSR1
	case "USR2":
		return syscall.SIGUSR2
	case "QUIT":
		return syscall.SIGQUIT
	case "WINCH":
		return syscall.SIGWINCH
	}
	return syscall.SIGTERM
}

// sdNotify sends one datagram to $NOTIFY_SOCKET as sd_notify does ("@" is
// the abstract namespace).
func sdNotify(msg string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return fmt.Errorf("NOTIFY_SOCKET is not set")
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}
