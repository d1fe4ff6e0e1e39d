package control

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
		{name: "empty lines before the request line are skipped",
			raw: "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", codes: []int{200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, newMemBackend(svc("a", "RUNNING")), ServerOptions{})
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
	ts := startServer(t, newMemBackend(svc("a", "RUNNING")), ServerOptions{})
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
