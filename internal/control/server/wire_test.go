package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// rawExchange writes raw bytes on a new connection to the server and reads
// every response until the server closes the connection.
func rawExchange(t *testing.T, path, raw string, n int) []*http.Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var req *http.Request
	if strings.HasPrefix(raw, "HEAD ") {
		req = &http.Request{Method: "HEAD"}
	}
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d of %d: %v", len(out)+1, n, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestRawHTTPExchanges(t *testing.T) {
	cases := []struct {
		name  string
		raw   string
		codes []int
		check func(t *testing.T, rs []*http.Response)
	}{
		{name: "two pipelined requests are answered in order",
			raw:   "GET /v1/services/a HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/services/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			codes: []int{200, 404},
			check: func(t *testing.T, rs []*http.Response) {
				if rs[0].Close || !rs[1].Close {
					t.Errorf("keep-alive then close expected, got Close=%v, %v", rs[0].Close, rs[1].Close)
				}
			}},
		{name: "HTTP/1.0 closes after the answer",
			raw: "GET /healthz HTTP/1.0\r\n\r\n", codes: []int{200},
			check: func(t *testing.T, rs []*http.Response) {
				if !rs[0].Close {
					t.Error("connection left open")
				}
			}},
		{name: "HEAD has the headers and no body",
			raw: "HEAD /v1/services/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", codes: []int{200},
			check: func(t *testing.T, rs []*http.Response) {
				if rs[0].ContentLength <= 0 {
					t.Errorf("Content-Length %d, want the length of the GET body", rs[0].ContentLength)
				}
			}},
		{name: "a body after Expect 100-continue gets 100 first",
			raw:   "POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"signal\":\"HUP\"}",
			codes: []int{100, 200}},
		{name: "a chunked body is decoded",
			raw:   "POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\n{\"signa\r\n9;ext=1\r\nl\":\"HUP\"}\r\n0\r\nX-Trailer: 1\r\n\r\n",
			codes: []int{200}},
		{name: "a bad chunk size is 400",
			raw: "POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", codes: []int{400}},
		{name: "a path that is not clean is 404",
			raw: "GET /v1//services HTTP/1.1\r\nHost: x\r\n\r\n", codes: []int{404}},
		{name: "a trailing slash is 404",
			raw: "GET /v1/services/ HTTP/1.1\r\nHost: x\r\n\r\n", codes: []int{404}},
		{name: "HTTP/1.1 without Host is 400",
			raw: "GET /v1/services HTTP/1.1\r\n\r\n", codes: []int{400}},
		{name: "HTTP/2.0 on the wire is 505",
			raw: "GET /v1/services HTTP/2.0\r\nHost: x\r\n\r\n", codes: []int{505}},
		{name: "a folded header line is 400",
			raw: "GET /v1/services HTTP/1.1\r\nHost: x\r\n continued\r\n\r\n", codes: []int{400}},
		{name: "conflicting Content-Length is 400",
			raw: "POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", codes: []int{400}},
		{name: "both Content-Length and chunked is 400",
			raw: "POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", codes: []int{400}},
		{name: "a wildcard segment is unescaped",
			raw: "GET /v1/services/%61 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", codes: []int{200},
			check: func(t *testing.T, rs []*http.Response) {
				if b := body(t, rs[0]); !strings.Contains(b, `"name": "a"`) {
					t.Errorf("body %s", b)
				}
			}},
		{name: "two Host fields are 400",
			raw: "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", codes: []int{400}},
		{name: "a Host with a space is 400",
			raw: "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", codes: []int{400}},
		{name: "Transfer-Encoding on HTTP/1.0 is 400 (RFC 9112 section 6.1)",
			raw: "POST /v1/shutdown HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", codes: []int{400}},
		{name: "a list in Content-Length is 400",
			raw: "POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na", codes: []int{400}},
		{name: "a bare LF in the chunked coding is 400",
			raw: "POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\n{\"signal\":\"HUP\"}\r\n0\r\n\r\n", codes: []int{400}},
		{name: "a control character in a chunk extension is 400",
			raw: "POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10;a\x01\r\n{\"signal\":\"HUP\"}\r\n0\r\n\r\n", codes: []int{400}},
		{name: "a bad trailer field is 400",
			raw: "POST /v1/services/a/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"signal\":\"HUP\"}\r\n0\r\nno colon\r\n\r\n", codes: []int{400}},
		{name: "empty lines before the request line are skipped",
			raw: "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", codes: []int{200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, newMemBackend(svc("a", status.Running)), Options{})
			rs := rawExchange(t, ts.path, tc.raw, len(tc.codes))
			for i, r := range rs {
				if r.StatusCode != tc.codes[i] {
					t.Errorf("response %d: %d, want %d", i+1, r.StatusCode, tc.codes[i])
				}
			}
			if tc.check != nil {
				tc.check(t, rs)
			}
		})
	}
}

func TestKeepAliveConnectionServesManyRequests(t *testing.T) {
	ts := startServer(t, newMemBackend(svc("a", status.Running)), Options{})
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 50 {
		if _, err := io.WriteString(c, "GET /v1/services/a HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("response %d: %d close=%v %v", i, resp.StatusCode, resp.Close, err)
		}
	}
}

// panicky is a Backend whose List panics: a bug in a handler.
type panicky struct{ *memBackend }

func (panicky) List(context.Context) ([]status.ServiceStatus, error) { panic("a bug") }

func TestHandlerPanicIs500AndTheServerGoesOn(t *testing.T) {
	var logs syncBuffer
	b := panicky{newMemBackend(svc("a", status.Running))}
	ts := startServer(t, b, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	rs := rawExchange(t, ts.path, "GET /v1/services HTTP/1.1\r\nHost: x\r\n\r\n", 1)
	if rs[0].StatusCode != 500 || !rs[0].Close {
		t.Fatalf("got %d close=%v, want 500 and the connection closed", rs[0].StatusCode, rs[0].Close)
	}
	if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "a bug") {
		t.Fatalf("the panic is not logged: %q", logs.String())
	}
	rs = rawExchange(t, ts.path, "GET /v1/services/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
	if rs[0].StatusCode != 200 {
		t.Fatalf("after the panic: %d", rs[0].StatusCode)
	}
}

func TestHalfClosedClientGetsItsReply(t *testing.T) {
	for i := range 5 {
		b := newMemBackend(svc("a", status.Starting))
		ts := startServer(t, b, Options{})
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: ts.path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /v1/wait?service=a&timeout=1m HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// The client is done writing (as "curl < file" or a here-document
		// does) while horust is still working on the answer.
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the wait to reach the backend", func() bool { _, _, w := b.snapshot(); return w == 1 })
		b.setState("a", status.Running)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("try %d: no reply after a half-close: %v", i, err)
		}
		// (Whether the answer also says "Connection: close" depends on
		// whether the server saw the half-close before the handler ended;
		// either way the connection closes after the answer.)
		if resp.StatusCode != 200 {
			t.Fatalf("try %d: %d, want 200", i, resp.StatusCode)
		}
		_ = c.Close()
		ts.stop(t)
	}
}

func TestProbeConnectionsAreBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = ServeProbes(ctx, l, Options{Backend: newMemBackend(svc("a", status.Running)), ReadHeaderTimeout: time.Minute})
		close(done)
	}()
	defer func() { cancel(); <-done }()
	// Idle connections, three times the bound: the oldest are evicted.
	var idle []net.Conn
	for range 3 * maxProbeConns {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// A probe still gets its answer, past all of them.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("probe: %v", err)
	}
	// The oldest idle connections were closed by the server.
	evicted := 0
	for _, c := range idle[:maxProbeConns] {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) || isReset(err) {
			evicted++
		}
	}
	if evicted != maxProbeConns {
		t.Fatalf("%d of the %d oldest idle connections were evicted, want all", evicted, maxProbeConns)
	}
}

// flakyListener fails its first Accept calls with EMFILE, as a horust out
// of file descriptors sees.
type flakyListener struct {
	net.Listener
	fails atomic.Int64
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestAcceptErrorsDoNotStopTheServer(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			path := filepath.Join(shortDir(t), control.SocketName(1))
			inner, err := ListenUnix(path, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			l := &flakyListener{Listener: inner}
			l.fails.Store(5)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Serve(ctx, l, Options{Backend: newMemBackend(svc("a", status.Running))}) }()
			defer func() { cancel(); <-done }()
			rs := rawExchange(t, path, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
			if rs[0].StatusCode != 200 {
				t.Fatalf("after %d failed accepts: %d", 5, rs[0].StatusCode)
			}
		})
	}
}
