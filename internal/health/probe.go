package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/config"
)

const (
	// defaultTimeout bounds a check whose Healthiness.Timeout is not set.
	defaultTimeout = time.Second
	// maxRedirects is how many redirects an http check follows.
	maxRedirects = 10
	// maxBody is how much of a response body an http check reads (and
	// throws away). A longer body is cut off, which costs the connection.
	maxBody = 64 << 10
	// userAgent is sent with every http check, so a service can tell probes
	// apart in its access log.
	userAgent = "horust-health"
)

// ErrCouldNotRun marks a check that horust itself could not run: horust was
// out of file descriptors or memory when it opened a socket or a file. Such a
// check says nothing about the service and must not count as its failure;
// the error wraps it next to the cause.
var ErrCouldNotRun = errors.New("horust could not run the check")

// CouldNotRun reports whether err is horust's own lack of a resource (file
// descriptors, memory, kernel buffers, processes) while it opened a socket
// or a file or started a check command, rather than an answer of the
// service. EAGAIN from connect is the exception: that is the service's full
// backlog.
func CouldNotRun(err error) bool {
	if errors.Is(err, ErrCouldNotRun) {
		return true
	}
	for _, errno := range []unix.Errno{unix.EMFILE, unix.ENFILE, unix.ENOMEM, unix.ENOBUFS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var serr *os.SyscallError
	if errors.As(err, &serr) && serr.Syscall == "connect" {
		return false
	}
	return errors.Is(err, unix.EAGAIN)
}

// Prober runs the file, http and tcp checks. One serves a whole horust: it is
// safe for concurrent use and holds one HTTP client whose keep-alive
// connections are reused from one round of checks to the next. horust's
// Prober checks http:// endpoints only; horust-probe's also checks https://
// ones (NewTLSProber).
type Prober struct {
	client *httpClient

	mu    sync.Mutex
	stats map[string]*statCall // file checks in flight, by path
}

// statCall is one os.Stat in flight; checks of the same path share it.
type statCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// NewProber returns horust's Prober: its http checks fail on an https URL
// (see errNoTLS), which horust checks with horust-probe instead.
func NewProber() *Prober { return NewTLSProber(nil) }

// NewTLSProber returns a Prober whose http checks do the TLS handshake of
// https URLs with handshake (nil: as NewProber).
func NewTLSProber(handshake Handshake) *Prober {
	return &Prober{client: newHTTPClient(handshake), stats: make(map[string]*statCall)}
}

// PrepareFile deletes the file of a file-path check before its service
// starts, so that a file left by an earlier run does not count. A missing file
// is fine; any other failure (the path is a directory, no permission) is
// returned. An empty path does nothing.
func PrepareFile(path string) error {
	if path == "" {
		return nil
	}
	// unlink, not os.Remove: os.Remove would also remove an empty directory.
	err := unix.Unlink(path)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("file-path %s: delete: %w", path, err)
}

// Check runs the file, http and tcp checks configured in h, in that order,
// each bounded by h.Timeout (1s when not set), and stops at the first failure.
// A check that horust could not run (see CouldNotRun) ends the round with an
// error that wraps ErrCouldNotRun.
// The command check is not run here: it is a child process, run by the
// supervisor loop, and so is horust's check of an https endpoint
// (horust-probe): with NewProber, an https URL fails here. Check returns nil when every check passed; otherwise the
// error names the failed check and its target, for example
// "http-endpoint http://127.0.0.1:8080/health: status 503".
func (p *Prober) Check(ctx context.Context, h config.Healthiness) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if h.FilePath != "" {
		if err := probe(ctx, timeout, "file-path", h.FilePath, p.checkFile); err != nil {
			return err
		}
	}
	if h.HTTPEndpoint != "" {
		if err := probe(ctx, timeout, "http-endpoint", h.HTTPEndpoint, p.checkHTTP); err != nil {
			return err
		}
	}
	if h.TCPEndpoint != "" {
		if err := probe(ctx, timeout, "tcp-endpoint", h.TCPEndpoint, checkTCP); err != nil {
			return err
		}
	}
	return nil
}

// Go runs Check in a new goroutine and calls done with its result when it
// ends. done is called exactly once, from that goroutine.
func (p *Prober) Go(ctx context.Context, h config.Healthiness, done func(error)) {
	go func() { done(p.Check(ctx, h)) }()
}

// GetHTTP runs one http check of endpoint (http:// or, for a NewTLSProber,
// https://) bounded by timeout (1s when not set). The error, nil when
// healthy, does not name the endpoint: "status 503", "timed out after 1s".
// horust-probe runs it; horust names the endpoint when it reports it.
func (p *Prober) GetHTTP(ctx context.Context, endpoint string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return bounded(ctx, timeout, endpoint, p.checkHTTP)
}

// probe runs one check under its own deadline and names it in the error.
func probe(ctx context.Context, timeout time.Duration, key, target string, check func(context.Context, string) error) error {
	if err := bounded(ctx, timeout, target, check); err != nil {
		return fmt.Errorf("%s %s: %w", key, target, err)
	}
	return nil
}

// bounded runs one check of target under its own deadline. Its error says
// "timed out after" when that deadline passed, and wraps ErrCouldNotRun when
// horust could not run the check (see CouldNotRun).
func bounded(ctx context.Context, timeout time.Duration, target string, check func(context.Context, string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := check(pctx, target)
	if err == nil {
		return nil
	}
	if CouldNotRun(err) {
		return fmt.Errorf("%w: %w", ErrCouldNotRun, err)
	}
	// The dialer sets pctx's deadline on the socket, so its timeout
	// (os.ErrDeadlineExceeded) can come back a moment before pctx reports it.
	if ctx.Err() == nil && (pctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
		// The check's own deadline passed: say so rather than whatever
		// half-finished operation it interrupted.
		return fmt.Errorf("timed out after %v: %w", timeout, context.DeadlineExceeded)
	}
	return err
}

// checkFile is healthy while path exists. The stat runs in its own goroutine
// so that a stat stuck in the kernel (a hung network mount) is abandoned at
// the deadline; checks of the same path join the stat in flight instead of
// starting another, so a stuck mount holds one thread, not one per round.
func (p *Prober) checkFile(ctx context.Context, path string) error {
	p.mu.Lock()
	call := p.stats[path]
	if call == nil {
		call = &statCall{done: make(chan struct{})}
		p.stats[path] = call
		go p.stat(path, call)
	}
	p.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stat runs os.Stat for call and then forgets it, so the next check stats
// afresh.
func (p *Prober) stat(path string, call *statCall) {
	_, err := os.Stat(path)
	var perr *os.PathError
	if errors.As(err, &perr) {
		err = perr.Err // the path is already in the check's error
	}
	p.mu.Lock()
	delete(p.stats, path)
	p.mu.Unlock()
	call.err = err
	close(call.done)
}

// checkHTTP sends a GET to endpoint and is healthy on a 2xx status, after
// following redirects. The body is read, up to maxBody, and thrown away, so
// the connection can be reused.
func (p *Prober) checkHTTP(ctx context.Context, endpoint string) error {
	return p.client.get(ctx, endpoint)
}

// checkTCP is healthy when a TCP connection to addr (host:port) opens. The
// connection is closed at once.
func checkTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var operr *net.OpError
		if errors.As(err, &operr) {
			err = operr.Err // "connect: connection refused", without the address again
		}
		return err
	}
	_ = conn.Close() // nothing was sent: a close error changes nothing
	return nil
}
