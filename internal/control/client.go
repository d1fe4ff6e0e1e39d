package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrTimeout is what a Client's error wraps when horust answered that time
// ran out: a wait whose condition was not met in time (408), or a loop
// that did not answer (504).
var ErrTimeout = errors.New("timed out")

// maxReplyBytes bounds what a Client reads of one reply.
const maxReplyBytes = 16 << 20

// Client talks to one horust over its control socket. Its methods mirror
// Backend; their errors wrap ErrNotFound, ErrShuttingDown, ErrUnreachable,
// ErrNotRunning, ErrExiting or ErrTimeout when horust answered so (see
// APIError), and the connection's error (syscall.ENOENT, ECONNREFUSED, ...)
// when it could not be reached. A Client is safe for concurrent use.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the horust listening on socketPath. It
// connects on the first call.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	return &Client{path: socketPath, hc: &http.Client{Transport: tr}}
}

// SocketPath is the socket the client talks to.
func (c *Client) SocketPath() string { return c.path }

// Close closes the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// APIError is an error answer from horust.
type APIError struct {
	StatusCode int
	ErrorReply
}

func (e *APIError) Error() string { return e.ErrorReply.Error }

// Unwrap returns the sentinel error that the answer's code stands for.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case "not_found":
		return ErrNotFound
	case "shutting_down":
		return ErrShuttingDown
	case "unreachable":
		return ErrUnreachable
	case "not_running":
		return ErrNotRunning
	case "timeout":
		return ErrTimeout
	case "exiting":
		return ErrExiting
	}
	return nil
}

// List returns every service in start order.
func (c *Client) List(ctx context.Context) ([]ServiceStatus, error) {
	var rep ServicesReply
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &rep)
	return rep.Services, err
}

// Get returns one service.
func (c *Client) Get(ctx context.Context, name string) (ServiceStatus, error) {
	return c.serviceCall(ctx, http.MethodGet, name, "")
}

// Start starts a finished service again.
func (c *Client) Start(ctx context.Context, name string) (ServiceStatus, error) {
	return c.serviceCall(ctx, http.MethodPost, name, "/start")
}

// Stop stops a service for good.
func (c *Client) Stop(ctx context.Context, name string) (ServiceStatus, error) {
	return c.serviceCall(ctx, http.MethodPost, name, "/stop")
}

// Restart stops a service and starts it again.
func (c *Client) Restart(ctx context.Context, name string) (ServiceStatus, error) {
	return c.serviceCall(ctx, http.MethodPost, name, "/restart")
}

func (c *Client) serviceCall(ctx context.Context, method, name, action string) (ServiceStatus, error) {
	var st ServiceStatus
	p, err := servicePath(name)
	if err != nil {
		return st, err
	}
	err = c.do(ctx, method, p+action, nil, &st)
	return st, err
}

// Signal sends sig to a service's processes.
func (c *Client) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	p, err := servicePath(name)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"signal": SignalName(sig)})
	if err != nil {
		return fmt.Errorf("encode signal: %w", err)
	}
	return c.do(ctx, http.MethodPost, p+"/signal", body, &SignalReply{})
}

// Shutdown asks horust to shut down gracefully, as SIGTERM does.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/shutdown", nil, &ShutdownReply{})
}

// Wait returns once every named service meets cond, with their statuses.
// Horust gives up after timeout (an error wrapping ErrTimeout, whose
// APIError lists the services that were late); ctx should allow a little
// more, or the client gives up first.
func (c *Client) Wait(ctx context.Context, names []string, cond WaitFor, timeout time.Duration) ([]ServiceStatus, error) {
	q := url.Values{}
	q["service"] = names
	q.Set("for", string(cond))
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	var rep ServicesReply
	err := c.do(ctx, http.MethodGet, "/v1/wait?"+q.Encode(), nil, &rep)
	return rep.Services, err
}

// servicePath is the URL path of one service. Every byte that could
// change how the path is read is escaped, "/" and a name made only of dots
// included, so any name round-trips.
func servicePath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty service name")
	}
	esc := url.PathEscape(name)
	if strings.Trim(name, ".") == "" {
		esc = strings.ReplaceAll(esc, ".", "%2E")
	}
	return "/v1/services/" + esc, nil
}

// do sends one request and decodes a 2xx answer into out, or an error
// answer into an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://horust"+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.connError(ctx, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return c.connError(ctx, err)
	}
	if resp.StatusCode/100 != 2 {
		apiErr := &APIError{StatusCode: resp.StatusCode}
		if json.Unmarshal(data, &apiErr.ErrorReply) != nil || apiErr.ErrorReply.Error == "" {
			apiErr.ErrorReply.Error = fmt.Sprintf("horust answered %s", resp.Status)
		}
		return apiErr
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("horust at %s sent a reply that is not understood: %w", c.path, err)
	}
	return nil
}

// connError explains a failure to talk to horust at all.
func (c *Client) connError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	explain := func(format string) error {
		return &ConnError{Msg: fmt.Sprintf(format, c.path), Err: err}
	}
	switch {
	case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return explain("horust at %s did not answer in time")
	case errors.Is(err, fs.ErrNotExist):
		return explain("no horust socket at %s")
	case errors.Is(err, syscall.ECONNREFUSED):
		return explain("nothing answers on %s (horust is gone and left its socket)")
	case errors.Is(err, fs.ErrPermission):
		return explain("no permission to connect to %s (run as horust's user or root)")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return explain("horust at %s closed the connection before answering (did it exit?)")
	}
	return fmt.Errorf("talking to horust at %s: %w", c.path, err)
}

// ConnError is a failure to reach horust or to get its answer. Its message
// is meant for a person; Err is the cause (syscall.ECONNREFUSED, io.EOF, ...).
type ConnError struct {
	Msg string
	Err error
}

func (e *ConnError) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }
