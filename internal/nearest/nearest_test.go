package nearest

import "testing"

func TestName(t *testing.T) {
	names := []string{"backend.toml", "web.toml", "db.toml", "worker_1.toml"}
	tests := []struct{ in, want string }{
		{"backend", "backend.toml"},     // without .toml
		{"Web.toml", "web.toml"},        // letter case
		{"worker-1", "worker_1.toml"},   // '-' for '_'
		{"bakend.toml", "backend.toml"}, // one edit
		{"dc.toml", "db.toml"},          // one edit
		{"dbb.toml", "db.toml"},         // one more letter
		{"frontend.toml", ""},           // too far
		{"x", ""},                       // fewer edits than its length only
	}
	for _, tt := range tests {
		if got := Name(tt.in, names); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
