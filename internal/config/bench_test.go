package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchService is a typical service file: a templated command and paths,
// a dependency, restart, health and termination sections.
const benchService = `command = "/usr/bin/worker --id %[1]d --data ${DATA_DIR:-/var/lib/app}/w%[1]d"
working-directory = "/tmp"
%[2]s
stdout = "${LOG_DIR}/worker-%[1]d.log"
stdout-rotate-size = "100 MB"
stdout-rotate-keep = 5
stderr = "STDOUT"

[restart]
strategy = "on-failure"
backoff = "1s"
attempts = 3

[healthiness]
file-path = "/tmp/ready-%[1]d"

[environment]
keep-env = false
re-export = ["PATH", "LANG"]
additional = { MODE = "batch", ID = "%[1]d" }

[termination]
signal = "TERM"
wait = "10s"
`

func benchEnv(name string) (string, bool) {
	switch name {
	case "LOG_DIR":
		return "/var/log/app", true
	case "HOME":
		return "/root", true
	}
	return "", false
}

// BenchmarkLoad1000 loads a directory of 1,000 service files, each but the
// first start-after the one before it: read, template, decode, validate,
// order.
func BenchmarkLoad1000(b *testing.B) {
	dir := b.TempDir()
	for i := range 1000 {
		deps := ""
		if i > 0 {
			deps = fmt.Sprintf("start-after = [\"w%04d.toml\"]", i-1)
		}
		text := fmt.Sprintf(benchService, i, deps)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("w%04d.toml", i)), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	opts := Options{LookupEnv: benchEnv, Cwd: "/"}
	svcs, err := Load([]string{dir}, opts)
	if err != nil {
		b.Fatal(err)
	}
	if len(svcs) != 1000 || svcs[0].Name != "w0000.toml" || svcs[999].Name != "w0999.toml" {
		b.Fatalf("loaded %d services, first %s", len(svcs), svcs[0].Name)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load([]string{dir}, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTemplate expands the variables of one typical service file.
func BenchmarkTemplate(b *testing.B) {
	text := fmt.Sprintf(benchService, 7, `start-after = ["db.toml"]`)
	out, _, errs := expand(text, benchEnv)
	if len(errs) != 0 || len(out) == 0 {
		b.Fatalf("expand: %v", errs)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		expand(text, benchEnv)
	}
}
