//go:build linux

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
)

// httpsServer is a TLS server on loopback answering code, with a new
// self-signed certificate for 127.0.0.1. It returns the server and the PEM
// file of its certificate (the test CA), and counts the requests it served.
func httpsServer(t *testing.T, code int) (*httptest.Server, string, *atomic.Int32) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(code)
	}))
	// An untrusted certificate makes the server log a handshake error.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, ca, &served
}

// httpsCheck is a service kept alive by the sleep role whose http-endpoint
// is url.
func httpsCheck(url string) string {
	return svc(role("sleep"), "[healthiness]", `http-endpoint = "`+url+`/health"`, `interval = "100ms"`)
}

// TestHealthHTTPSCheck: horust checks an https:// endpoint with
// horust-probe, beside it, which trusts the CA in SSL_CERT_FILE of horust's
// environment. A service whose server has another certificate stays
// unhealthy, and the log says why (the x509 error).
func TestHealthHTTPSCheck(t *testing.T) {
	trusted, ca, served := httpsServer(t, http.StatusOK)
	untrusted, _, _ := httpsServer(t, http.StatusOK)
	unavailable, ca2, _ := httpsServer(t, http.StatusServiceUnavailable)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(bundle, []byte(readFile(ca)+readFile(ca2)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := healthStart(t, map[string]string{
		"hs-ok.toml":          httpsCheck(trusted.URL),
		"hs-untrusted.toml":   httpsCheck(untrusted.URL),
		"hs-unavailable.toml": httpsCheck(unavailable.URL),
	}, "HORUST_LOG=warn", "SSL_CERT_FILE="+bundle, "SSL_CERT_DIR="+t.TempDir())

	h.waitState("hs-ok.toml", 20*time.Second, "RUNNING")
	if st := h.status("hs-ok.toml"); st.Health != "healthy" || served.Load() == 0 {
		t.Fatalf("hs-ok.toml: %s after %d requests; want healthy", jsonOf(st), served.Load())
	}
	for _, tc := range []struct{ name, url, reason string }{
		{"hs-untrusted.toml", untrusted.URL, "x509: certificate signed by unknown authority"},
		{"hs-unavailable.toml", unavailable.URL, "status 503"},
	} {
		eventually(t, 20*time.Second, tc.name+" to fail 3 rounds", func() bool { return h.status(tc.name).HealthFailures >= 3 })
		if st := h.status(tc.name); st.State != status.Started || st.Health != "unhealthy" {
			t.Fatalf("%s: %s; want STARTED and unhealthy", tc.name, jsonOf(st))
		}
		want := "http-endpoint " + tc.url + "/health: "
		eventually(t, 10*time.Second, "the log to say "+want+"…"+tc.reason, func() bool {
			for _, l := range strings.Split(h.stderr.String(), "\n") {
				if strings.Contains(l, "health check failed") && strings.Contains(l, tc.name) && strings.Contains(l, want) && strings.Contains(l, tc.reason) {
					return true
				}
			}
			return false
		})
	}
	if h.exited() {
		t.Fatal("horust exited")
	}
}

// TestHealthHTTPSCheckWithoutProbe: a horust with no horust-probe beside it
// or in PATH fails its https checks and says what to install where.
func TestHealthHTTPSCheckWithoutProbe(t *testing.T) {
	srv, ca, served := httpsServer(t, http.StatusOK)
	alone := filepath.Join(t.TempDir(), "horust")
	if err := copyFile(horustBin, alone, 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHorust(t, runOpts{bin: alone, files: map[string]string{"hn-svc.toml": httpsCheck(srv.URL)},
		env: []string{"GORACE=atexit_sleep_ms=0", "HORUST_LOG=warn", "SSL_CERT_FILE=" + ca, "PATH=/usr/bin:/bin"}})
	eventually(t, 20*time.Second, "hn-svc.toml to fail 3 rounds", func() bool { return h.status("hn-svc.toml").HealthFailures >= 3 })
	want := "horust-probe is neither beside horust (in " + filepath.Dir(alone) + ") nor in PATH (/usr/bin:/bin): install it beside horust"
	eventually(t, 10*time.Second, "the log to say "+want, func() bool { return strings.Contains(h.stderr.String(), want) })
	if n := served.Load(); n != 0 {
		t.Errorf("the server got %d requests, want none", n)
	}
	// Said at the default level once per run, not at every round.
	if n := strings.Count(h.stderr.String(), "horust-probe, which checks https endpoints, cannot be started; the service's checks fail"); n != 1 {
		t.Errorf("the error was logged %d times, want once:\n%s", n, h.stderr.String())
	}
}
