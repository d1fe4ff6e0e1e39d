// Package client is the side of the control API that horustctl links: a
// Client for one horust's socket, and FindSocket, which picks that socket.
// It shares the wire types with the server (package control) and nothing
// else: it links no server code.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/httpwire"
	"github.com/horust-go/horust/internal/status"
)

// ErrTimeout is what a Client's error wraps when horust answered that time
// ran out: a wait whose condition was not met in time (408), or a loop
// that did not answer (504).
var ErrTimeout = errors.New("timed out")

// maxReplyBytes bounds what a Client reads of one reply.
const maxReplyBytes = 16 << 20

// Client talks to one horust over its control socket. Its methods mirror
// the server's Backend; their errors wrap control.ErrNotFound,
// ErrShuttingDown, ErrUnreachable, ErrNotRunning, ErrExiting or this
// package's ErrTimeout when horust answered so (see APIError), and the
// connection's error (syscall.ENOENT, ECONNREFUSED, ...) when it could not
// be reached. A Client is safe for concurrent use.
//
// Each call is one connection, closed after the answer: horustctl makes a
// call or two, and a connection on a local socket costs microseconds.
type Client struct {
	path string
}

// New returns a client for the horust listening on socketPath. It
// connects on the first call.
func New(socketPath string) *Client {
	return &Client{path: socketPath}
}

// APIError is an error answer from horust.
type APIError struct {
	StatusCode int
	control.ErrorReply
}

func (e *APIError) Error() string { return e.ErrorReply.Error }

// Unwrap returns the sentinel error that the answer's code stands for.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case "not_found":
		return control.ErrNotFound
	case "shutting_down":
		return control.ErrShuttingDown
	case "unreachable":
		return control.ErrUnreachable
	case "not_running":
		return control.ErrNotRunning
	case "timeout":
		return ErrTimeout
	case "exiting":
		return control.ErrExiting
	case "invalid_config":
		return control.ErrInvalidConfig
	case "no_config":
		return control.ErrNoConfig
	}
	return nil
}

// List returns every service in start order.
func (c *Client) List(ctx context.Context) ([]status.ServiceStatus, error) {
	rep, err := c.Status(ctx)
	return rep.Services, err
}

// Status returns every service in start order and the configuration's
// generation and last reload.
func (c *Client) Status(ctx context.Context) (control.ServicesReply, error) {
	var rep control.ServicesReply
	err := c.do(ctx, "GET", "/v1/services", nil, &rep)
	return rep, err
}

// Get returns one service.
func (c *Client) Get(ctx context.Context, name string) (status.ServiceStatus, error) {
	return c.serviceCall(ctx, "GET", name, "")
}

// Start starts a finished service again.
func (c *Client) Start(ctx context.Context, name string) (status.ServiceStatus, error) {
	return c.serviceCall(ctx, "POST", name, "/start")
}

// Stop stops a service for good.
func (c *Client) Stop(ctx context.Context, name string) (status.ServiceStatus, error) {
	return c.serviceCall(ctx, "POST", name, "/stop")
}

// Restart stops a service and starts it again.
func (c *Client) Restart(ctx context.Context, name string) (status.ServiceStatus, error) {
	return c.serviceCall(ctx, "POST", name, "/restart")
}

func (c *Client) serviceCall(ctx context.Context, method, name, action string) (status.ServiceStatus, error) {
	var st status.ServiceStatus
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
	body, err := json.Marshal(map[string]string{"signal": control.SignalName(sig)})
	if err != nil {
		return fmt.Errorf("encode signal: %w", err)
	}
	return c.do(ctx, "POST", p+"/signal", body, &control.SignalReply{})
}

// Shutdown asks horust to shut down gracefully, as SIGTERM does.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, "POST", "/v1/shutdown", nil, &control.ShutdownReply{})
}

// Wait returns once every named service meets cond, with their statuses.
// Horust gives up after timeout (an error wrapping ErrTimeout, whose
// APIError lists the services that were late); ctx should allow a little
// more, or the client gives up first.
func (c *Client) Wait(ctx context.Context, names []string, cond control.WaitFor, timeout time.Duration) ([]status.ServiceStatus, error) {
	q := url.Values{}
	q["service"] = names
	q.Set("for", string(cond))
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	var rep control.ServicesReply
	err := c.do(ctx, "GET", "/v1/wait?"+q.Encode(), nil, &rep)
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
	code, reason, data, err := c.roundTrip(ctx, method, path, body)
	if err != nil {
		return c.connError(ctx, err)
	}
	if code/100 != 2 {
		return apiError(code, reason, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("horust at %s sent a reply that is not understood: %w", c.path, err)
	}
	return nil
}

// apiError is the *APIError of an error answer.
func apiError(code int, reason string, data []byte) error {
	apiErr := &APIError{StatusCode: code}
	if json.Unmarshal(data, &apiErr.ErrorReply) != nil || apiErr.ErrorReply.Error == "" {
		apiErr.ErrorReply.Error = fmt.Sprintf("horust answered %d %s", code, reason)
	}
	return apiErr
}

// roundTrip sends one request on a new connection and reads the answer.
// ctx bounds the whole exchange.
func (c *Client) roundTrip(ctx context.Context, method, path string, body []byte) (code int, reason string, data []byte, err error) {
	err = c.exchange(ctx, method, path, body, func(sl httpwire.StatusLine, b io.Reader) error {
		code, reason = sl.Code, sl.Reason
		data, err = io.ReadAll(io.LimitReader(b, maxReplyBytes))
		return err
	})
	return code, reason, data, err
}

// exchange sends one request on a new connection and calls read with the
// answer's status and body, which it may read as long as ctx allows. Its
// error is read's, or the connection's (with ctx's error when ctx ended).
func (c *Client) exchange(ctx context.Context, method, path string, body []byte, read func(httpwire.StatusLine, io.Reader) error) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}()
	if err := checkOwners(c.path); err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if err := c.checkServer(conn); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	bw := bufio.NewWriter(conn)
	h := httpwire.Header{{Name: "Host", Value: "horust"}, {Name: "User-Agent", Value: "horustctl"}, {Name: "Connection", Value: "close"}}
	if body != nil {
		h = append(h, httpwire.Field{Name: "Content-Type", Value: "application/json"},
			httpwire.Field{Name: "Content-Length", Value: strconv.Itoa(len(body))})
	}
	httpwire.WriteHead(bw, method+" "+path+" HTTP/1.1", h)
	_, _ = bw.Write(body)
	if err := bw.Flush(); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	for {
		line, rh, err := httpwire.ReadHead(br, 64<<10)
		if err != nil {
			return err
		}
		sl, err := httpwire.ParseStatusLine(line)
		if err != nil {
			return err
		}
		if sl.Code < 200 {
			continue // 100 Continue
		}
		f, n, err := httpwire.ResponseFraming(rh, sl.Code, method == "HEAD")
		if err != nil {
			return err
		}
		return read(sl, httpwire.Body(br, f, n))
	}
}

// ErrUntrusted is what a Client's error wraps when the socket, its folder
// or the process listening on it belongs to a user other than root and the
// client's own: an answer from there could be anyone's.
var ErrUntrusted = errors.New("untrusted control socket")

// checkOwners makes sure the socket at path and its folder belong to root
// or to this user before anything is sent there: another user's socket
// could be a fake horust.
func checkOwners(path string) error {
	for _, p := range []string{filepath.Dir(path), path} {
		stat := os.Stat // the folder may be reached through a symlink (/var/run)
		if p == path {
			stat = os.Lstat
		}
		fi, err := stat(p)
		if err != nil {
			return err
		}
		if uid := owner(fi); uid != 0 && uid != os.Geteuid() {
			return &ConnError{Msg: fmt.Sprintf("%s belongs to uid %d, neither root nor this user: not trusted", p, uid), Err: ErrUntrusted}
		}
	}
	return nil
}

// owner is the uid that owns a file, or -1 when it cannot be told.
func owner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// checkServer makes sure the process that listens on conn runs as root or
// as this user (SO_PEERCRED: its credentials when it bound the socket).
func (c *Client) checkServer(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred control.PeerCred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = control.ReadPeerCred(int(fd)) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if cred.UID != 0 && cred.UID != os.Geteuid() {
		return &ConnError{Msg: fmt.Sprintf("the process on %s (pid %d) runs as uid %d, neither root nor this user: not trusted", c.path, cred.PID, cred.UID), Err: ErrUntrusted}
	}
	return nil
}

// connError explains a failure to talk to horust at all.
func (c *Client) connError(ctx context.Context, err error) error {
	explain := func(format string) error {
		return &ConnError{Msg: fmt.Sprintf(format, c.path), Err: err}
	}
	var ce *ConnError
	switch {
	case errors.As(err, &ce):
		return err
	case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return explain("horust at %s did not answer in time")
	case errors.Is(err, fs.ErrNotExist):
		return explain("no horust socket at %s")
	case errors.Is(err, syscall.ECONNREFUSED):
		return explain("nothing answers on %s (horust is gone and left its socket)")
	case errors.Is(err, fs.ErrPermission):
		return explain("no permission to connect to %s (run as horust's user or root)")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return explain("horust at %s closed the connection before answering (did it exit, or does it refuse this user?)")
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
