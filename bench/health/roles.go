//go:build linux

package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// The benchmark binary also plays the services: `health role:NAME args...`.
// Every role that stays up blocks until SIGTERM or SIGINT.

// playRole runs a role and returns its exit code. bornAt is the time main
// was entered, the earliest this process can stamp.
func playRole(name string, args []string, bornAt time.Time) int {
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch name {
	case "stamp": // stamp FILE [exit]: write when this process started, then run
		writeAtomic(arg(0), strconv.FormatInt(bornAt.UnixNano(), 10))
		if arg(1) == "exit" {
			return 0
		}
		return waitForTerm()
	case "http-flip": // http-flip ADDR K FILE: 503 to the first K-1 requests, 200 from the Kth on
		return httpFlip(arg(0), arg(1), arg(2))
	case "notify-stamp": // notify-stamp DELAY FILE: after DELAY, send READY=1; FILE gets the send time
		return notifyStamp(arg(0), arg(1))
	case "http-many": // http-many PORTSFILE READYFILE: serve 200 on every port listed
		return httpMany(arg(0), arg(1))
	case "idle": // idle: run until TERM
		return waitForTerm()
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", name)
	return 100
}

func waitForTerm() int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	return 0
}

func writeAtomic(path, content string) {
	_ = os.WriteFile(path+".tmp", []byte(content), 0o644)
	_ = os.Rename(path+".tmp", path)
}

// httpFlip answers 503 until its Kth request, which it answers 200 after
// noting the time: the check becomes true at the very moment it is probed.
func httpFlip(addr, kArg, file string) int {
	k, _ := strconv.Atoi(kArg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "http-flip:", err)
		return 5
	}
	var n atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		switch c := n.Add(1); {
		case c < int64(k):
			w.WriteHeader(http.StatusServiceUnavailable)
		case c == int64(k):
			at := time.Now()
			w.WriteHeader(http.StatusOK)
			writeAtomic(file, strconv.FormatInt(at.UnixNano(), 10))
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	go func() { _ = (&http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}).Serve(ln) }()
	return waitForTerm()
}

// notifyStamp sends READY=1 to NOTIFY_SOCKET after a delay. The socket is
// opened first; the time noted is the one just before the send.
func notifyStamp(delayArg, file string) int {
	delay, _ := time.ParseDuration(delayArg)
	addr := os.Getenv("NOTIFY_SOCKET")
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify-stamp:", err)
		return 4
	}
	time.Sleep(delay)
	at := time.Now()
	if _, err := c.Write([]byte("READY=1\nSTATUS=benchmark")); err != nil {
		fmt.Fprintln(os.Stderr, "notify-stamp:", err)
		return 4
	}
	writeAtomic(file, strconv.FormatInt(at.UnixNano(), 10))
	_ = c.Close()
	return waitForTerm()
}

// httpMany serves every port in PORTSFILE (one per line): 200 to any path,
// and on /stats "REQUESTS NEWCONNS" counted over all ports.
func httpMany(portsFile, readyFile string) int {
	data, err := os.ReadFile(portsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "http-many:", err)
		return 5
	}
	var requests, conns atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stats" {
			fmt.Fprintf(w, "%d %d\n", requests.Load(), conns.Load())
			return
		}
		requests.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	for _, p := range strings.Fields(string(data)) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "http-many:", err)
			return 5
		}
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			},
		}
		go func() { _ = srv.Serve(ln) }()
	}
	writeAtomic(readyFile, "ok")
	if addr := os.Getenv("NOTIFY_SOCKET"); addr != "" {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err == nil {
			_, err = c.Write([]byte("READY=1"))
			_ = c.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "http-many: notify:", err)
			return 4
		}
	}
	return waitForTerm()
}
