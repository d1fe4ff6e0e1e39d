package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/horust-go/horust/internal/shell"
)

// examples is the directory of the example services, which double as
// fixtures and fuzz seeds.
var examples = filepath.Join("..", "..", "examples", "services")

func TestExamplesLoad(t *testing.T) {
	for _, vars := range []map[string]string{nil, {"TMPDIR": "/var/tmp", "USER": "alice"}} {
		svcs, err := Load([]string{examples}, Options{LookupEnv: env(vars)})
		if err != nil {
			t.Fatalf("examples with environment %v: %v", vars, err)
		}
		want := []string{"database.toml", "migrate.toml", "backend.toml", "worker.toml"}
		if got := names(svcs); !reflect.DeepEqual(got, want) {
			t.Fatalf("start order %v, want %v", got, want)
		}
		dir := "/tmp/horust-example-me"
		if vars != nil {
			dir = vars["TMPDIR"] + "/horust-example-" + vars["USER"]
		}
		if got := svcs[0].Healthiness.FilePath; got != dir+"/database.ready" {
			t.Fatalf("database file-path %q: templating did not apply", got)
		}
	}
}

// TestExamplesShellScripts checks that every `sh -c` script of the examples
// (after templating) is valid shell, with the system's own sh.
func TestExamplesShellScripts(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	svcs, err := Load([]string{examples}, Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		for _, cmd := range []string{s.Command, s.Healthiness.Command} {
			words, err := shell.Split(cmd)
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			if len(words) == 3 && filepath.Base(words[0]) == "sh" && words[1] == "-c" {
				if out, err := exec.Command(sh, "-n", "-c", words[2]).CombinedOutput(); err != nil {
					t.Errorf("%s: sh -n: %v\n%s\n%s", s.Name, err, out, words[2])
				}
			}
		}
	}
}

// exampleFiles returns the text of every example service file.
func exampleFiles(tb testing.TB) map[string]string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(examples, "*.toml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no examples in %s: %v", examples, err)
	}
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = string(data)
	}
	return out
}
