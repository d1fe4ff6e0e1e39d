package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/horust-go/horust/internal/httpwire"
)

// This file is the HTTP/1.1 server under the API: connections, request
// framing, routing and timeouts. It is written on httpwire rather than
// net/http to keep horust's binary and memory small (see package httpwire).
// Requests are small: a body is read whole (up to MaxBodyBytes) before its
// handler runs, and a reply is built whole before it is written.

// request is one parsed request as a handler sees it.
type request struct {
	Method string
	URL    *url.URL
	Header httpwire.Header
	Body   io.Reader // the whole body, already read
	name   string    // the {name} segment of the route, unescaped
	ctx    context.Context
}

// Context ends when the client goes away, the request's time is up, or the
// server stops.
func (r *request) Context() context.Context { return r.ctx }

// PathValue returns the {name} segment of the path.
func (r *request) PathValue(string) string { return r.name }

// response collects a handler's answer, or streams it (stream.go).
type response struct {
	code   int
	header httpwire.Header
	body   bytes.Buffer
	conn   net.Conn

	// For a streamed reply.
	bw       *bufio.Writer
	minor    int  // the request's HTTP/1.minor
	head     bool // a HEAD request: no body
	streamed bool // the head is sent, the body is being written
	broken   bool // a write failed, or the handler panicked mid-stream
}

// Header returns the reply's header fields, to be set before WriteHeader.
func (w *response) Header() *httpwire.Header { return &w.header }

// WriteHeader sets the status code; only the first call counts.
func (w *response) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// Write appends to the reply's body.
func (w *response) Write(b []byte) (int, error) {
	w.WriteHeader(200)
	return w.body.Write(b)
}

// extendDeadline lets a long poll outlive the connection's usual timeouts.
func (w *response) extendDeadline(t time.Time) {
	_ = w.conn.SetDeadline(t)
}

type handlerFunc func(w *response, r *request)

// route is one endpoint: a method and a path of literal segments, where
// "{name}" takes any one segment.
type route struct {
	method string
	path   []string
	h      handlerFunc
}

type router []route

func (rt *router) handle(method, path string, h handlerFunc) {
	*rt = append(*rt, route{method: method, path: strings.Split(strings.TrimPrefix(path, "/"), "/"), h: h})
}

// match finds the handler for a method and an escaped path. When the path
// exists with other methods only, it returns them (for 405).
func (rt router) match(method, escPath string) (h handlerFunc, name string, allowed []string) {
	segs, ok := splitPath(escPath)
	if !ok {
		return nil, "", nil
	}
	for _, r := range rt {
		n, ok := r.matchPath(segs)
		if !ok {
			continue
		}
		if r.method == method || (r.method == "GET" && method == "HEAD") {
			return r.h, n, nil
		}
		allowed = append(allowed, r.method)
		if r.method == "GET" {
			allowed = append(allowed, "HEAD")
		}
	}
	return nil, "", allowed
}

func (r route) matchPath(segs []string) (name string, ok bool) {
	if len(segs) != len(r.path) {
		return "", false
	}
	for i, p := range r.path {
		switch {
		case p == "{name}":
			name = segs[i]
		case p != segs[i]:
			return "", false
		}
	}
	return name, true
}

// splitPath splits an escaped path into unescaped segments. A path that is
// not clean ("//", "/./", "/../", a trailing slash) matches no route.
func splitPath(esc string) ([]string, bool) {
	if !strings.HasPrefix(esc, "/") {
		return nil, false
	}
	raw := strings.Split(esc[1:], "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		if s == "" || s == "." || s == ".." {
			return nil, false
		}
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return nil, false
		}
		segs[i] = u
	}
	return segs, true
}

// httpServer serves one listener.
type httpServer struct {
	routes      router
	maxBody     int64
	headTimeout time.Duration // to send the request line and headers
	readTimeout time.Duration // from the first byte of a request to the end of its reply
	idleTimeout time.Duration // a keep-alive connection with no request
	// maxConns bounds the connections open at once. At the bound, evict
	// says what a new connection does: close the oldest one that is not
	// running a handler (the probe port, which faces the network), or wait
	// in the kernel's queue for a connection to end (the control socket,
	// whose clients are trusted and may be many at once).
	maxConns int
	evict    bool
	log      *slog.Logger
	base     context.Context // ends when the server stops

	slots    chan struct{} // one per open connection, up to maxConns
	mu       sync.Mutex
	conns    map[*conn]struct{}
	stopping bool
	refused  refusals
	wg       sync.WaitGroup
}

// conn is one client connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// linger is set when the server answered before it read the whole
	// request (431, 413, 400): the rest is read and thrown away for a
	// moment before closing, since closing a socket with unread data
	// resets the connection and the client, still writing, would get
	// EPIPE or ECONNRESET instead of the answer.
	linger bool

	// Guarded by the server's mu.
	busy     bool      // a request is in progress (shutdown lets it finish)
	handling bool      // its handler runs (never evicted)
	since    time.Time // when it was accepted or last changed state
	evicted  bool      // closed to make room for a newer connection
}

// Bounds of a lingering close.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// close closes the connection, lingering if it must.
func (c *conn) close() {
	if c.linger {
		if cw, ok := c.c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = c.c.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.CopyN(io.Discard, c.c, lingerBytes)
		}
	}
	_ = c.c.Close()
}

// aLongTimeAgo is a deadline in the past: setting it interrupts a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// run accepts connections until ctx is done, then stops: the listener is
// closed, idle connections are closed, requests in progress get grace to
// finish (their contexts are already cancelled, so they answer quickly),
// and any still open after it are closed.
func (s *httpServer) run(ctx context.Context, l net.Listener, grace time.Duration) {
	s.base = ctx
	s.conns = make(map[*conn]struct{})
	s.slots = make(chan struct{}, s.maxConns)
	accepted := make(chan struct{})
	go func() { s.accept(l); close(accepted) }()
	<-ctx.Done()
	_ = l.Close()
	s.mu.Lock()
	s.stopping = true
	for c := range s.conns {
		if !c.busy {
			_ = c.c.Close()
		}
	}
	s.mu.Unlock()
	<-accepted // accept returns once the listener is closed
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.mu.Lock()
		for c := range s.conns {
			_ = c.c.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// accept runs the accept loop until the listener is closed. No error stops
// it: failures (out of file descriptors, a refused peer) back off from
// 5 ms up to 1 s instead of spinning, logged once per streak, and serving
// resumes when the cause is gone.
func (s *httpServer) accept(l net.Listener) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.base.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var pr *PeerRefusedError
			if errors.As(err, &pr) {
				s.refused.note(s.log, pr)
				continue
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				s.log.Warn("control server: accept failed, backing off", "addr", l.Addr(), "error", err)
			} else {
				backoff = min(2*backoff, time.Second)
			}
			if !s.sleep(backoff) {
				return
			}
			continue
		}
		backoff = 0
		if !s.admit(c) {
			_ = c.Close()
			return
		}
	}
}

// sleep waits for d; false when the server stops first.
func (s *httpServer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.base.Done():
		return false
	}
}

// admit takes a slot for c (making room or waiting for one at the bound)
// and starts serving it. It returns false when the server stops first.
func (s *httpServer) admit(c net.Conn) bool {
	select {
	case s.slots <- struct{}{}:
	default:
		if s.evict {
			s.evictOldest()
		}
		select {
		case s.slots <- struct{}{}:
		case <-s.base.Done():
			return false
		}
	}
	cn := &conn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10), since: time.Now()}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.slots
		return false
	}
	s.conns[cn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serveConn(cn)
	return true
}

// evictOldest closes the connection that has waited longest without a
// handler running (idle, or still sending its request); its goroutine then
// ends and gives its slot back. With every handler busy, nothing is evicted
// and the new connection waits for a slot.
func (s *httpServer) evictOldest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest *conn
	for c := range s.conns {
		if !c.handling && !c.evicted && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	if oldest != nil {
		oldest.evicted = true
		_ = oldest.c.Close()
	}
}

// setBusy marks c as serving a request (or idle). It returns false when
// the server is stopping and c should close instead of serving.
func (s *httpServer) setBusy(c *conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping && busy {
		return false
	}
	c.busy, c.since = busy, time.Now()
	return true
}

// setHandling marks c as running a handler, which eviction leaves alone.
func (s *httpServer) setHandling(c *conn, handling bool) {
	s.mu.Lock()
	c.handling, c.since = handling, time.Now()
	s.mu.Unlock()
}

func (s *httpServer) serveConn(c *conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.close()
		<-s.slots
	}()
	defer func() {
		// A bug in the parser or a handler must not kill horust (PID 1):
		// the connection ends, the panic is logged.
		if v := recover(); v != nil {
			s.log.Error("control server: panic while serving a connection", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	for first := true; ; first = false {
		// Wait for the next request: the header timeout for the first one,
		// the idle timeout between requests.
		wait := s.idleTimeout
		if first {
			wait = s.headTimeout
		}
		_ = c.c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !s.setBusy(c, true) {
			return
		}
		if !s.serveOne(c) {
			return
		}
		if !s.setBusy(c, false) {
			return
		}
	}
}

// serveOne reads one request from c and answers it. It returns whether the
// connection may carry another request.
func (s *httpServer) serveOne(c *conn) bool {
	start := time.Now()
	_ = c.c.SetReadDeadline(start.Add(s.headTimeout))
	_ = c.c.SetWriteDeadline(start.Add(s.readTimeout))
	line, hdr, err := httpwire.ReadHead(c.br, maxHeaderBytes)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, httpwire.ErrHeaderTooLarge):
			s.plain(c, 431, "request header fields over 16 KiB")
		case errors.As(err, &ne) && ne.Timeout():
			s.plain(c, 408, "the request was not sent in time")
		case isMalformed(err):
			s.plain(c, 400, err.Error())
		}
		return false // the client left or sent garbage
	}
	rl, err := httpwire.ParseRequestLine(line)
	if err != nil {
		code := 400
		if errors.Is(err, httpwire.ErrVersion) {
			code = 505
		}
		s.plain(c, code, err.Error())
		return false
	}
	u, err := httpwire.ParseTarget(rl.Target)
	if err != nil {
		s.plain(c, 400, err.Error())
		return false
	}
	if err := httpwire.CheckHost(rl.Minor, hdr); err != nil {
		s.plain(c, 400, err.Error())
		return false
	}
	keep := httpwire.KeepAlive(rl.Minor, hdr)
	framing, length, err := httpwire.RequestFraming(rl.Minor, hdr)
	if err != nil {
		s.plain(c, 400, err.Error())
		return false
	}

	// The body, read whole before the handler runs.
	_ = c.c.SetReadDeadline(start.Add(s.readTimeout))
	if framing == httpwire.Sized && length > s.maxBody {
		// Take the body in (up to a bound) before answering: a client still
		// writing it when the connection closes would see a broken pipe
		// instead of the 413.
		if length <= drainLimit {
			_, _ = io.CopyN(io.Discard, c.br, length)
		}
		c.linger = true
		s.reply(c, rl, &response{}, 413, "too_large",
			fmt.Sprintf("request body of %d bytes is over the limit of %d", length, s.maxBody), false)
		return false
	}
	if (framing == httpwire.Chunked || length > 0) && hdr.HasToken("Expect", "100-continue") {
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if c.bw.Flush() != nil {
			return false
		}
	}
	body, err := io.ReadAll(httpwire.LimitBody(httpwire.Body(c.br, framing, length), s.maxBody))
	switch {
	case errors.Is(err, httpwire.ErrBodyTooLarge):
		c.linger = true
		s.reply(c, rl, &response{}, 413, "too_large",
			fmt.Sprintf("request body is over the limit of %d bytes", s.maxBody), false)
		return false
	case isMalformed(err):
		s.reply(c, rl, &response{}, 400, "bad_request", "bad request body: "+err.Error(), false)
		return false
	case err != nil:
		return false // the client left or was too slow
	}

	ctx, cancel := context.WithCancel(s.base)
	defer cancel()
	r := &request{Method: rl.Method, URL: u, Header: hdr, Body: bytes.NewReader(body), ctx: ctx}
	w := &response{conn: c.c, bw: c.bw, minor: rl.Minor, head: rl.Method == "HEAD"}
	h, name, allowed := s.routes.match(rl.Method, u.EscapedPath())
	switch {
	case h != nil:
		r.name = name
		k, ok := s.runWatched(c, h, w, r, cancel)
		if !ok {
			return false // the client left (or ran out of time): nobody to answer
		}
		keep = keep && k
	case allowed != nil:
		allow := strings.Join(allowed, ", ")
		w.header.Set("Allow", allow)
		writeError(w, 405, "method_not_allowed",
			fmt.Sprintf("method %s not allowed on %s (allowed: %s)", rl.Method, u.Path, allow), nil)
	default:
		writeError(w, 404, "no_endpoint", fmt.Sprintf("no endpoint %s", u.Path), nil)
	}
	s.mu.Lock()
	keep = keep && !s.stopping
	s.mu.Unlock()
	if w.streamed {
		return w.endStream() && keep
	}
	if w.code == 0 {
		w.code = 200
	}
	return s.write(c, rl, w, keep) && keep
}

// runWatched runs a handler while it watches the connection: if the
// client goes away (or the read deadline passes), the request's context
// ends, and a long poll stops. A client that only closed its writing side
// (a half-close, as "curl < request" or a shell's here-document does) still
// gets its answer, and the connection closes after it. A pipelined next
// request stays buffered. It returns whether the connection may stay open
// and whether there is anyone to answer.
func (s *httpServer) runWatched(c *conn, h handlerFunc, w *response, r *request, cancel context.CancelFunc) (keep, answer bool) {
	s.setHandling(c, true)
	defer s.setHandling(c, false)
	if c.br.Buffered() > 0 {
		return s.runHandler(h, w, r), true
	}
	watched := make(chan struct{})
	var done, left, halfClosed atomic.Bool
	go func() {
		defer close(watched)
		_, err := c.br.Peek(1)
		switch {
		case err == nil || done.Load():
		case errors.Is(err, io.EOF) && !peerGone(c.c):
			halfClosed.Store(true)
		default:
			left.Store(true)
			cancel()
		}
	}()
	ok := s.runHandler(h, w, r)
	done.Store(true)
	_ = c.c.SetReadDeadline(aLongTimeAgo)
	<-watched
	return ok && !halfClosed.Load(), !left.Load()
}

// runHandler runs h; a panic in it is logged and answered 500 (and the
// connection closes after it: ok is false), and horust (PID 1) goes on.
func (s *httpServer) runHandler(h handlerFunc, w *response, r *request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			s.log.Error("control server: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if w.streamed {
				w.broken = true // too late for a 500: the connection closes
				return
			}
			*w = response{conn: w.conn}
			writeError(w, 500, "internal", "internal error (logged by horust)", nil)
		}
	}()
	h(w, r)
	return true
}

// isMalformed reports a syntax error in the request (answered 400).
func isMalformed(err error) bool {
	var me *httpwire.MalformedError
	return errors.As(err, &me)
}

// reply writes a JSON error answer.
func (s *httpServer) reply(c *conn, rl httpwire.RequestLine, w *response, code int, kind, msg string, keep bool) {
	writeError(w, code, kind, msg, nil)
	s.write(c, rl, w, keep)
}

// plain answers a request that could not be parsed, in plain text, and the
// connection closes after it.
func (s *httpServer) plain(c *conn, code int, msg string) {
	s.log.Debug("control server: bad request", "code", code, "error", msg)
	c.linger = true
	w := &response{code: code}
	w.header.Set("Content-Type", "text/plain; charset=utf-8")
	w.body.WriteString(msg)
	w.body.WriteByte('\n')
	_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
	s.write(c, httpwire.RequestLine{Minor: 1}, w, false)
}

// write sends w's answer; it reports whether it could.
func (s *httpServer) write(c *conn, rl httpwire.RequestLine, w *response, keep bool) bool {
	w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
	if !keep {
		w.header.Set("Connection", "close")
	}
	httpwire.WriteHead(c.bw, "HTTP/1.1 "+strconv.Itoa(w.code)+" "+httpwire.StatusText(w.code), w.header)
	if rl.Method != "HEAD" {
		_, _ = c.bw.Write(w.body.Bytes())
	}
	return c.bw.Flush() == nil
}
