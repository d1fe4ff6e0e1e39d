package server

import (
	"bytes"
	"context"
	"errors"
	"github.com/horust-go/horust/internal/control"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
)

// probeOnly is a Backend for the probe listener that counts every call
// that could change a state: the probe port must never make one.
type probeOnly struct {
	*memBackend
	changes atomic.Int64
}

func (b *probeOnly) Start(ctx context.Context, name string) (status.ServiceStatus, error) {
	b.changes.Add(1)
	return b.memBackend.Start(ctx, name)
}

func (b *probeOnly) Stop(ctx context.Context, name string) (status.ServiceStatus, error) {
	b.changes.Add(1)
	return b.memBackend.Stop(ctx, name)
}

func (b *probeOnly) Restart(ctx context.Context, name string) (status.ServiceStatus, error) {
	b.changes.Add(1)
	return b.memBackend.Restart(ctx, name)
}

func (b *probeOnly) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	b.changes.Add(1)
	return b.memBackend.Signal(ctx, name, sig)
}

func (b *probeOnly) Shutdown(ctx context.Context) error {
	b.changes.Add(1)
	return b.memBackend.Shutdown(ctx)
}

func (b *probeOnly) Reload(ctx context.Context, dryRun bool) (control.ReloadReply, error) {
	b.changes.Add(1)
	return b.memBackend.Reload(ctx, dryRun)
}

// FuzzProbeConnection sends whole connections' worth of bytes to the probe
// listener (the one that faces the pod network): whatever comes, no state
// changes, the server answers only with HTTP/1.1 responses or silence, and
// it keeps serving. Seeds live in testdata/fuzz.
func FuzzProbeConnection(f *testing.F) {
	for _, s := range []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST /v1/services/a/stop HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n{\"signal\":\"KILL\"}\r\n0\r\n\r\n",
		"GET /%2e%2e/v1/services HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x/v1/shutdown HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /healthz HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	b := &probeOnly{memBackend: newMemBackend(svc("a", status.Running))}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = ServeProbes(ctx, l, Options{Backend: b, ReadHeaderTimeout: 300 * time.Millisecond, CallTimeout: time.Second})
		close(done)
	}()
	f.Cleanup(func() { cancel(); <-done })
	addr := l.Addr().String()

	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(in)
		_ = c.(*net.TCPConn).CloseWrite()
		out, err := io.ReadAll(c)
		if err != nil && !isReset(err) {
			t.Fatalf("reading the answer: %v", err)
		}
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
			t.Fatalf("answer is not HTTP/1.1: %q", out)
		}
		if n := b.changes.Load(); n != 0 {
			t.Fatalf("the probe listener made %d state-changing calls for %q", n, in)
		}
		st, err := b.Get(context.Background(), "a")
		signals, shutdowns, _ := b.snapshot()
		if err != nil || st.State != status.Running || st.Restarts != 0 || len(signals) != 0 || shutdowns != 0 {
			t.Fatalf("state changed after %q: %+v %v", in, st, err)
		}
		if strings.Contains(string(out), "500 Internal") {
			t.Fatalf("a 500 (a panic?) for %q: %q", in, out)
		}
	})
}

// isReset reports a connection the server reset: it closed with unread
// data (after a 400 it stops reading).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
