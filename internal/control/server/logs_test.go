//go:build linux

package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/logs"
	"github.com/horust-go/horust/internal/status"
)

// logsServer serves the logs of two services: file.toml, whose stdout is a
// file holding lines 1 to 5, and direct.toml, whose output goes straight
// to horust's stdout. It returns the server and the file.
func logsServer(t *testing.T) (*testServer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file.log")
	if err := os.WriteFile(path, []byte("l1\nl2\nl3\nl4\nl5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgs := map[string]*config.Service{
		"file.toml":   {Name: "file.toml", Stdout: path, Stderr: "STDOUT"},
		"direct.toml": {Name: "direct.toml", Stdout: "STDOUT", Stderr: "STDERR"},
	}
	out := logs.NewOutputs(nil, nil, false)
	open := func(_ context.Context, name, stream string, emit func([]byte) error) (*logs.Reader, error) {
		svc := cfgs[name]
		if svc == nil {
			return nil, fmt.Errorf("%w '%s'", control.ErrNotFound, name)
		}
		return out.Open(svc, stream, emit)
	}
	return startServer(t, newMemBackend(svc("file.toml", status.Running)), Options{Logs: open}), path
}

func TestLogsRequests(t *testing.T) {
	ts, _ := logsServer(t)
	hc := unixHTTP(ts.path)
	tests := []struct {
		name, target string
		code         int
		body         string // the body, or a part of the error
	}{
		{"the last lines", "/v1/services/file.toml/logs?lines=2", 200, "l4\nl5\n"},
		{"100 lines by default", "/v1/services/file.toml/logs", 200, "l1\nl2\nl3\nl4\nl5\n"},
		{"stderr follows stdout", "/v1/services/file.toml/logs?lines=1&stream=stderr", 200, "l5\n"},
		{"no lines", "/v1/services/file.toml/logs?lines=0", 200, ""},
		{"direct output", "/v1/services/direct.toml/logs", 409, `"code": "not_kept"`},
		{"an unknown service", "/v1/services/nope/logs", 404, "no such service 'nope'"},
		{"negative lines", "/v1/services/file.toml/logs?lines=-1", 400, `bad lines=\"-1\"`},
		{"a bad follow", "/v1/services/file.toml/logs?follow=maybe", 400, `bad follow=\"maybe\"`},
		{"a bad stream", "/v1/services/file.toml/logs?stream=both", 400, `bad stream=\"both\": stdout or stderr`},
		{"an unknown parameter", "/v1/services/file.toml/logs?tail=1", 400, `unknown parameter \"tail\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, hc, "GET", tt.target, "")
			if r.code != tt.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tt.code)
			}
			if tt.code == 200 {
				if r.body != tt.body || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Fatalf("%q (%s), want %q", r.body, r.header.Get("Content-Type"), tt.body)
				}
				return
			}
			if !strings.Contains(r.body, tt.body) {
				t.Fatalf("%s, want %s", r.body, tt.body)
			}
		})
	}
	if r := call(t, hc, "HEAD", "/v1/services/file.toml/logs", ""); r.code != 200 || r.body != "" {
		t.Fatalf("HEAD: %d %q", r.code, r.body)
	}
}

func TestLogsHTTP10GetsTheBodyUntilClose(t *testing.T) {
	ts, _ := logsServer(t)
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/services/file.toml/logs?lines=1 HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(got); !strings.HasPrefix(s, "HTTP/1.1 200 OK\r\n") || !strings.Contains(s, "Connection: close\r\n") ||
		strings.Contains(s, "chunked") || !strings.HasSuffix(s, "\r\n\r\nl5\n") {
		t.Fatalf("%q", s)
	}
}

// lockedBuffer is what a follow writes into while the test reads it.
type lockedBuffer struct{ syncBuffer }

func TestLogsFollow(t *testing.T) {
	ts, path := logsServer(t)
	c := client.New(ts.path)
	var got lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "file.toml", control.LogsQuery{Lines: 1, Follow: true}, &got) }()
	waitFor(t, "the last line", func() bool { return got.String() == "l5\n" })
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("l6\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new line", func() bool { return got.String() == "l5\nl6\n" })
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Logs after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs did not return after its context ended")
	}

	var direct bytes.Buffer
	if err := c.Logs(context.Background(), "direct.toml", control.LogsQuery{}, &direct); err == nil || !strings.Contains(err.Error(), "straight to horust's STDOUT") {
		t.Fatalf("direct: %v", err)
	}

	// A follow ends when horust stops: the client gets the end of the body.
	var again lockedBuffer
	go func() {
		done <- c.Logs(context.Background(), "file.toml", control.LogsQuery{Lines: 1, Follow: true}, &again)
	}()
	waitFor(t, "the follow to start", func() bool { return again.String() == "l6\n" })
	ts.stop(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Logs when horust stops: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs did not return when the server stopped")
	}
}
