// Command horust-probe runs one http health check of a URL, https included,
// and exits: 0 when the answer is a 2xx (after redirects), 1 otherwise with
// the reason on one line of standard error. horust runs it for every check
// of an https:// http-endpoint, as a child process it kills at the check's
// timeout, so that horust itself does not link crypto/tls and crypto/x509
// (docs/design.md, "https checks run in horust-probe").
//
// Certificates are verified against the system's roots; SSL_CERT_FILE and
// SSL_CERT_DIR name others, as for any Go program.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/horust-go/horust/internal/buildinfo"
	"github.com/horust-go/horust/internal/health"
)

// Exit codes. horust counts exitUnhealthy as a failed check and
// exitCouldNotRun as a check that says nothing about the service.
const (
	exitHealthy     = 0
	exitUnhealthy   = 1
	exitUsage       = 2
	exitCouldNotRun = 3 // out of file descriptors or memory (health.CouldNotRun)
)

const usage = `Usage: horust-probe [--timeout DURATION] URL

Sends one GET to URL (http:// or https://), following up to 10 redirects,
and exits 0 when the answer is a 2xx. Otherwise it exits 1 and says why on
one line of standard error ("status 503", "timed out after 1s", an x509
error); 3 when it could not run the check (out of file descriptors or
memory); 2 on a usage error. https certificates are verified against the
system's roots (SSL_CERT_FILE and SSL_CERT_DIR add others).

horust runs it for the http-endpoint checks of https:// URLs; it looks for
it beside its own executable, then in PATH.

Options:
  --timeout DURATION  give up after DURATION (default 1s), for example 500ms
  --version           print the version and exit
  --help              print this help and exit
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run is horust-probe with args, trusting roots (nil: the system's roots).
func run(args []string, stdout, stderr io.Writer, roots *x509.CertPool) int {
	fs := flag.NewFlagSet("horust-probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", time.Second, "")
	version := fs.Bool("version", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitHealthy
		}
		fmt.Fprintf(stderr, "horust-probe: %v (see --help)\n", err)
		return exitUsage
	}
	switch {
	case *version:
		fmt.Fprintln(stdout, buildinfo.String("horust-probe"))
		return exitHealthy
	case fs.NArg() != 1:
		fmt.Fprintf(stderr, "horust-probe: want one URL, got %d arguments (see --help)\n", fs.NArg())
		return exitUsage
	case *timeout <= 0:
		fmt.Fprintf(stderr, "horust-probe: --timeout %v: must be more than 0\n", *timeout)
		return exitUsage
	}
	err := health.NewTLSProber(handshake(roots)).GetHTTP(context.Background(), fs.Arg(0), *timeout)
	if err == nil {
		return exitHealthy
	}
	// One line: horust reports it as the check's failure.
	fmt.Fprintln(stderr, strings.Join(strings.Fields(err.Error()), " "))
	if health.CouldNotRun(err) {
		return exitCouldNotRun
	}
	return exitUnhealthy
}

// handshake is the TLS client of https checks: TLS 1.2 or later, HTTP/1.1,
// the server's certificate verified against roots (nil: the system's).
func handshake(roots *x509.CertPool) health.Handshake {
	return func(ctx context.Context, conn net.Conn, serverName string) (net.Conn, error) {
		tc := tls.Client(conn, &tls.Config{
			ServerName: serverName,
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
}
