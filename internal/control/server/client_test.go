package server

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/status"
)

func TestClientMirrorsTheBackend(t *testing.T) {
	names := []string{"a.toml", "group/b.toml", "..", ".", "with space", "100%", "q?x#y"}
	var services []status.ServiceStatus
	for _, n := range names {
		services = append(services, svc(n, status.Running))
	}
	b := newMemBackend(services...)
	ts := startServer(t, b, Options{})
	c := client.New(ts.path)
	ctx := context.Background()

	list, err := c.List(ctx)
	if err != nil || len(list) != len(names) {
		t.Fatalf("List: %d services, %v", len(list), err)
	}
	for _, n := range names {
		t.Run("name "+n+" round-trips", func(t *testing.T) {
			st, err := c.Get(ctx, n)
			if err != nil || st.Name != n {
				t.Fatalf("Get: %+v %v", st, err)
			}
			st, err = c.Restart(ctx, n)
			if err != nil || st.Name != n || st.Restarts != 1 {
				t.Fatalf("Restart: %+v %v", st, err)
			}
			if err := c.Signal(ctx, n, syscall.SIGUSR1); err != nil {
				t.Fatalf("Signal: %v", err)
			}
		})
	}
	signals, _, _ := b.snapshot()
	if len(signals) != len(names) || signals[1] != "group/b.toml:USR1" {
		t.Fatalf("backend signals %q", signals)
	}
	if st, err := c.Stop(ctx, "a.toml"); err != nil || st.State != status.InKilling {
		t.Fatalf("Stop: %+v %v", st, err)
	}
	b.setState("a.toml", status.Finished)
	if st, err := c.Start(ctx, "a.toml"); err != nil || st.State != status.Starting {
		t.Fatalf("Start: %+v %v", st, err)
	}
	if _, err := c.Get(ctx, ""); err == nil {
		t.Fatal("Get with an empty name did not fail")
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, n, _ := b.snapshot(); n != 1 {
		t.Fatalf("backend saw %d shutdowns", n)
	}
}

func TestClientErrors(t *testing.T) {
	b := newMemBackend(svc("a", status.Running), svc("f", status.FinishedFailed), svc("s", status.Starting))
	ts := startServer(t, b, Options{})
	c := client.New(ts.path)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		is     error
		status int
		msg    string
	}{
		{"unknown service", func() error { _, err := c.Get(ctx, "nope"); return err }, control.ErrNotFound, 404, "no such service 'nope'"},
		{"signal to a stopped service", func() error { return c.Signal(ctx, "f", syscall.SIGHUP) }, control.ErrNotRunning, 409, "service 'f' is FINISHEDFAILED"},
		{"wait that can never be met", func() error { _, err := c.Wait(ctx, []string{"a", "f"}, control.WaitRunning, time.Minute); return err },
			control.ErrUnreachable, 409, "service 'f' is FINISHEDFAILED"},
		{"wait that times out", func() error {
			_, err := c.Wait(ctx, []string{"s"}, control.WaitRunning, 100*time.Millisecond)
			return err
		},
			client.ErrTimeout, 408, "timed out after 100ms waiting for 's' (STARTING) to be running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *client.APIError
			if !errors.Is(err, tc.is) || !errors.As(err, &ae) || ae.StatusCode != tc.status || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v (%T), want %v with status %d and %q", err, err, tc.is, tc.status, tc.msg)
			}
		})
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Restart(ctx, "a"); !errors.Is(err, control.ErrShuttingDown) {
		t.Fatalf("restart while shutting down: %v", err)
	}
}

func TestClientWaitSucceeds(t *testing.T) {
	b := newMemBackend(svc("a", status.Running), svc("b", status.Finished))
	ts := startServer(t, b, Options{})
	st, err := client.New(ts.path).Wait(context.Background(), []string{"a", "b"}, control.WaitRunning, time.Second)
	if err != nil || len(st) != 2 {
		t.Fatalf("got %+v %v", st, err)
	}
}

func TestClientConnectionErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "horust-1.sock")
		_, err := client.New(path).List(ctx)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no horust socket at "+path) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "horust-1.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		_ = l.Close()
		_, err = client.New(path).List(ctx)
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("horust gone mid-request", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "horust-1.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Read the request, then die without a word.
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_ = c.Close()
		}()
		_, err = client.New(path).List(ctx)
		if err == nil || !strings.Contains(err.Error(), "closed the connection before answering") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("horust too slow for the caller", func(t *testing.T) {
		b := newMemBackend(svc("a", status.Running))
		block := make(chan struct{})
		defer close(block)
		b.setBlock(block)
		ts := startServer(t, b, Options{})
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := client.New(ts.path).List(cctx)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer in time") {
			t.Fatalf("got %v", err)
		}
	})
}
