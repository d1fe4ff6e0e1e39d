package metrics

import (
	"bytes"
	"strings"
	"testing"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/status"
)

// A label value is escaped as the text format wants: backslash, double
// quote and newline; everything else as it is.
func TestLabelValuesAreEscaped(t *testing.T) {
	var b bytes.Buffer
	Write(&b, "v1", []status.ServiceStatus{{Name: "a\\b\"c\nd é.toml"}}, control.ConfigStatus{})
	want := `horust_service_restarts_total{service="a\\b\"c\nd é.toml"} 0` + "\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("want the line %q in:\n%s", want, b.String())
	}
}
