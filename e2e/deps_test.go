//go:build linux

package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// goListDeps is the dependency list of pkg, the package itself included.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list printed %d packages, expected %s's whole dependency list:\n%s", len(deps), pkg, out)
	}
	return deps
}

// TestHorustDoesNotLinkNetHTTP keeps net/http (and its HTTP/2, MIME and
// multipart code) out of the horust binary: linked, it costs every horust
// about 1.2 MB of memory, used or not (docs/design.md). horustctl and the
// tests may use it.
func TestHorustDoesNotLinkNetHTTP(t *testing.T) {
	for _, p := range goListDeps(t, "github.com/horust-go/horust/cmd/horust") {
		if p == "net/http" || strings.HasPrefix(p, "net/http/") || strings.HasPrefix(p, "github.com/prometheus/") {
			t.Errorf("horust links %s; use internal/httpwire (docs/design.md)", p)
		}
	}
}

// TestHorustDoesNotLinkRegexp keeps package regexp out of horust: its
// patterns are compiled at start (every one-shot run pays it) and it
// brings the unicode tables into memory (docs/design.md, one-shot
// start-up).
func TestHorustDoesNotLinkRegexp(t *testing.T) {
	for _, p := range goListDeps(t, "github.com/horust-go/horust/cmd/horust") {
		if p == "regexp" {
			t.Error("horust links regexp; match by hand (see cmd/horust's gnuDashes)")
		}
	}
}

// TestHorustDoesNotLinkOSUser keeps os/user out of horust: every start
// looks up horust's own user, and internal/passwd answers from /etc/passwd
// in a fraction of os/user's time at a cold start (docs/design.md,
// "One-shot start-up").
func TestHorustDoesNotLinkOSUser(t *testing.T) {
	for _, p := range goListDeps(t, "github.com/horust-go/horust/cmd/horust") {
		if p == "os/user" {
			t.Error("horust links os/user; use internal/passwd (docs/design.md)")
		}
	}
}

// TestHorustDoesNotLinkCrypto keeps every crypto package (crypto/tls and
// crypto/x509 above all, and the FIPS module they bring) out of horust:
// every start, one-shot mode included, would initialize them (docs/design.md,
// "https checks run in horust-probe"). horust-probe checks https endpoints;
// random names and hashes come from math/rand/v2 and hash/fnv.
func TestHorustDoesNotLinkCrypto(t *testing.T) {
	for _, p := range goListDeps(t, "github.com/horust-go/horust/cmd/horust") {
		if p == "crypto" || strings.HasPrefix(p, "crypto/") {
			t.Errorf("horust links %s; https checks belong in cmd/horust-probe", p)
		}
	}
	if !slices.Contains(goListDeps(t, "github.com/horust-go/horust/cmd/horust-probe"), "crypto/tls") {
		t.Error("horust-probe does not link crypto/tls: is the check looking at the right binaries?")
	}
}

// TestHorustctlLinksOnlyTheClient keeps horustctl a client: the API
// server, the metrics exposition and the supervisor (and whatever they
// pull in) stay out of it (docs/design.md, "Layout").
func TestHorustctlLinksOnlyTheClient(t *testing.T) {
	const mod = "github.com/horust-go/horust/"
	deps := goListDeps(t, mod+"cmd/horustctl")
	for _, p := range deps {
		switch strings.TrimPrefix(p, mod) {
		case "internal/control/server", "internal/control/metrics", "internal/supervisor":
			t.Errorf("horustctl links %s; it may link only the client side of the control API (internal/control/client)", p)
		}
	}
	if !slices.Contains(deps, mod+"internal/control/client") {
		t.Errorf("horustctl does not link internal/control/client: is the check looking at the right binary?\n%s", strings.Join(deps, "\n"))
	}
}
