package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialHelperEnv makes the test binary a helper that connects to the socket
// named by the variable and exits 0 when it could, 3 on EACCES, 4 otherwise.
const dialHelperEnv = "HORUST_CONTROL_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialHelperEnv); path != "" {
		c, err := net.Dial("unix", path)
		switch {
		case err == nil:
			_ = c.Close()
			os.Exit(0)
		case errors.Is(err, syscall.EACCES):
			os.Exit(3)
		default:
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
	}
	os.Exit(m.Run())
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
func startServer(t *testing.T, b Backend, o ServerOptions) *testServer {
	t.Helper()
	path := filepath.Join(shortDir(t), SocketName(os.Getpid()))
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
