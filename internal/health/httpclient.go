package health

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/httpwire"
)

const (
	// maxHead bounds the status line and header fields of a response.
	maxHead = 64 << 10
	// max1xx is how many interim (1xx) responses may come before the
	// answer, as net/http allows.
	max1xx = 5
	// maxIdlePerEndpoint is how many idle connections are kept per
	// scheme+host:port. One probe per service is in flight at a time, so
	// one idle connection per endpoint is what gets reused; the second
	// covers two services that share an endpoint. The total is not capped:
	// with a cap below the number of endpoints, round-robin probing would
	// evict exactly the connection needed next, every time.
	maxIdlePerEndpoint = 2
	// idleTimeout is how long an idle connection is kept: longer than the
	// default 1s interval, so connections survive between rounds; an
	// endpoint probed less often reconnects.
	idleTimeout = 90 * time.Second
)

// Handshake does the TLS handshake of an https check on conn, verifying the
// server's certificate for serverName, and returns the TLS connection. It
// comes from outside the package: horust-probe gives one built on crypto/tls,
// horust gives none, so that horust does not link crypto/tls and crypto/x509
// (docs/design.md, "https checks run in horust-probe").
type Handshake func(ctx context.Context, conn net.Conn, serverName string) (net.Conn, error)

// errNoTLS is an https request of a client without a Handshake: in horust,
// an http:// check redirected to https.
var errNoTLS = errors.New("https is not checked in horust's process: an https:// http-endpoint is checked by horust-probe, and an http:// one does not follow a redirect to https")

// httpClient sends the GET requests of http checks over HTTP/1.1 (plain, or
// TLS when it has a Handshake) and keeps their connections alive from one check to the next. It is
// safe for concurrent use. It speaks only what a probe needs: no proxies
// (a probe goes straight to the service, whatever HTTP_PROXY says), no
// HTTP/2, no compression, no cookies.
type httpClient struct {
	handshake   Handshake // nil: https requests fail with errNoTLS
	idleTimeout time.Duration
	// dial opens a TCP connection: net.Dialer.DialContext, which tests wrap
	// to count connections.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle map[string][]*persistConn // by endpoint key, most recently used last
}

// persistConn is one connection to an endpoint, in use or idle.
type persistConn struct {
	key  string // the endpoint: "http://127.0.0.1:80"
	conn net.Conn

	// Guarded by httpClient.mu.
	idleAt time.Time   // when it went idle
	timer  *time.Timer // closes it idleTimeout after idleAt; nil before it first goes idle
}

// newHTTPClient returns a client that does the TLS handshake of https
// requests with handshake (nil: it sends none).
func newHTTPClient(handshake Handshake) *httpClient {
	return &httpClient{
		handshake:   handshake,
		idleTimeout: idleTimeout,
		dial:        (&net.Dialer{}).DialContext,
		idle:        make(map[string][]*persistConn),
	}
}

// buffers are the read and write buffers of a request in flight. An idle
// connection holds none: they go back to bufPool between requests, so 100
// idle connections cost 100 sockets, not 800 KiB of buffers.
type buffers struct {
	r *bufio.Reader
	w *bufio.Writer
}

var bufPool = sync.Pool{New: func() any {
	return &buffers{r: bufio.NewReaderSize(nil, 4096), w: bufio.NewWriterSize(nil, 512)}
}}

// target is where one request goes and what it says.
type target struct {
	key        string // scheme://host:port: the idle pool's key
	addr       string // host:port to dial
	tls        bool
	serverName string // for the TLS handshake: the host without brackets or zone
	head       httpwire.Header
	start      string // the request line
}

// newTarget checks u and works out the request to send for it.
func newTarget(u *url.URL) (*target, error) {
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		return nil, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host in URL")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	host := u.Hostname()
	addr := net.JoinHostPort(host, port)
	name, _, _ := strings.Cut(host, "%") // an IPv6 zone is not part of a name
	// url.Parse lets a space through in the query; the request line cannot
	// hold one.
	uri := strings.ReplaceAll(u.RequestURI(), " ", "%20")
	head := httpwire.Header{
		{Name: "Host", Value: removeZone(u.Host)},
		{Name: "User-Agent", Value: userAgent},
		{Name: "Accept", Value: "*/*"},
	}
	if u.User != nil {
		password, _ := u.User.Password()
		auth := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + password))
		head = append(head, httpwire.Field{Name: "Authorization", Value: "Basic " + auth})
	}
	return &target{
		key:        u.Scheme + "://" + addr,
		addr:       addr,
		tls:        u.Scheme == "https",
		serverName: name,
		head:       head,
		start:      "GET " + uri + " HTTP/1.1",
	}, nil
}

// removeZone drops the zone of an IPv6 literal host ("[fe80::1%eth0]:8080"
// becomes "[fe80::1]:8080"): it names an interface of this machine and means
// nothing to the server.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	end := strings.LastIndexByte(host, ']')
	if end < 0 {
		return host
	}
	if zone := strings.LastIndexByte(host[:end], '%'); zone > 0 {
		return host[:zone] + host[end:]
	}
	return host
}

// response is what a check needs of one answer.
type response struct {
	code     int
	location string // the Location of a redirect (301, 302, 303, 307, 308)
	bodyErr  error  // reading the body failed (it was cut off, or malformed)
}

// get sends a GET to endpoint, follows redirects, and is nil on a 2xx whose
// body (up to maxBody) arrived whole. Errors do not repeat the endpoint.
func (c *httpClient) get(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("request: %w", unwrapURLError(err))
	}
	for requests := 1; ; requests++ {
		resp, err := c.do(ctx, u)
		if err != nil {
			return err
		}
		if resp.location != "" {
			// As net/http's default: at most maxRedirects requests.
			if requests >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			ref, err := url.Parse(resp.location)
			if err != nil {
				return fmt.Errorf("redirect: Location %q: %w", resp.location, unwrapURLError(err))
			}
			u = u.ResolveReference(ref)
			continue
		}
		if resp.code < 200 || resp.code > 299 {
			return fmt.Errorf("status %d", resp.code)
		}
		if resp.bodyErr != nil {
			// A response cut off mid-body is not a healthy answer.
			return ctxErr(ctx, fmt.Errorf("read body: %w", resp.bodyErr))
		}
		return nil
	}
}

// unwrapURLError drops the `parse "<url>":` of a url.Parse error: the
// caller names the URL already.
func unwrapURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// do sends one request for u and reads its response, on an idle connection
// when there is one. When a reused connection turns out to be dead (the
// server closed it while idle, or restarted), the request is sent again once
// on a new connection: a GET can be repeated.
func (c *httpClient) do(ctx context.Context, u *url.URL) (response, error) {
	t, err := newTarget(u)
	if err != nil {
		return response{}, err
	}
	if t.tls && c.handshake == nil {
		return response{}, errNoTLS
	}
	pc := c.take(t.key)
	reused := pc != nil
	if !reused {
		if pc, err = c.connect(ctx, t); err != nil {
			return response{}, ctxErr(ctx, err)
		}
	}
	resp, answered, err := c.exchange(ctx, pc, t)
	if err != nil && reused && !answered && ctx.Err() == nil && isDisconnect(err) {
		if pc, err = c.connect(ctx, t); err != nil {
			return response{}, ctxErr(ctx, err)
		}
		resp, _, err = c.exchange(ctx, pc, t)
	}
	return resp, ctxErr(ctx, err)
}

// ctxErr is err, or the context's error when the context ended: an operation
// that the end of the context interrupted fails with whatever it was doing
// (a read past its deadline), which says less than why.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// isDisconnect reports whether err is how a connection that the server had
// closed fails: end of input, a reset, or a broken pipe.
func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE)
}

// connect dials t (and does the TLS handshake for https), within ctx.
func (c *httpClient) connect(ctx context.Context, t *target) (*persistConn, error) {
	conn, err := c.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err // "dial tcp 127.0.0.1:1: connect: connection refused"
	}
	if t.tls {
		tc, err := c.handshake(ctx, conn, t.serverName)
		if err != nil {
			_ = conn.Close() // the handshake failed: nothing to lose
			return nil, err
		}
		conn = tc
	}
	return &persistConn{key: t.key, conn: conn}, nil
}

// exchange writes the request of t on pc and reads the response, its body
// up to maxBody. It then keeps pc for the next request when the connection
// can carry one, and closes it otherwise. answered reports whether any byte
// of a response arrived (before that, a failure on a reused connection means
// the server had closed it).
func (c *httpClient) exchange(ctx context.Context, pc *persistConn, t *target) (resp response, answered bool, err error) {
	// The end of ctx interrupts whatever read or write is in progress.
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(time.Unix(1, 0)) })
	bufs := bufPool.Get().(*buffers)
	keep := false
	defer func() {
		bufs.r.Reset(nil)
		bufs.w.Reset(nil)
		bufPool.Put(bufs)
		// When the AfterFunc ran, the connection's deadline is in the past.
		if stop() && keep {
			c.put(pc)
		} else {
			_ = pc.conn.Close() // done with it: a close error changes nothing
		}
	}()

	bufs.w.Reset(pc.conn)
	httpwire.WriteHead(bufs.w, t.start, t.head)
	if err := bufs.w.Flush(); err != nil {
		return response{}, false, fmt.Errorf("write request: %w", err)
	}

	br := bufs.r
	br.Reset(pc.conn)
	if _, err := br.Peek(1); err != nil {
		return response{}, false, fmt.Errorf("read response: %w", err)
	}
	var status httpwire.StatusLine
	var h httpwire.Header
	for interim := 0; ; interim++ {
		var start string
		start, h, err = httpwire.ReadHead(br, maxHead)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // a byte of it came: this is a cut
		}
		if err != nil {
			return response{}, true, fmt.Errorf("read response: %w", err)
		}
		if status, err = httpwire.ParseStatusLine(start); err != nil {
			return response{}, true, fmt.Errorf("read response: %w", err)
		}
		// An interim response (100 Continue, 103 Early Hints) comes before
		// the answer. 101 Switching Protocols is an answer: not one a GET
		// without an Upgrade asks for, so it counts as a failure.
		if status.Code >= 200 || status.Code == 101 {
			break
		}
		if interim == max1xx {
			return response{}, true, fmt.Errorf("read response: more than %d 1xx responses", max1xx)
		}
	}
	framing, n, err := httpwire.ResponseFraming(h, status.Code, false)
	if err != nil {
		return response{}, true, fmt.Errorf("read response: %w", err)
	}
	resp.code = status.Code
	switch status.Code {
	case 301, 302, 303, 307, 308:
		resp.location = h.Get("Location")
	}

	body := &eofWatcher{r: httpwire.Body(br, framing, n)}
	if _, err := io.CopyN(io.Discard, body, maxBody); err != nil && err != io.EOF {
		resp.bodyErr = err
	}
	keep = resp.bodyErr == nil && body.eof && // a longer body is left unread
		framing != httpwire.ToClose && status.Code != 101 &&
		httpwire.KeepAlive(status.Minor, h) &&
		br.Buffered() == 0 // bytes past the response: the server is confused
	return resp, true, nil
}

// eofWatcher passes reads through and notes the end of input.
type eofWatcher struct {
	r   io.Reader
	eof bool
}

func (e *eofWatcher) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// take returns the most recently used idle connection to the endpoint key,
// or nil.
func (c *httpClient) take(key string) *persistConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[key]
	if len(list) == 0 {
		return nil
	}
	pc := list[len(list)-1]
	list[len(list)-1] = nil
	if list = list[:len(list)-1]; len(list) == 0 {
		delete(c.idle, key)
	} else {
		c.idle[key] = list
	}
	pc.timer.Stop() // when it fired already, expire sees pc is not idle
	return pc
}

// put keeps pc idle for the next request to its endpoint, or closes it when
// the endpoint has enough idle connections.
func (c *httpClient) put(pc *persistConn) {
	c.mu.Lock()
	list := c.idle[pc.key]
	if len(list) >= maxIdlePerEndpoint {
		c.mu.Unlock()
		_ = pc.conn.Close() // idle, nothing in flight
		return
	}
	pc.idleAt = time.Now()
	if pc.timer == nil {
		pc.timer = time.AfterFunc(c.idleTimeout, func() { c.expire(pc) })
	} else {
		pc.timer.Reset(c.idleTimeout)
	}
	c.idle[pc.key] = append(list, pc)
	c.mu.Unlock()
}

// expire closes pc when it is still idle, and has been for idleTimeout. A
// timer that fired while pc was being taken finds it gone, or idle again
// since a moment ago (its timer re-armed), and leaves it.
func (c *httpClient) expire(pc *persistConn) {
	c.mu.Lock()
	list := c.idle[pc.key]
	i := slices.Index(list, pc)
	if i < 0 || time.Since(pc.idleAt) < c.idleTimeout {
		c.mu.Unlock()
		return
	}
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(c.idle, pc.key)
	} else {
		c.idle[pc.key] = list
	}
	c.mu.Unlock()
	_ = pc.conn.Close() // idle, nothing in flight
}
