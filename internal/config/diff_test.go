package config

import (
	"reflect"
	"slices"
	"testing"
)

// loadOne loads a directory holding one service file "s.toml" with the
// environment vars.
func loadOne(t *testing.T, text string, vars map[string]string) *Service {
	t.Helper()
	svcs, probs := loadDir(t, writeDir(t, map[string]string{"s.toml": text}), vars)
	if probs != nil {
		t.Fatalf("load: %v", probs)
	}
	return svcs[0]
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string
		vars1, vars2  map[string]string
		want          []string
	}{
		{"identical files", "command = \"a\"\n", "command = \"a\"\n", nil, nil, nil},
		{"comments and a default spelled out are no change",
			"command = \"a\"\n", "# a comment\ncommand = \"a\"\n[termination]\nwait = \"5000ms\"\n", nil, nil, nil},
		{"command", "command = \"a\"\n", "command = \"b\"\n", nil, nil, []string{"command"}},
		{"two keys in two tables",
			"command = \"a\"\n", "command = \"a\"\n[restart]\nstrategy = \"always\"\n[healthiness]\ninterval = \"2s\"\n", nil, nil,
			[]string{"restart.strategy", "healthiness.interval"}},
		{"environment added",
			"command = \"a\"\n", "command = \"a\"\n[environment]\nadditional = { X = \"1\" }\n", nil, nil, []string{"environment.additional"}},
		{"a template whose variable changed",
			"command = \"a ${PORT}\"\n", "command = \"a ${PORT}\"\n", map[string]string{"PORT": "80"}, map[string]string{"PORT": "81"}, []string{"command"}},
		{"a template in the environment",
			"command = \"a\"\n[environment]\nadditional = { X = \"$V\" }\n", "command = \"a\"\n[environment]\nadditional = { X = \"$V\" }\n",
			map[string]string{"V": "1"}, map[string]string{"V": "2"}, []string{"environment.additional"}},
		{"a template whose variable did not change",
			"command = \"a ${PORT}\"\n", "command = \"a ${PORT:-9}\"\n", map[string]string{"PORT": "80"}, map[string]string{"PORT": "80"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := loadOne(t, tc.before, tc.vars1)
			b := loadOne(t, tc.after, tc.vars2)
			if got := Diff(a, b); !slices.Equal(got, tc.want) {
				t.Fatalf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDiffDependencyEdges: the names a service depends on are part of its
// definition (one file cannot name another, so the services are built here).
func TestDiffDependencyEdges(t *testing.T) {
	a := Default("/")
	a.Name, a.Command = "s.toml", "a"
	b := *a
	b.StartAfter = []string{"db.toml"}
	if got := Diff(a, &b); !slices.Equal(got, []string{"start-after"}) {
		t.Fatalf("Diff = %q, want [start-after]", got)
	}
	b = *a
	b.ShutdownAfter, b.Termination.DieIfFailed = []string{"x"}, []string{"y"}
	if got := Diff(a, &b); !slices.Equal(got, []string{"shutdown-after", "termination.die-if-failed"}) {
		t.Fatalf("Diff = %q", got)
	}
}

// TestDiffSeesEveryField changes each field of a Service in turn: every
// field but the name and the file must make a difference, so that a key
// added to Service without a line in serviceKeys fails here.
func TestDiffSeesEveryField(t *testing.T) {
	base := Default("/")
	base.Name, base.Command = "s.toml", "a"
	var visit func(v reflect.Value, path string)
	count := 0
	visit = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, ft := v.Field(i), v.Type().Field(i)
			p := path + ft.Name
			if p == "Name" || p == "File" {
				continue
			}
			if f.Kind() == reflect.Struct && ft.Type != reflect.TypeFor[User]() {
				visit(f, p+".")
				continue
			}
			old := reflect.New(f.Type()).Elem()
			old.Set(f)
			switch f.Kind() {
			case reflect.String:
				f.SetString(f.String() + "x")
			case reflect.Bool:
				f.SetBool(!f.Bool())
			case reflect.Int, reflect.Int32, reflect.Int64:
				f.SetInt(f.Int() + 1)
			case reflect.Uint32, reflect.Uint64:
				f.SetUint(f.Uint() + 1)
			case reflect.Float64:
				f.SetFloat(f.Float() + 1)
			case reflect.Slice:
				f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
			case reflect.Map:
				m := reflect.MakeMap(f.Type())
				m.SetMapIndex(reflect.ValueOf("K"), reflect.ValueOf("V"))
				f.Set(m)
			case reflect.Struct: // User
				f.Field(0).SetBool(!f.Field(0).Bool())
			default:
				t.Fatalf("%s: kind %s not handled by the test", p, f.Kind())
			}
			count++
			changed := *base
			f.Set(old)
			if len(Diff(base, &changed)) == 0 {
				t.Errorf("a change of %s is not seen by Diff", p)
			}
		}
	}
	// visit changes a field of base in place, copies base and restores
	// the field.
	visit(reflect.ValueOf(base).Elem(), "")
	if count < 30 {
		t.Fatalf("only %d fields visited", count)
	}
}

func TestDiffGlobal(t *testing.T) {
	if got := DiffGlobal(Global{}, Global{}); got != nil {
		t.Fatalf("equal: %q", got)
	}
	if got := DiffGlobal(Global{}, Global{UnsuccessfulExitFinishedFailed: true}); !slices.Equal(got, []string{"unsuccessful-exit-finished-failed"}) {
		t.Fatalf("changed: %q", got)
	}
}
