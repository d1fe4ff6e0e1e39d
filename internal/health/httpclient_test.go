//go:build linux

package health

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/httpwire"
)

// rawServer is a TCP listener on loopback that hands each connection to a
// handler, for answers no well-behaved server gives. It counts the
// connections it accepted and the ones that ended, and closes everything
// when the test ends.
type rawServer struct {
	url      string
	accepted atomic.Int32
	ended    atomic.Int32
}

// newRawServer starts a rawServer on a loopback port whose connections are
// served by handle.
func newRawServer(t testing.TB, handle func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveRaw(t, l, handle)
}

// serveRaw serves the connections of l with handle until the test ends.
func serveRaw(t testing.TB, l net.Listener, handle func(c net.Conn, br *bufio.Reader)) *rawServer {
	s := &rawServer{url: "http://" + l.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer s.ended.Add(1)
				defer c.Close()
				handle(c, bufio.NewReader(c))
			})
		}
	})
	// The prober keeps its connections: end them here, so that every
	// handler returns.
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// readRequest reads one request head, and reports whether there was one.
func readRequest(br *bufio.Reader) (httpwire.RequestLine, httpwire.Header, bool) {
	start, h, err := httpwire.ReadHead(br, 1<<20)
	if err != nil {
		return httpwire.RequestLine{}, nil, false
	}
	rl, err := httpwire.ParseRequestLine(start)
	return rl, h, err == nil
}

// answerAll answers every request on a connection with response; with
// closeAfter it closes the connection after the first answer.
func answerAll(response string, closeAfter bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, ok := readRequest(br); !ok {
				return
			}
			if _, err := io.WriteString(c, response); err != nil || closeAfter {
				return
			}
		}
	}
}

// ok200 is a keep-alive answer with a small body.
const ok200 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// check runs an http check of endpoint on p, with a 5s timeout.
func check(p *Prober, endpoint string) error {
	return p.Check(context.Background(), config.Healthiness{HTTPEndpoint: endpoint, Timeout: 5 * time.Second})
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

func TestHTTPCheckAnswers(t *testing.T) {
	big := strings.Repeat("x", 70<<10)
	manyFields := strings.Repeat("X-Filler: "+strings.Repeat("y", 30)+"\r\n", 2000) // 84 KB
	someFields := strings.Repeat("X-Filler: "+strings.Repeat("y", 30)+"\r\n", 1400) // 58 KB
	for _, tc := range []struct {
		name     string
		response string
		wantErr  string // "" = healthy
	}{
		{"garbage instead of a status line", "garbage\r\n\r\n", "read response: malformed HTTP message: bad status line"},
		{"binary garbage, then the end", "\x16\x03\x01\x00\xa5\x01", "read response: unexpected EOF"},
		{"a control character in the status line", "HTTP/1.1 200 \x01K\r\n\r\n", "malformed HTTP message: control character"},
		{"a status code with letters", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "bad status code"},
		{"a status code of two digits", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "bad status code"},
		{"an HTTP/2 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP version not supported"},
		{"a header line without a colon", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line without a colon"},
		{"a folded header line", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "folded header line"},
		{"the connection closed without an answer", "", "read response: EOF"},
		{"a head cut off", "HTTP/1.1 200 OK\r\nContent-Le", "read response: unexpected EOF"},
		{"one header field over 64 KiB", "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\n\r\n", "read response: header fields too large"},
		{"a head over 64 KiB in many fields", "HTTP/1.1 200 OK\r\n" + manyFields + "Content-Length: 0\r\n\r\n", "header fields too large"},
		{"a head just under 64 KiB is fine", "HTTP/1.1 200 OK\r\n" + someFields + "Content-Length: 0\r\n\r\n", ""},
		{"a truncated chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "read body: unexpected EOF"},
		{"a chunked body without its last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "read body: unexpected EOF"},
		{"a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "read body: malformed HTTP message: bad chunk size"},
		{"a chunk size that overflows", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n0\r\n\r\n", "bad chunk size"},
		{"chunk data longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", "read body: malformed HTTP message"},
		{"a chunked body with extensions and a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", ""},
		{"a Content-Length body cut off", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "read body: unexpected EOF"},
		{"a bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "read response: malformed HTTP message: bad Content-Length"},
		{"conflicting Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting Content-Length"},
		{"a 100 Continue before the answer", "HTTP/1.1 100 Continue\r\n\r\n" + ok200, ""},
		{"a 103 Early Hints with fields before a 503", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", "status 503"},
		{"5 interim responses are skipped", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5) + ok200, ""},
		{"more than 5 interim responses", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6) + ok200, "read response: more than 5 1xx responses"},
		{"the end of input after an interim response", "HTTP/1.1 100 Continue\r\n\r\n", "read response: unexpected EOF"},
		{"101 Switching Protocols is a failure", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "status 101"},
		{"a body without Content-Length ending at close", "HTTP/1.1 200 OK\r\n\r\nhello", ""},
		{"a body over 64 KiB ending at close", "HTTP/1.1 200 OK\r\n\r\n" + big, ""},
		{"an unknown Transfer-Encoding reads until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", ""},
		{"an HTTP/1.0 answer", "HTTP/1.0 200 OK\r\n\r\nok", ""},
		{"empty lines before the status line", "\r\n\r\n" + ok200, ""},
		{"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", ""},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", ""},
		{"299 is healthy", "HTTP/1.1 299 Odd\r\nContent-Length: 0\r\n\r\n", ""},
		{"300 is unhealthy", "HTTP/1.1 300 Multiple Choices\r\nContent-Length: 0\r\n\r\n", "status 300"},
		{"a redirect without a Location is not followed", "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", "status 302"},
		{"a 503 whose body is cut off is a 503", "HTTP/1.1 503 Busy\r\nContent-Length: 10\r\n\r\nab", "status 503"},
		{"status 999", "HTTP/1.1 999 What\r\nContent-Length: 0\r\n\r\n", "status 999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The connection ends after the answer: every case must be
			// judged on what came, not end in a timeout.
			srv := newRawServer(t, answerAll(tc.response, true))
			err := check(NewProber(), srv.url+"/")
			checkResult(t, err, tc.wantErr)
			if err != nil && !strings.HasPrefix(err.Error(), "http-endpoint "+srv.url+"/: ") {
				t.Errorf("error %q does not start with the check's key and url", err)
			}
			if err != nil && strings.Contains(err.Error(), "timed out") {
				t.Errorf("the check timed out: %v", err)
			}
		})
	}

	t.Run("a cut-off body is the error the docs show", func(t *testing.T) {
		srv := newRawServer(t, answerAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true))
		err := check(NewProber(), srv.url+"/")
		if want := "http-endpoint " + srv.url + "/: read body: unexpected EOF"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("error %v does not wrap io.ErrUnexpectedEOF", err)
		}
	})
}

func TestHTTPCheckRequest(t *testing.T) {
	type request struct {
		line httpwire.RequestLine
		head httpwire.Header
	}
	serve := func(t *testing.T, network, addr string) (string, <-chan request) {
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		got := make(chan request, 16)
		serveRaw(t, l, func(c net.Conn, br *bufio.Reader) {
			for {
				rl, h, ok := readRequest(br)
				if !ok {
					return
				}
				got <- request{rl, h}
				if _, err := io.WriteString(c, ok200); err != nil {
					return
				}
			}
		})
		return l.Addr().String(), got
	}

	for _, tc := range []struct {
		name       string
		network    string
		listen     string
		url        func(addr string) string
		wantTarget string
		wantHost   func(addr string) string
		wantAuth   string
	}{
		{
			name: "a plain GET", network: "tcp4", listen: "127.0.0.1:0",
			url:        func(a string) string { return "http://" + a + "/health" },
			wantTarget: "/health", wantHost: func(a string) string { return a },
		},
		{
			name: "no path asks for /", network: "tcp4", listen: "127.0.0.1:0",
			url:        func(a string) string { return "http://" + a },
			wantTarget: "/", wantHost: func(a string) string { return a },
		},
		{
			name: "the query is sent, the fragment is not", network: "tcp4", listen: "127.0.0.1:0",
			url:        func(a string) string { return "http://" + a + "/h?x=1&y=%20#frag" },
			wantTarget: "/h?x=1&y=%20", wantHost: func(a string) string { return a },
		},
		{
			name: "a space in the query is escaped", network: "tcp4", listen: "127.0.0.1:0",
			url:        func(a string) string { return "http://" + a + "/h?x=a b" },
			wantTarget: "/h?x=a%20b", wantHost: func(a string) string { return a },
		},
		{
			name: "user info becomes basic authorization", network: "tcp4", listen: "127.0.0.1:0",
			url:        func(a string) string { return "http://probe:s3cret@" + a + "/" },
			wantTarget: "/", wantHost: func(a string) string { return a }, wantAuth: "Basic cHJvYmU6czNjcmV0",
		},
		{
			name: "an IPv6 literal host", network: "tcp6", listen: "[::1]:0",
			url:        func(a string) string { return "http://" + a + "/v6" },
			wantTarget: "/v6", wantHost: func(a string) string { return a },
		},
		{
			name: "an IPv6 literal with a zone sends no zone", network: "tcp6", listen: "[::1]:0",
			url: func(a string) string {
				_, port, _ := net.SplitHostPort(a)
				return "http://[::1%25lo]:" + port + "/zone"
			},
			wantTarget: "/zone", wantHost: func(a string) string { return a },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := serve(t, tc.network, tc.listen)
			checkResult(t, check(NewProber(), tc.url(addr)), "")
			var r request
			select {
			case r = <-got:
			default:
				t.Fatal("the server saw no request")
			}
			if r.line.Method != "GET" || r.line.Target != tc.wantTarget || r.line.Minor != 1 {
				t.Errorf("request line %+v, want GET %s HTTP/1.1", r.line, tc.wantTarget)
			}
			for _, want := range []httpwire.Field{
				{Name: "Host", Value: tc.wantHost(addr)},
				{Name: "User-Agent", Value: "horust-health"},
				{Name: "Accept", Value: "*/*"},
				{Name: "Accept-Encoding", Value: ""}, // no gzip: the body is thrown away
				{Name: "Authorization", Value: tc.wantAuth},
				{Name: "Connection", Value: ""}, // keep-alive is HTTP/1.1's default
			} {
				if v := r.head.Get(want.Name); v != want.Value {
					t.Errorf("%s = %q, want %q", want.Name, v, want.Value)
				}
			}
		})
	}

	t.Run("HTTP_PROXY is ignored", func(t *testing.T) {
		addr, got := serve(t, "tcp4", "127.0.0.1:0")
		proxy := "http://" + refusedAddr(t)
		t.Setenv("HTTP_PROXY", proxy)
		t.Setenv("http_proxy", proxy)
		checkResult(t, check(NewProber(), "http://"+addr+"/direct"), "")
		select {
		case r := <-got:
			if r.line.Target != "/direct" {
				t.Errorf("the server saw %q", r.line.Target)
			}
		default:
			t.Error("the server saw no request")
		}
	})
}

func TestHTTPCheckConnectionReuse(t *testing.T) {
	exactly64K := strings.Repeat("x", maxBody)
	for _, tc := range []struct {
		name      string
		response  string
		wantErr   string
		wantConns int32 // for 3 checks
	}{
		{"a keep-alive answer is reused", ok200, "", 1},
		{"a chunked answer is reused", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "", 1},
		{"a 503 is reused", "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", "status 503", 1},
		{"an answer after a 100 Continue is reused", "HTTP/1.1 100 Continue\r\n\r\n" + ok200, "", 1},
		{"HTTP/1.0 with Connection: keep-alive is reused", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "", 1},
		{"a body of exactly 64 KiB is reused", "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n" + exactly64K, "", 1},
		{"Connection: close is not reused", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "", 3},
		{"HTTP/1.0 without keep-alive is not reused", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "", 3},
		{"a body over 64 KiB costs the connection", "HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n" + exactly64K + "x", "", 3},
		{"a chunked body over 64 KiB costs the connection", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n" + exactly64K + "\r\n1\r\nx\r\n0\r\n\r\n", "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The server never closes a connection itself.
			srv := newRawServer(t, answerAll(tc.response, false))
			p := NewProber()
			for i := range 3 {
				err := check(p, srv.url+"/")
				checkResult(t, err, tc.wantErr)
				if t.Failed() {
					t.Fatalf("check %d failed", i)
				}
			}
			if n := srv.accepted.Load(); n != tc.wantConns {
				t.Errorf("3 checks opened %d connections, want %d", n, tc.wantConns)
			}
		})
	}
}

func TestHTTPCheckRetry(t *testing.T) {
	// answerFirst answers the first request the server gets with ok200 and
	// does then for every later one.
	answerFirst := func(then func(c net.Conn)) func(net.Conn, *bufio.Reader) {
		var requests atomic.Int32
		return func(c net.Conn, br *bufio.Reader) {
			for {
				if _, _, ok := readRequest(br); !ok {
					return
				}
				if requests.Add(1) > 1 {
					then(c)
					return
				}
				if _, err := io.WriteString(c, ok200); err != nil {
					return
				}
			}
		}
	}
	firstDone := make(chan struct{})
	for _, tc := range []struct {
		name string
		// handle serves the connections. The first check's is idle when
		// firstDone is closed.
		handle    func(net.Conn, *bufio.Reader)
		idleDies  bool   // the server ends the first connection while it is idle
		wantErr   string // of the second check; the first is healthy
		wantConns int32
	}{
		{
			name:     "an idle connection the server closed is replaced",
			handle:   answerAll(ok200, true),
			idleDies: true, wantConns: 2,
		},
		{
			name: "an idle connection the server reset is replaced",
			handle: func(c net.Conn, br *bufio.Reader) {
				if _, _, ok := readRequest(br); !ok {
					return
				}
				if _, err := io.WriteString(c, ok200); err != nil {
					return
				}
				<-firstDone
				_ = c.(*net.TCPConn).SetLinger(0) // the close sends a RST
			},
			idleDies: true, wantConns: 2,
		},
		{
			name:      "a new connection closed without an answer is not retried",
			handle:    answerFirst(func(net.Conn) {}),
			wantErr:   "read response: EOF",
			wantConns: 2,
		},
		{
			name:      "garbage on a reused connection is not retried",
			handle:    answerFirst(func(c net.Conn) { _, _ = io.WriteString(c, "garbage\r\n\r\n") }),
			wantErr:   "malformed HTTP message",
			wantConns: 1,
		},
		{
			name:      "an answer cut off on a reused connection is not retried",
			handle:    answerFirst(func(c net.Conn) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-") }),
			wantErr:   "read response: unexpected EOF",
			wantConns: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firstDone = make(chan struct{})
			srv := newRawServer(t, tc.handle)
			p := NewProber()
			checkResult(t, check(p, srv.url+"/"), "")
			close(firstDone)
			if tc.idleDies {
				waitFor(t, "the server ended the first connection", func() bool { return srv.ended.Load() == 1 })
			}
			checkResult(t, check(p, srv.url+"/"), tc.wantErr)
			if n := srv.accepted.Load(); n != tc.wantConns {
				t.Errorf("the checks opened %d connections, want %d", n, tc.wantConns)
			}
		})
	}
}

func TestHTTPCheckRedirects(t *testing.T) {
	// record notes the request URI and Host of what it serves.
	type seen struct{ uri, host string }
	got := make(chan seen, 64)
	record := func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.RequestURI, r.Host}
		w.WriteHeader(http.StatusOK)
	}
	other := server(t, record)

	var redirectCode atomic.Int32
	redirect := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", r.URL.Query().Get("loc"))
		w.WriteHeader(int(redirectCode.Load()))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/to", redirect)
	mux.HandleFunc("/deep/dir/to", redirect)
	mux.HandleFunc("/chain/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/chain/"))
		if n > 0 {
			http.Redirect(w, r, "/chain/"+strconv.Itoa(n-1), http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			w.Header().Set("Location", "?x=1")
			w.WriteHeader(http.StatusFound)
			return
		}
		record(w, r)
	})
	mux.HandleFunc("/", record)
	srv := server(t, mux.ServeHTTP)
	otherHost := strings.TrimPrefix(other.URL, "http://")
	srvHost := strings.TrimPrefix(srv.URL, "http://")
	to := func(loc string) string { return "/to?loc=" + url.QueryEscape(loc) }

	for _, tc := range []struct {
		name     string
		path     string // on srv
		code     int    // of the redirect from /to
		wantErr  string
		wantSeen seen // where the last request went; zero: not checked
	}{
		{"a redirect to another port", to(other.URL + "/there"), 302, "", seen{"/there", otherHost}},
		// horust-probe's tests follow one from http to https.
		{"a redirect to https is not followed in horust", to("https://" + otherHost + "/secure"), 302, "https is not checked in horust's process", seen{}},
		{"a scheme-relative Location", to("//" + otherHost + "/rel"), 302, "", seen{"/rel", otherHost}},
		{"an absolute-path Location", to("/abs"), 303, "", seen{"/abs", srvHost}},
		{"a relative Location is resolved against the current path", "/deep/dir/to?loc=sibling", 302, "", seen{"/deep/dir/sibling", srvHost}},
		{"a relative Location going up", "/deep/dir/to?loc=../up%3Fa%3Db", 301, "", seen{"/deep/up?a=b", srvHost}},
		{"a Location with only a query", "/query", 0, "", seen{"/query?x=1", srvHost}},
		{"a 307 is followed", to("/t307"), 307, "", seen{"/t307", srvHost}},
		{"a 308 is followed", to("/t308"), 308, "", seen{"/t308", srvHost}},
		{"9 redirects are followed", "/chain/9", 0, "", seen{}},
		{"the 10th redirect stops", "/chain/10", 0, "stopped after 10 redirects", seen{}},
		{"a redirect to an unsupported scheme", to("ftp://example.com/"), 302, `unsupported protocol scheme "ftp"`, seen{}},
		{"a Location that is no URL", to("http://[::1"), 302, `redirect: Location "http://[::1": missing ']' in host`, seen{}},
		{"a redirect to a closed port", to("http://" + refusedAddr(t) + "/"), 302, "connection refused", seen{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for len(got) > 0 {
				<-got
			}
			redirectCode.Store(int32(tc.code))
			err := check(NewProber(), srv.URL+tc.path)
			checkResult(t, err, tc.wantErr)
			if tc.wantSeen == (seen{}) {
				return
			}
			var last seen
			for len(got) > 0 {
				last = <-got
			}
			if last != tc.wantSeen {
				t.Errorf("the last request was %+v, want %+v", last, tc.wantSeen)
			}
		})
	}
}

func TestHTTPCheckIdleConnections(t *testing.T) {
	t.Run("at most 2 idle connections per endpoint", func(t *testing.T) {
		arrived := make(chan struct{}, 3)
		release := make(chan struct{})
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			for {
				if _, _, ok := readRequest(br); !ok {
					return
				}
				select {
				case arrived <- struct{}{}:
					<-release
				default:
				}
				if _, err := io.WriteString(c, ok200); err != nil {
					return
				}
			}
		})
		p := NewProber()
		errs := make(chan error, 3)
		for range 3 {
			go func() { errs <- check(p, srv.url+"/") }()
		}
		for range 3 {
			<-arrived // three requests in flight at once: three connections
		}
		close(release)
		for range 3 {
			checkResult(t, <-errs, "")
		}
		waitFor(t, "the server saw the third connection closed", func() bool { return srv.ended.Load() == 1 })
		p.client.mu.Lock()
		idle := len(p.client.idle["http://"+strings.TrimPrefix(srv.url, "http://")])
		p.client.mu.Unlock()
		if idle != 2 {
			t.Errorf("%d idle connections, want 2", idle)
		}
		for range 4 {
			checkResult(t, check(p, srv.url+"/"), "")
		}
		if n := srv.accepted.Load(); n != 3 {
			t.Errorf("%d connections, want the 3 of the first round only", n)
		}
	})

	t.Run("an idle connection is closed after the idle timeout", func(t *testing.T) {
		srv := newRawServer(t, answerAll(ok200, false))
		p := NewProber()
		p.client.idleTimeout = 50 * time.Millisecond
		checkResult(t, check(p, srv.url+"/"), "")
		waitFor(t, "the server saw the idle connection closed", func() bool { return srv.ended.Load() == 1 })
		p.client.mu.Lock()
		left := len(p.client.idle)
		p.client.mu.Unlock()
		if left != 0 {
			t.Errorf("%d endpoints still have idle connections", left)
		}
		checkResult(t, check(p, srv.url+"/"), "")
		if n := srv.accepted.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})

	t.Run("checks racing the idle timers all pass", func(t *testing.T) {
		// Every check races the idle timers of the connections; none may
		// close a connection that a check took.
		srv := newRawServer(t, answerAll(ok200, false))
		p := NewProber()
		p.client.idleTimeout = time.Microsecond
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 50 {
					checkResult(t, check(p, srv.url+"/"), "")
				}
			})
		}
		wg.Wait()
	})
}

func TestHTTPCheckConcurrent(t *testing.T) {
	srv := server(t, status(http.StatusOK))
	bad := server(t, status(http.StatusTeapot))
	p := NewProber()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 20 {
				if i%2 == 0 {
					checkResult(t, check(p, srv.URL+"/"), "")
				} else {
					checkResult(t, check(p, bad.URL+"/"), "status 418")
				}
			}
		})
	}
	wg.Wait()
}

func TestHTTPCheckInterrupted(t *testing.T) {
	// slowBody sends a head and one byte of a 10-byte body, then waits.
	headSent := make(chan struct{}, 1)
	slowBody := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, ok := readRequest(br); !ok {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nx"); err != nil {
			return
		}
		headSent <- struct{}{}
		_, _ = io.Copy(io.Discard, br)
	})

	t.Run("a body that stops coming times out", func(t *testing.T) {
		err := NewProber().Check(context.Background(), config.Healthiness{HTTPEndpoint: slowBody.url, Timeout: 300 * time.Millisecond})
		checkResult(t, err, "timed out after 300ms")
		<-headSent
	})
	t.Run("a cancel while the body comes is context.Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- NewProber().Check(ctx, config.Healthiness{HTTPEndpoint: slowBody.url, Timeout: time.Minute})
		}()
		<-headSent
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Check did not end within 10s of the cancel")
		}
	})
}

// FuzzHTTPCheckAnswer sends whatever the fuzzer makes up as a server's answer:
// the check must end with a result, never panic or hang.
func FuzzHTTPCheckAnswer(f *testing.F) {
	for _, seed := range []string{
		ok200,
		"garbage\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
	} {
		f.Add(seed)
	}
	// One server for every input: a listener and its connections per input
	// would run the machine out of ports.
	var answer atomic.Pointer[string]
	srv := newRawServer(f, func(c net.Conn, br *bufio.Reader) {
		if _, _, ok := readRequest(br); ok {
			_, _ = io.WriteString(c, *answer.Load())
		}
	})
	addr := strings.TrimPrefix(srv.url, "http://")
	f.Fuzz(func(t *testing.T, in string) {
		answer.Store(&in)
		p := NewProber()
		p.client.idleTimeout = time.Nanosecond // no idle connections pile up
		dial := p.client.dial
		p.client.dial = func(ctx context.Context, network, to string) (net.Conn, error) {
			if to != addr { // a redirect elsewhere: stay off the network
				return nil, errors.New("not the test server")
			}
			c, err := dial(ctx, network, to)
			if err == nil {
				// The client's close after the server's is a RST, which
				// leaves no TIME_WAIT: thousands of inputs a second would
				// otherwise hold every local port for a minute.
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			return c, err
		}
		start := time.Now()
		err := check(p, srv.url+"/")
		if err != nil && strings.Contains(err.Error(), "timed out") {
			t.Fatalf("timed out on %q after %v", in, time.Since(start))
		}
	})
}
