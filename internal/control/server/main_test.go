package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
)

// dialHelperEnv makes the test binary a helper that connects to the socket
// named by the variable and asks for /healthz. It exits 0 when it got an
// answer, 3 when connecting failed with EACCES, 5 when the server closed the
// connection without answering, and 4 on anything else.
const dialHelperEnv = "HORUST_CONTROL_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialHelperEnv); path != "" {
		os.Exit(dialHelper(path))
	}
	os.Exit(m.Run())
}

func dialHelper(path string) int {
	c, err := net.Dial("unix", path)
	if errors.Is(err, syscall.EACCES) {
		return 3
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 9)
	_, err = io.ReadFull(c, buf)
	switch {
	case err == nil && string(buf) == "HTTP/1.1 ":
		return 0
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return 5
	}
	fmt.Fprintf(os.Stderr, "read %q: %v\n", buf, err)
	return 4
}

// shortDir is a temporary folder with a short path: t.TempDir's paths carry
// the test's name and can pass the 107 bytes a socket path may have.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// testServer is a control server on a fresh socket.
type testServer struct {
	path   string
	cancel context.CancelFunc
	done   chan error
}

// startServer serves b's API on a new socket until the test ends.
func startServer(t *testing.T, b Backend, o Options) *testServer {
	t.Helper()
	path := filepath.Join(shortDir(t), control.SocketName(os.Getpid()))
	l, err := ListenUnix(path, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	o.Backend = b
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{path: path, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- Serve(ctx, l, o) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop ends the server and waits (bounded) for Serve to return.
func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.done <- nil // a second stop returns at once
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return 10s after its context ended")
	}
}

// unixHTTP is an HTTP client for the socket at path.
func unixHTTP(path string) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			DisableKeepAlives: true,
		},
		Timeout: 20 * time.Second,
	}
}

type reply struct {
	code   int
	header http.Header
	body   string
}

// call sends one request to the server; it must be called from the test's
// goroutine (see callErr for others).
func call(t *testing.T, hc *http.Client, method, target, body string) reply {
	t.Helper()
	r, err := callErr(hc, method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// callErr sends one request to the server.
func callErr(hc *http.Client, method, target, body string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://horust"+target, rd)
	if err != nil {
		return reply{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: reading the reply: %w", method, target, err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: string(data)}, nil
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
