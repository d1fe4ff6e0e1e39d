//go:build linux

package health

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/horust-go/horust/internal/config"
)

// server starts an httptest server with handler, closed when the test ends.
func server(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// status answers every request with code.
func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// hangingServer starts a server whose handler never answers: it returns when
// the client goes away or the test ends. Each request that arrives is
// announced on the channel (when there is room).
func hangingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	// Registered after the server's Close, so it runs first: Close waits for
	// the handlers.
	t.Cleanup(func() { close(release) })
	return srv, arrived
}

// refusedAddr returns a loopback host:port where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestHTTPCheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/200", status(http.StatusOK))
	mux.Handle("/204", status(http.StatusNoContent))
	mux.Handle("/503", status(http.StatusServiceUnavailable))
	mux.Handle("/404", status(http.StatusNotFound))
	mux.Handle("/redirect", http.RedirectHandler("/200", http.StatusFound))
	mux.Handle("/redirect-to-503", http.RedirectHandler("/503", http.StatusMovedPermanently))
	mux.Handle("/loop", http.RedirectHandler("/loop", http.StatusFound))
	mux.HandleFunc("/get-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 1<<10))
		for range 1 << 10 { // 1 MiB, more than the check reads
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, _ *http.Request) {
		// Promise 100 bytes, send 5, and drop the connection.
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("short"))
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
	})
	srv := server(t, mux.ServeHTTP)
	p := NewProber()

	for _, tc := range []struct {
		name    string
		path    string
		wantErr string // "" = healthy
	}{
		{"200 is healthy", "/200", ""},
		{"204 is healthy", "/204", ""},
		{"503 is unhealthy", "/503", "status 503"},
		{"404 is unhealthy", "/404", "status 404"},
		{"a redirect to a 200 is followed", "/redirect", ""},
		{"a redirect to a 503 is unhealthy", "/redirect-to-503", "status 503"},
		{"a redirect loop is unhealthy", "/loop", "stopped after 10 redirects"},
		{"the request is a GET (a HEAD would get 405 here)", "/get-only", ""},
		{"a long body is cut off, still healthy", "/big", ""},
		{"a body cut off by the server is unhealthy", "/cut", "read body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := srv.URL + tc.path
			err := p.Check(context.Background(), config.Healthiness{HTTPEndpoint: url, Timeout: 5 * time.Second})
			checkResult(t, err, tc.wantErr)
			if err != nil && !strings.HasPrefix(err.Error(), "http-endpoint "+url+": ") {
				t.Errorf("error %q does not start with the check's key and url", err)
			}
		})
	}

	t.Run("the error names the endpoint as the brief shows", func(t *testing.T) {
		err := p.Check(context.Background(), config.Healthiness{HTTPEndpoint: srv.URL + "/503"})
		if want := "http-endpoint " + srv.URL + "/503: status 503"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})

	t.Run("connection refused is unhealthy", func(t *testing.T) {
		err := p.Check(context.Background(), config.Healthiness{HTTPEndpoint: "http://" + refusedAddr(t) + "/"})
		checkResult(t, err, "connection refused")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("error %v does not wrap ECONNREFUSED", err)
		}
	})
}

// checkResult fails the test unless err is nil when wantErr is "", or holds
// wantErr otherwise.
func checkResult(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("unhealthy: %v", err)
	case wantErr != "" && err == nil:
		t.Errorf("healthy, want an error holding %q", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("error %q does not hold %q", err, wantErr)
	}
}

// slack is how late past its timeout an abandoned check may end on a loaded
// machine. Without the timeout these checks would hang for good (http) or
// until the kernel gives up on SYN retransmissions (about two minutes).
const slack = 5 * time.Second

func TestHTTPCheckTimeout(t *testing.T) {
	hangs, _ := hangingServer(t)
	headersOnly := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"a handler that never answers", hangs.URL},
		{"a 200 whose body never ends", headersOnly.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := NewProber().Check(context.Background(), config.Healthiness{HTTPEndpoint: tc.url, Timeout: timeout})
			elapsed := time.Since(start)
			checkResult(t, err, "timed out after 300ms")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if elapsed < timeout || elapsed > timeout+slack {
				t.Errorf("took %v, want about %v", elapsed, timeout)
			}
		})
	}
}

func TestHTTPCheckDefaultTimeoutIsOneSecond(t *testing.T) {
	srv, _ := hangingServer(t)
	start := time.Now()
	err := NewProber().Check(context.Background(), config.Healthiness{HTTPEndpoint: srv.URL})
	elapsed := time.Since(start)
	checkResult(t, err, "timed out after 1s")
	if elapsed < time.Second || elapsed > time.Second+slack {
		t.Errorf("took %v, want about 1s", elapsed)
	}
}

// TestHTTPCheckHTTPSNeedsAHandshake: horust's Prober has no TLS (horust-probe
// checks https, see its tests), so an https URL fails at once, with the
// reason, and opens no connection.
func TestHTTPCheckHTTPSNeedsAHandshake(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(status(http.StatusOK))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	err := NewProber().Check(context.Background(), config.Healthiness{HTTPEndpoint: srv.URL + "/"})
	checkResult(t, err, "http-endpoint "+srv.URL+"/: https is not checked in horust's process")
	if n := conns.Load(); n != 0 {
		t.Errorf("the check opened %d connections, want none", n)
	}
}

func TestGetHTTPDoesNotNameTheEndpoint(t *testing.T) {
	srv := server(t, status(http.StatusServiceUnavailable))
	err := NewProber().GetHTTP(context.Background(), srv.URL, time.Second)
	if err == nil || err.Error() != "status 503" {
		t.Errorf("GetHTTP = %v, want status 503", err)
	}
	hung, _ := hangingServer(t)
	err = NewProber().GetHTTP(context.Background(), hung.URL, 100*time.Millisecond)
	if err == nil || !strings.HasPrefix(err.Error(), "timed out after 100ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetHTTP = %v, want timed out after 100ms", err)
	}
}

func TestHTTPCheckReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(status(http.StatusOK))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := NewProber()
	for i := range 5 {
		if err := p.Check(context.Background(), config.Healthiness{HTTPEndpoint: srv.URL}); err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 checks opened %d connections, want 1", n)
	}
}

func TestHTTPCheckAfterServerRestart(t *testing.T) {
	// A service restarted on the same port: the idle connection to the old
	// process is dead, and the next check must not fail because of it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	first := &http.Server{Handler: status(http.StatusOK)}
	go func() { _ = first.Serve(l) }()
	p := NewProber()
	h := config.Healthiness{HTTPEndpoint: "http://" + addr + "/"}
	if err := p.Check(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	second := &http.Server{Handler: status(http.StatusOK)}
	go func() { _ = second.Serve(l2) }()
	t.Cleanup(func() { _ = second.Close() })
	if err := p.Check(context.Background(), h); err != nil {
		t.Errorf("check after the restart: %v", err)
	}
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// The check closes its side at once: the read sees EOF.
			_, _ = c.Read(make([]byte, 1))
			c.Close()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	p := NewProber()

	t.Run("an open port is healthy", func(t *testing.T) {
		checkResult(t, p.Check(context.Background(), config.Healthiness{TCPEndpoint: l.Addr().String()}), "")
		select {
		case <-accepted:
		case <-time.After(10 * time.Second):
			t.Error("the server never saw the connection closed")
		}
	})
	t.Run("a closed port is unhealthy", func(t *testing.T) {
		addr := refusedAddr(t)
		err := p.Check(context.Background(), config.Healthiness{TCPEndpoint: addr})
		if want := "tcp-endpoint " + addr + ": connect: connection refused"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})
	t.Run("a host name is resolved", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(l.Addr().String())
		if _, err := net.LookupHost("localhost"); err != nil {
			t.Skipf("localhost does not resolve here: %v", err)
		}
		// localhost may resolve to ::1 first: listen there too when we can.
		if l6, err := net.Listen("tcp", "[::1]:"+port); err == nil {
			defer l6.Close()
		}
		checkResult(t, p.Check(context.Background(), config.Healthiness{TCPEndpoint: "localhost:" + port}), "")
	})
}

func TestTCPCheckTimeout(t *testing.T) {
	// Loopback answers at once, so a timeout needs a port whose SYNs go
	// unanswered: a listener with a backlog of 0 that never accepts. Once
	// its accept queue is full, Linux drops further SYNs (with
	// net.ipv4.tcp_abort_on_overflow = 0, the default) and the client
	// waits for its retransmission, 1s later.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_abort_on_overflow"); err == nil && strings.TrimSpace(string(b)) != "0" {
		t.Skip("net.ipv4.tcp_abort_on_overflow is set: a full listener refuses instead of dropping SYNs")
	}
	// One connection fills a backlog of 0. It counts once the server has
	// the handshake's last ACK, which can be a moment after the dial
	// returns: wait for it in the listener's TCP_INFO (for a listener,
	// tcpi_unacked is the accept queue's length).
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			t.Fatal(err)
		}
		if info.Unacked > info.Sacked { // queued > backlog: full
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("the accept queue did not fill (%d queued, backlog %d)", info.Unacked, info.Sacked)
		}
	}
	const timeout = 300 * time.Millisecond
	start := time.Now()
	err = NewProber().Check(context.Background(), config.Healthiness{TCPEndpoint: addr, Timeout: timeout})
	elapsed := time.Since(start)
	checkResult(t, err, "tcp-endpoint "+addr+": timed out after 300ms")
	if elapsed < timeout || elapsed > timeout+slack {
		t.Errorf("took %v, want about %v", elapsed, timeout)
	}
}

func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "ready")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent")
	p := NewProber()

	t.Run("a present file is healthy", func(t *testing.T) {
		checkResult(t, p.Check(context.Background(), config.Healthiness{FilePath: present}), "")
	})
	t.Run("a present directory is healthy", func(t *testing.T) {
		checkResult(t, p.Check(context.Background(), config.Healthiness{FilePath: dir}), "")
	})
	t.Run("an absent file is unhealthy", func(t *testing.T) {
		err := p.Check(context.Background(), config.Healthiness{FilePath: absent})
		if want := "file-path " + absent + ": no such file or directory"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v does not wrap fs.ErrNotExist", err)
		}
	})
	t.Run("the file appearing makes it healthy", func(t *testing.T) {
		path := filepath.Join(dir, "later")
		checkResult(t, p.Check(context.Background(), config.Healthiness{FilePath: path}), "no such file")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		checkResult(t, p.Check(context.Background(), config.Healthiness{FilePath: path}), "")
	})
}

func TestPrepareFile(t *testing.T) {
	dir := t.TempDir()
	t.Run("deletes the file", func(t *testing.T) {
		path := filepath.Join(dir, "stale")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := PrepareFile(path); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after PrepareFile, stat = %v, want not exist", err)
		}
	})
	t.Run("a missing file is fine", func(t *testing.T) {
		if err := PrepareFile(filepath.Join(dir, "missing")); err != nil {
			t.Error(err)
		}
	})
	t.Run("an empty path does nothing", func(t *testing.T) {
		if err := PrepareFile(""); err != nil {
			t.Error(err)
		}
	})
	t.Run("a directory is an error and stays", func(t *testing.T) {
		sub := filepath.Join(dir, "empty-dir")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		err := PrepareFile(sub)
		if !errors.Is(err, syscall.EISDIR) {
			t.Errorf("PrepareFile(directory) = %v, want EISDIR", err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "file-path "+sub+": delete: ") {
			t.Errorf("error %q does not name the check and path", err)
		}
		if _, err := os.Stat(sub); err != nil {
			t.Errorf("the directory is gone: %v", err)
		}
	})
	t.Run("no permission is an error", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may delete anything: the permission case needs a non-root user")
		}
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(ro, "file")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(ro, 0o700) })
		if err := PrepareFile(path); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("PrepareFile = %v, want a permission error", err)
		}
	})
}

func TestCheckOrderAndStop(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "ready")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := server(t, status(http.StatusOK))
	bad := server(t, status(http.StatusServiceUnavailable))
	hangs, arrived := hangingServer(t)
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { open.Close() })
	refused := refusedAddr(t)
	p := NewProber()

	for _, tc := range []struct {
		name    string
		h       config.Healthiness
		wantErr string
	}{
		{"no checks is healthy", config.Healthiness{}, ""},
		{"a command check alone is not run here", config.Healthiness{Command: "false"}, ""},
		{"all passing is healthy",
			config.Healthiness{FilePath: present, HTTPEndpoint: ok.URL, TCPEndpoint: open.Addr().String()}, ""},
		{"the file is checked first, and a failure stops there (the http check would hang)",
			config.Healthiness{FilePath: filepath.Join(dir, "absent"), HTTPEndpoint: hangs.URL, TCPEndpoint: refused}, "file-path "},
		{"http comes before tcp",
			config.Healthiness{FilePath: present, HTTPEndpoint: bad.URL, TCPEndpoint: refused}, "http-endpoint "},
		{"tcp is checked last",
			config.Healthiness{FilePath: present, HTTPEndpoint: ok.URL, TCPEndpoint: refused}, "tcp-endpoint "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.Timeout = 5 * time.Second
			start := time.Now()
			err := p.Check(context.Background(), tc.h)
			checkResult(t, err, tc.wantErr)
			if err != nil && !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to start with %q", err, tc.wantErr)
			}
			if time.Since(start) > 4*time.Second {
				t.Errorf("took %v: a check after the failure ran", time.Since(start))
			}
		})
	}

	t.Run("a cancelled context fails at once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := p.Check(ctx, config.Healthiness{HTTPEndpoint: ok.URL})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelling abandons a hanging check", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		p.Go(ctx, config.Healthiness{HTTPEndpoint: hangs.URL, Timeout: time.Minute}, func(err error) { done <- err })
		// The cancel must interrupt the request, not precede it.
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never reached the server")
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
			if err != nil && strings.Contains(err.Error(), "timed out") {
				t.Errorf("a cancel is reported as a timeout: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Check did not end within 10s of the cancel")
		}
	})
}

func TestGo(t *testing.T) {
	ok := server(t, status(http.StatusOK))
	bad := server(t, status(http.StatusBadGateway))
	p := NewProber()
	results := make(chan error, 2)
	var calls atomic.Int32
	done := func(err error) { calls.Add(1); results <- err }
	p.Go(context.Background(), config.Healthiness{HTTPEndpoint: ok.URL}, done)
	p.Go(context.Background(), config.Healthiness{HTTPEndpoint: bad.URL}, done)
	var healthy, unhealthy int
	for range 2 {
		select {
		case err := <-results:
			if err == nil {
				healthy++
			} else if strings.Contains(err.Error(), "status 502") {
				unhealthy++
			} else {
				t.Errorf("unexpected result %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("done was not called within 10s")
		}
	}
	if healthy != 1 || unhealthy != 1 || calls.Load() != 2 {
		t.Errorf("healthy %d, unhealthy %d, calls %d; want 1, 1, 2", healthy, unhealthy, calls.Load())
	}
}

func TestConcurrentChecksOfOneFile(t *testing.T) {
	// Checks of the same path share a stat in flight; many at once must
	// each get the right answer and leave nothing behind.
	path := filepath.Join(t.TempDir(), "ready")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := NewProber()
	errs := make(chan error, 64)
	for range 64 {
		p.Go(context.Background(), config.Healthiness{FilePath: path}, func(err error) { errs <- err })
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	p.mu.Lock()
	left := len(p.stats)
	p.mu.Unlock()
	if left != 0 {
		t.Errorf("%d stats still recorded in flight", left)
	}
}

func BenchmarkHTTPCheck(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	p := NewProber()
	h := config.Healthiness{HTTPEndpoint: srv.URL + "/health"}
	ctx := context.Background()
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &before); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	if err := unix.Getrusage(unix.RUSAGE_SELF, &after); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	// Process CPU, the test server's share included: an upper bound for
	// the prober's own cost. The budget is 200µs per check.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkHTTPChecks100Services measures what the issue budgets: 100
// services, each with an http check every second, must cost horust under 2 %
// of a core. The servers run in a helper process, so the CPU measured is the
// prober's alone. One op is one second: a round of 100 checks, then idle.
// Run it with -benchtime=5x, without -race (the race detector multiplies CPU
// time).
func BenchmarkHTTPChecks100Services(b *testing.B) {
	const services = 100
	servers := runHelper(b, "http-servers", "HORUST_HEALTH_SERVERS="+strconv.Itoa(services))
	addrs := servers.line(b)
	if len(addrs) != services {
		b.Fatalf("helper printed %d addresses", len(addrs))
	}
	p := NewProber()
	var dials atomic.Int64
	dial := p.client.dial
	p.client.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	ctx := context.Background()
	round := func() {
		errs := make(chan error, services)
		for _, addr := range addrs {
			p.Go(ctx, config.Healthiness{HTTPEndpoint: "http://" + addr + "/health"}, func(err error) { errs <- err })
		}
		for range services {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
	}
	round() // open the connections, as the first seconds of a run do
	dials.Store(0)
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &before); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		round()
		// Pace the rounds one second apart, as the interval does: idle
		// connections and timers must be part of the cost.
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second)))
	}
	if err := unix.Getrusage(unix.RUSAGE_SELF, &after); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	wall := time.Since(start)
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%-of-a-core")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*services), "cpu-µs/check")
	b.ReportMetric(float64(dials.Load())/float64(b.N*services), "dials/check")
	b.ReportMetric(float64(after.Nvcsw+after.Nivcsw-before.Nvcsw-before.Nivcsw)/float64(b.N*services), "ctxsw/check")
}

// TestErrorFormat pins the "<key> <target>: <reason>" form the supervisor
// logs.
func TestErrorFormat(t *testing.T) {
	err := probe(context.Background(), time.Second, "tcp-endpoint", "x:1", func(context.Context, string) error {
		return fmt.Errorf("boom")
	})
	if err == nil || err.Error() != "tcp-endpoint x:1: boom" {
		t.Errorf("error = %v", err)
	}
}

func TestCouldNotRun(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"socket: too many open files", &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, true},
		{"socket: file table full", &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.ENFILE)}, true},
		{"open: out of memory", &os.PathError{Op: "open", Path: "/x", Err: syscall.ENOMEM}, true},
		{"fork of a check command: EAGAIN", fmt.Errorf("start /bin/check: %w", syscall.EAGAIN), true},
		{"connect: EAGAIN is the service's full backlog", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EAGAIN)}, false},
		{"connection refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{"status 503", errors.New("status 503"), false},
		{"no file", syscall.ENOENT, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := CouldNotRun(tc.err); got != tc.want {
				t.Fatalf("CouldNotRun(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func TestChecksWithoutFileDescriptorsAreNotTheServicesFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cmd := exec.Command(os.Args[0])
	cmd.Env = helperEnviron("out-of-fds", "HORUST_HEALTH_TARGET="+l.Addr().String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("helper printed %q, want one line per check", out)
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "true ") || !strings.Contains(line, ErrCouldNotRun.Error()) || !strings.Contains(line, "too many open files") {
			t.Errorf("check without fds: %q, want CouldNotRun with the cause", line)
		}
	}
}
