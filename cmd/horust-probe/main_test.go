package main

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain makes the test binary horust-probe itself when
// HORUST_PROBE_TEST_MAIN is set, so that TestProcess runs the real program
// in its own process, with its own environment (SSL_CERT_FILE).
func TestMain(m *testing.M) {
	if os.Getenv("HORUST_PROBE_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// tlsServer is an httptest TLS server answering handler (its certificate is
// self-signed: trusted only through roots or SSL_CERT_FILE).
func tlsServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	// The untrusted cases make the server log a handshake error: expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, roots
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// probe runs horust-probe in this process and returns its exit code and
// what it wrote to stderr.
func probe(roots *x509.CertPool, args ...string) (int, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, roots)
	return code, stderr.String()
}

func TestProbe(t *testing.T) {
	ok, roots := tlsServer(t, status(http.StatusOK))
	unavailable, _ := tlsServer(t, status(http.StatusServiceUnavailable))
	// Both test servers have the same certificate: one pool trusts both.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ok.URL+"/secure", http.StatusFound)
	}))
	t.Cleanup(plain.Close)
	// silent accepts connections and never says anything: a TLS handshake
	// with it never ends.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()

	for _, tc := range []struct {
		name     string
		roots    *x509.CertPool // nil: the system's, which do not hold the test CA
		args     []string
		wantCode int
		wantErr  string // a part of the stderr line; "" for none
	}{
		{"https with a trusted certificate is healthy", roots, []string{ok.URL + "/"}, exitHealthy, ""},
		{"an untrusted certificate is unhealthy", nil, []string{ok.URL + "/"}, exitUnhealthy, "x509: certificate signed by unknown authority"},
		{"a 503 over https is unhealthy", roots, []string{unavailable.URL + "/"}, exitUnhealthy, "status 503"},
		{"a redirect from http to https is followed", roots, []string{plain.URL + "/"}, exitHealthy, ""},
		{"a TLS handshake that never ends times out", roots, []string{"--timeout", "300ms", "https://" + silent.Addr().String() + "/"}, exitUnhealthy, "timed out after 300ms"},
		{"a closed port is unhealthy", roots, []string{"http://" + refusedAddr(t) + "/"}, exitUnhealthy, "connection refused"},
		{"no URL is a usage error", roots, nil, exitUsage, "want one URL"},
		{"two URLs are a usage error", roots, []string{ok.URL, ok.URL}, exitUsage, "want one URL"},
		{"a timeout that is no duration is a usage error", roots, []string{"--timeout", "soon", ok.URL}, exitUsage, "invalid value"},
		{"a zero timeout is a usage error", roots, []string{"--timeout", "0s", ok.URL}, exitUsage, "must be more than 0"},
		{"an unknown flag is a usage error", roots, []string{"--insecure", ok.URL}, exitUsage, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, stderr := probe(tc.roots, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			switch {
			case tc.wantErr == "" && stderr != "":
				t.Errorf("stderr %q, want nothing", stderr)
			case !strings.Contains(stderr, tc.wantErr):
				t.Errorf("stderr %q does not hold %q", stderr, tc.wantErr)
			case tc.wantErr != "" && strings.Count(stderr, "\n") != 1:
				t.Errorf("stderr %q is not one line", stderr)
			}
			// Far more than the 300ms timeout: a hang would be minutes.
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--help", "Usage: horust-probe"},
		{"--version", "horust-probe "},
	} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{tc.arg}, &stdout, &stderr, nil); code != exitHealthy || !strings.HasPrefix(stdout.String(), tc.want) || stderr.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 0 and %q", tc.arg, code, stdout.String(), stderr.String(), tc.want)
		}
	}
}

// TestProcess runs horust-probe as its own process, as horust does: the
// system's roots plus SSL_CERT_FILE decide what is trusted.
func TestProcess(t *testing.T) {
	srv, _ := tlsServer(t, status(http.StatusNoContent))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		env      string
		wantCode int
		wantErr  string
	}{
		{"the test CA in SSL_CERT_FILE is trusted", "SSL_CERT_FILE=" + ca, exitHealthy, ""},
		{"without it the certificate is not", "SSL_CERT_FILE=" + filepath.Join(t.TempDir(), "none.pem"), exitUnhealthy, "x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "--timeout", "10s", srv.URL+"/")
			cmd.Env = append(os.Environ(), "HORUST_PROBE_TEST_MAIN=1", "SSL_CERT_DIR=/nonexistent", tc.env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			line, _ := bufio.NewReader(&stderr).ReadString('\n')
			if tc.wantErr == "" && line != "" || !strings.Contains(line, tc.wantErr) {
				t.Errorf("stderr %q, want %q", line, tc.wantErr)
			}
		})
	}
}

// refusedAddr is a loopback address where nothing listens.
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
