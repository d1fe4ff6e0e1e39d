package httpwire

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// The fuzz targets hold httpwire to net/http: whatever httpwire accepts,
// net/http must accept too, and read the same way. httpwire may refuse more
// (it is stricter on purpose, see docs/security.md). net/http is used here
// only: horust itself never links it. Seeds live in testdata/fuzz.

// FuzzRequestHead parses a request head and its framing as the control
// server does, and compares with http.ReadRequest (plus the Host rules that
// net/http's server adds on top of it).
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/services/a/signal HTTP/1.1\r\nHost: horust\r\nContent-Length: 2\r\n\r\n{}",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		start, h, err := ReadHead(br, 16<<10)
		if err != nil {
			return
		}
		rl, err := ParseRequestLine(start)
		if err != nil {
			return
		}
		if _, err := ParseTarget(rl.Target); err != nil || CheckHost(rl.Minor, h) != nil {
			return
		}
		framing, n, err := RequestFraming(rl.Minor, h)
		if err != nil {
			return
		}
		// httpwire skips empty lines before the request line, as RFC 9112
		// section 2.2 asks; http.ReadRequest does not.
		trimmed := in
		for len(trimmed) > 0 && (trimmed[0] == '\r' || trimmed[0] == '\n') {
			trimmed = trimmed[1:]
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(trimmed)))
		if err != nil {
			t.Fatalf("httpwire accepts what net/http refuses (%v): %q", err, in)
		}
		if req.Method != rl.Method || req.RequestURI != rl.Target || req.ProtoMinor != rl.Minor {
			t.Fatalf("request line: httpwire %+v, net/http %s %s 1.%d", rl, req.Method, req.RequestURI, req.ProtoMinor)
		}
		chunked := len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked"
		if (framing == Chunked) != chunked {
			t.Fatalf("framing: httpwire %v, net/http %q: %q", framing, req.TransferEncoding, in)
		}
		if framing == Sized && req.ContentLength != n && !(n == 0 && req.ContentLength <= 0) {
			t.Fatalf("length: httpwire %d, net/http %d: %q", n, req.ContentLength, in)
		}
		for _, f := range h {
			if strings.EqualFold(f.Name, "Host") {
				// In absolute form the target's authority is the host
				// (RFC 9112 section 3.2.2): net/http reports that one.
				if strings.HasPrefix(rl.Target, "/") && req.Host != f.Value {
					t.Fatalf("Host: httpwire %q, net/http %q", f.Value, req.Host)
				}
				continue
			}
			if !strings.EqualFold(f.Name, "Transfer-Encoding") && !strings.EqualFold(f.Name, "Content-Length") &&
				!containsValue(req.Header.Values(f.Name), f.Value) {
				t.Fatalf("field %s: httpwire %q, net/http %q", f.Name, f.Value, req.Header.Values(f.Name))
			}
		}
	})
}

func containsValue(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// FuzzChunked decodes a chunked body with httpwire and with
// httputil.NewChunkedReader: on every input httpwire accepts, net/http
// accepts too and gives the same bytes.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
		"5;a=b\r\nhello\r\n0;x=\"q\"\r\nT: v\r\n\r\n",
		"5\nhello\n0\n\n",
		"5 ;x\r\nhello\r\n0\r\n\r\n",
		"1;" + strings.Repeat("e", 2000) + "\r\nx\r\n0\r\n\r\n",
		"fffffffffffffff\r\n",
		"0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		ours, err := io.ReadAll(LimitBody(Body(br, Chunked, 0), 1<<20))
		if err != nil {
			return
		}
		theirs, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if err != nil {
			t.Fatalf("httpwire accepts what net/http refuses (%v): %q", err, in)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("httpwire read %q, net/http %q, from %q", ours, theirs, in)
		}
	})
}
