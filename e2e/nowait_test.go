//go:build linux

package e2e

import (
	"bytes"
	"cmp"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The supervisor loop is the only reaper of horust's children: it calls
// wait4(-1) until nothing is left. Anything else that waits for a child
// (exec.Cmd.Wait/Run/Output/CombinedOutput, os.Process.Wait, a wait4 or
// waitid of its own) races with it: whichever reaps first steals the other's
// exit status (the known Go-as-init bug). These tests enforce the rule on
// the production code of cmd/ and internal/.

// nowaitBanned are the objects production code must not use, by package
// path and name ("Type.Method" for methods); the value says why.
var nowaitBanned = map[string]string{
	"os.StartProcess":            "starts a child as an *os.Process, which is meant to be waited for; start with syscall.ForkExec through internal/proc",
	"os.FindProcess":             "gives an *os.Process, which is meant to be waited for",
	"os.Process.Wait":            "waits for a child: the supervisor loop is the only reaper",
	"os/exec.Cmd.Wait":           "waits for a child: the supervisor loop is the only reaper",
	"os/exec.Cmd.Run":            "waits for a child: the supervisor loop is the only reaper",
	"os/exec.Cmd.Output":         "waits for a child: the supervisor loop is the only reaper",
	"os/exec.Cmd.CombinedOutput": "waits for a child: the supervisor loop is the only reaper",
}

// nowaitReaping are the calls that reap; they are allowed only in
// internal/proc (Reap, used by the supervisor loop, and the final sweep).
var nowaitReaping = map[string]bool{
	"syscall.Wait4":                    true,
	"syscall.SYS_WAIT4":                true,
	"syscall.SYS_WAITID":               true,
	"golang.org/x/sys/unix.Wait4":      true,
	"golang.org/x/sys/unix.Waitid":     true,
	"golang.org/x/sys/unix.SYS_WAIT4":  true,
	"golang.org/x/sys/unix.SYS_WAITID": true,
}

// nowaitReaper is the one package allowed to reap.
const nowaitReaper = "internal/proc"

// nowaitCheck checks every non-test .go file under root/cmd and
// root/internal and returns the offences as "file:line:col: what" with file
// relative to root. Files that the current platform builds are type-checked
// (imports come from exports, export data by import path); files for other
// platforms are checked by their imports and package-qualified names only.
func nowaitCheck(root string, exports map[string]string) ([]string, error) {
	var dirs []string
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); path != filepath.Join(root, top) && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return filepath.SkipDir
				}
				dirs = append(dirs, path)
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(f)
	})
	type offence struct {
		pos  token.Position
		what string
	}
	var found []offence
	report := func(pos token.Pos, format string, args ...any) {
		p := fset.Position(pos)
		if rel, err := filepath.Rel(root, p.Filename); err == nil {
			p.Filename = filepath.ToSlash(rel)
		}
		found = append(found, offence{p, fmt.Sprintf(format, args...)})
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		rel = filepath.ToSlash(rel)
		reaper := rel == nowaitReaper || strings.HasPrefix(rel, nowaitReaper+"/")
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var built []*ast.File
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			for _, is := range f.Imports {
				if p, _ := strconv.Unquote(is.Path.Value); p == "os/exec" {
					report(is.Pos(), `imports "os/exec": exec.Cmd waits for its child; the supervisor loop is the only reaper`)
				}
			}
			if ok, err := build.Default.MatchFile(dir, name); err != nil {
				return nil, err
			} else if ok {
				built = append(built, f)
			} else {
				nowaitCheckSyntax(f, reaper, report)
			}
		}
		if len(built) == 0 {
			continue
		}
		info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
		var typeErrs []error
		conf := types.Config{Importer: imp, Error: func(err error) { typeErrs = append(typeErrs, err) }}
		_, _ = conf.Check(rel, fset, built, info)
		if len(typeErrs) > 0 {
			return nil, fmt.Errorf("type-checking %s: %w", rel, typeErrs[0])
		}
		for id, obj := range info.Uses {
			key := nowaitKey(obj)
			if why, ok := nowaitBanned[key]; ok {
				report(id.Pos(), "uses %s: %s", key, why)
			}
			if nowaitReaping[key] && !reaper {
				report(id.Pos(), "uses %s: only %s reaps (the supervisor loop's Reap and the final sweep)", key, nowaitReaper)
			}
		}
	}
	slices.SortFunc(found, func(a, b offence) int {
		return cmp.Or(strings.Compare(a.pos.Filename, b.pos.Filename), cmp.Compare(a.pos.Line, b.pos.Line), cmp.Compare(a.pos.Column, b.pos.Column))
	})
	var offences []string
	for _, o := range found {
		offences = append(offences, fmt.Sprintf("%s: %s", o.pos, o.what))
	}
	return offences, nil
}

// nowaitKey names a package-level object "path.Name" and a method
// "path.Type.Name"; "" for anything else.
func nowaitKey(obj types.Object) string {
	if obj.Pkg() == nil {
		return ""
	}
	fn, ok := obj.(*types.Func)
	if !ok || fn.Signature().Recv() == nil {
		if obj.Pkg().Scope().Lookup(obj.Name()) != obj {
			return ""
		}
		return obj.Pkg().Path() + "." + obj.Name()
	}
	t := fn.Signature().Recv().Type()
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	named, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return ""
	}
	return obj.Pkg().Path() + "." + named.Obj().Name() + "." + obj.Name()
}

// nowaitCheckSyntax checks a file the current platform does not build by
// its package-qualified names (pkg.Name with pkg one of its imports).
func nowaitCheckSyntax(f *ast.File, reaper bool, report func(token.Pos, string, ...any)) {
	names := map[string]string{} // local name → import path
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		name := p[strings.LastIndexByte(p, '/')+1:]
		if is.Name != nil {
			name = is.Name.Name
		}
		if name == "." && (p == "os" || p == "syscall" || p == "golang.org/x/sys/unix") {
			report(is.Pos(), "dot-imports %q: its names cannot be checked in a file this platform does not build", p)
		}
		names[name] = p
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		p, ok := names[x.Name]
		if !ok {
			return true
		}
		key := p + "." + sel.Sel.Name
		if why, ok := nowaitBanned[key]; ok {
			report(sel.Sel.Pos(), "uses %s: %s", key, why)
		}
		if nowaitReaping[key] && !reaper {
			report(sel.Sel.Pos(), "uses %s: only %s reaps (the supervisor loop's Reap and the final sweep)", key, nowaitReaper)
		}
		return true
	})
}

// nowaitExports lists the export data of every dependency of the module's
// commands and internal packages, and of os/exec (which the rule tests
// import), by import path (go list -export).
func nowaitExports(t *testing.T, root string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-export", "-deps", "-f", "{{if .Export}}{{.ImportPath}}={{.Export}}{{end}}", "./cmd/...", "./internal/...", "os/exec")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.String())
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "="); ok {
			m[path] = file
		}
	}
	return m
}

func TestNoWaitOnChildren(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	offences, err := nowaitCheck(root, nowaitExports(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(offences) > 0 {
		t.Fatalf("production code waits for children outside the supervisor loop's reaper:\n%s", strings.Join(offences, "\n"))
	}
}

func TestNoWaitRuleCatches(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	exports := nowaitExports(t, root)
	cases := []struct {
		name  string
		file  string // relative to the tree
		src   string
		wants []string // substrings of the offences, in order
	}{
		{
			name: "exec.Cmd.Run in a command",
			file: "cmd/bad/main.go",
			src: `package main

import "os/exec"

func main() {
	_ = exec.Command("true").Run()
}
`,
			wants: []string{
				`cmd/bad/main.go:3:8: imports "os/exec"`,
				`cmd/bad/main.go:6:27: uses os/exec.Cmd.Run`,
			},
		},
		{
			name: "os.StartProcess and Process.Wait",
			file: "internal/bad/start.go",
			src: `package bad

import "os"

func Start() error {
	p, err := os.StartProcess("/bin/true", nil, &os.ProcAttr{})
	if err != nil {
		return err
	}
	_, err = p.Wait()
	return err
}
`,
			wants: []string{
				"internal/bad/start.go:6:15: uses os.StartProcess",
				"internal/bad/start.go:10:13: uses os.Process.Wait",
			},
		},
		{
			name: "a method value of Process.Wait from FindProcess",
			file: "internal/bad/find.go",
			src: `package bad

import "os"

func Waiter(pid int) func() (*os.ProcessState, error) {
	p, _ := os.FindProcess(pid)
	return p.Wait
}
`,
			wants: []string{
				"internal/bad/find.go:6:13: uses os.FindProcess",
				"internal/bad/find.go:7:11: uses os.Process.Wait",
			},
		},
		{
			name: "unix.Wait4 outside internal/proc, renamed import",
			file: "internal/supervisor/reap.go",
			src: `package supervisor

import sys "golang.org/x/sys/unix"

func reap() {
	var ws sys.WaitStatus
	_, _ = sys.Wait4(-1, &ws, sys.WNOHANG, nil)
}
`,
			wants: []string{"internal/supervisor/reap.go:7:13: uses golang.org/x/sys/unix.Wait4: only internal/proc reaps"},
		},
		{
			name: "waitid and a raw wait4 syscall",
			file: "internal/cgroup/wait.go",
			src: `package cgroup

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func wait(fd int) {
	_ = unix.Waitid(unix.P_PIDFD, fd, nil, unix.WEXITED, nil)
	_, _, _ = syscall.Syscall6(syscall.SYS_WAIT4, 0, 0, 0, 0, 0, 0)
}
`,
			wants: []string{
				"internal/cgroup/wait.go:10:11: uses golang.org/x/sys/unix.Waitid",
				"internal/cgroup/wait.go:11:37: uses syscall.SYS_WAIT4",
			},
		},
		{
			name: "a dot import",
			file: "internal/bad/dot.go",
			src: `package bad

import . "syscall"

func reap() {
	var ws WaitStatus
	_, _ = Wait4(-1, &ws, WNOHANG, nil)
}
`,
			wants: []string{"internal/bad/dot.go:7:9: uses syscall.Wait4"},
		},
		{
			name: "a file for another platform",
			file: "internal/bad/wait_windows.go",
			src: `package bad

import (
	"os"
	"os/exec"
)

func run() {
	_ = exec.Command("x").Run()
	p, _ := os.FindProcess(1)
	_ = p
}
`,
			wants: []string{
				`internal/bad/wait_windows.go:5:2: imports "os/exec"`,
				"internal/bad/wait_windows.go:10:13: uses os.FindProcess",
			},
		},
		{
			name: "wait4 in internal/proc is the reaper",
			file: "internal/proc/reap.go",
			src: `package proc

import "golang.org/x/sys/unix"

func Reap() int {
	var ws unix.WaitStatus
	pid, _ := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
	return pid
}
`,
		},
		{
			name: "a Wait method of our own and polling a pidfd",
			file: "internal/control/client/client.go",
			src: `package client

import (
	"os"

	"golang.org/x/sys/unix"
)

type Client struct{}

func (Client) Wait() error { return nil }

func use(fd int) {
	_ = Client{}.Wait()
	_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
	_ = os.Getpid()
}
`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree := t.TempDir()
			path := filepath.Join(tree, filepath.FromSlash(tc.file))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := nowaitCheck(tree, exports)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.wants) {
				t.Fatalf("got %d offences, want %d:\n%s", len(got), len(tc.wants), strings.Join(got, "\n"))
			}
			for i, w := range tc.wants {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("offence %d is\n\t%s\nwant it to start with\n\t%s", i, got[i], w)
				}
			}
		})
	}
}
