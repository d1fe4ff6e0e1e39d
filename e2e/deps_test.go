//go:build linux

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHorustDoesNotLinkNetHTTP keeps net/http (and its HTTP/2, MIME and
// multipart code) out of the horust binary: linked, it costs every horust
// about 1.2 MB of memory, used or not (docs/design.md). horustctl and the
// tests may use it.
func TestHorustDoesNotLinkNetHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/horust-go/horust/cmd/horust").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list printed %d packages, expected horust's whole dependency list:\n%s", len(deps), out)
	}
	for _, p := range deps {
		if p == "net/http" || strings.HasPrefix(p, "net/http/") || strings.HasPrefix(p, "github.com/prometheus/") {
			t.Errorf("horust links %s; use internal/httpwire (docs/design.md)", p)
		}
	}
}
