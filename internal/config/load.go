package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Options are the inputs of Load besides the paths.
type Options struct {
	LookupEnv func(string) (string, bool) // templating source; nil = os.LookupEnv
	Cwd       string                      // default working-directory; "" = os.Getwd()
}

// The defaults of the crash-loop guard, as Docker's restart policy.
const (
	DefaultMinUptime  = 10 * time.Second
	DefaultMaxBackoff = 10 * time.Second
)

// Default returns a Service with every default of the original applied, and
// an empty name and command.
func Default(cwd string) *Service {
	return &Service{
		WorkingDirectory: cwd,
		Stdout:           "STDOUT",
		Stderr:           "STDERR",
		Restart:          Restart{Strategy: RestartNever, MinUptime: DefaultMinUptime, MaxBackoff: DefaultMaxBackoff},
		Healthiness:      Healthiness{MaxFailed: 3, Interval: time.Second, Timeout: time.Second},
		Failure:          Failure{SuccessfulExitCodes: []int{0}, Strategy: FailureIgnore},
		Termination:      Termination{Signal: syscall.SIGTERM, Wait: 5 * time.Second},
	}
}

// loaded is one service file after decoding, with what the checks across
// services need.
type loaded struct {
	svc *Service
	pos *positions
}

// Load loads the services from every path (a directory: its *.toml entries,
// not recursive, in name order; or one file), templates each file with the
// environment, decodes it, applies the defaults, validates everything, and
// returns the services in start order (see startOrder). On any problem it
// returns nil and a Problems error listing every problem found in every
// file.
func Load(paths []string, opts Options) ([]*Service, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cwd := opts.Cwd
	if cwd == "" {
		var err error
		if cwd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("load services: working directory: %w", err)
		}
	}
	var probs Problems
	if len(paths) == 0 {
		probs = append(probs, Problem{Msg: "no services path given"})
	}
	var all []loaded
	var terrs []Problem
	for _, path := range paths {
		files, p := discover(path)
		probs = append(probs, p...)
		for _, file := range files {
			data, err := readConfig(file)
			if err != nil {
				probs = append(probs, Problem{File: file, Msg: "cannot read: " + pathErr(err)})
				continue
			}
			svc, pos, p, t := loadText(file, string(data), cwd, lookup)
			probs = append(probs, p...)
			terrs = append(terrs, t...)
			all = append(all, loaded{svc, pos})
		}
	}
	probs = append(probs, check(all)...)
	svcs := make([]*Service, len(all))
	for i, l := range all {
		svcs[i] = l.svc
	}
	order, p := startOrder(svcs, posLookup(all))
	probs = append(probs, p...)
	probs = dropEchoes(probs, terrs)
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			a, b := probs[i], probs[j]
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, probs
	}
	return order, nil
}

// loadText templates and decodes the text of one service file. Variables
// that are not defined are problems (terrs); the file is still decoded, with
// the references left as written.
func loadText(file, text, cwd string, lookup func(string) (string, bool)) (*Service, *positions, []Problem, []Problem) {
	expanded, lines, errs := expand(text, lookup)
	var terrs []Problem
	for _, e := range errs {
		terrs = append(terrs, Problem{File: file, Line: e.Line, Col: e.Col, Msg: e.Error()})
	}
	svc, pos, probs := decodeService(file, expanded, cwd)
	// Report lines of the file as written, not of the expanded text.
	orig := func(l int) int {
		if l > 0 && l <= len(lines) {
			return lines[l-1]
		}
		return l
	}
	for i := range probs {
		probs[i].Line = orig(probs[i].Line)
	}
	for k, l := range pos.keys {
		pos.keys[k] = orig(l)
	}
	for _, ls := range pos.items {
		for i := range ls {
			ls[i] = orig(ls[i])
		}
	}
	return svc, pos, probs, terrs
}

// dropEchoes removes the problems on lines that hold an undefined variable:
// they only repeat that cause (a duration "$WAIT" is not a duration).
func dropEchoes(probs, terrs []Problem) Problems {
	bad := map[Problem]bool{}
	for _, t := range terrs {
		bad[Problem{File: t.File, Line: t.Line}] = true
	}
	out := make(Problems, 0, len(probs)+len(terrs))
	for _, p := range probs {
		if p.Line == 0 || !bad[Problem{File: p.File, Line: p.Line}] {
			out = append(out, p)
		}
	}
	return append(out, terrs...)
}

// discover lists the service files of one --services-path value: the path
// itself, or the *.toml entries of a directory. An entry that is not a
// regular file is listed too: reading it reports what it is.
func discover(path string) ([]string, []Problem) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, []Problem{{File: path, Msg: "cannot read services path: " + pathErr(err)}}
	}
	if fi.Mode().IsRegular() {
		return []string{path}, nil
	}
	if !fi.IsDir() {
		return nil, []Problem{{File: path, Msg: "services path is " + fileKind(fi.Mode()) + ": want a directory or a regular file"}}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, []Problem{{File: path, Msg: "cannot read services directory: " + pathErr(err)}}
	}
	var files []string
	for _, e := range entries { // sorted by name
		if strings.HasSuffix(e.Name(), ".toml") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, []Problem{{File: path, Msg: "no services found in " + path + " (service files must end in .toml)"}}
	}
	return files, nil
}

// MaxFileSize is the size of the largest configuration file (a service file
// or horust.toml) horust reads.
const MaxFileSize = 1 << 20

// readConfig reads one configuration file. Only a regular file, or a
// symlink to one (Kubernetes ConfigMap volumes are made of them), of at most
// MaxFileSize bytes is read: anything else (a directory, a FIFO, a device
// such as /dev/zero, a socket) is refused before it is opened, so that
// nothing blocks and memory stays bounded.
func readConfig(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkInput(path, fi); err != nil {
		return nil, err
	}
	// O_NONBLOCK: a FIFO put in its place since does not block the open.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkInput(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// checkInput refuses what is not a regular file of at most MaxFileSize
// bytes; fi describes path after symlinks.
func checkInput(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		what := fileKind(fi.Mode())
		if target, err := os.Readlink(path); err == nil {
			what = "a symlink to " + target + ", which is " + what
		}
		return fmt.Errorf("it is %s: only regular files (or symlinks to them) are read", what)
	}
	if fi.Size() > MaxFileSize {
		return fmt.Errorf("it has %d bytes: %w", fi.Size(), errTooLarge)
	}
	return nil
}

// errTooLarge refuses a file larger than MaxFileSize.
var errTooLarge = errors.New("configuration files are read up to 1 MiB")

// fileKind names what a file that is not a regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// pathErr returns the cause of a file system error without the path, which
// the problem names already.
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// check runs the checks across services: unique names and references to
// existing services.
func check(all []loaded) []Problem {
	var probs []Problem
	first := map[string]loaded{}
	var names []string
	for _, l := range all {
		name := l.svc.Name
		prev, dup := first[name]
		if !dup {
			first[name] = l
			names = append(names, name)
			continue
		}
		pr := Problem{File: l.svc.File, Line: l.pos.line("name", -1)}
		if pr.Line > 0 {
			pr.Key = "name"
			pr.Msg = fmt.Sprintf("service name %q is also used by %s; names must be unique", name, prev.svc.File)
		} else {
			pr.Msg = fmt.Sprintf("service name %q (the file name) is also used by %s; names must be unique: set `name` in one of them", name, prev.svc.File)
		}
		probs = append(probs, pr)
	}
	for _, l := range all {
		s := l.svc
		for _, ref := range []struct {
			key  string
			list []string
			self string
		}{
			{"start-after", s.StartAfter, "a service cannot start after itself"},
			{"shutdown-after", s.ShutdownAfter, "a service cannot shut down after itself"},
			{"termination.die-if-failed", s.Termination.DieIfFailed, "a service cannot die because it failed itself; use [failure] strategy"},
		} {
			for i, name := range ref.list {
				pr := Problem{File: s.File, Line: l.pos.line(ref.key, i), Key: ref.key}
				if name == s.Name {
					pr.Msg = fmt.Sprintf("%q: %s", name, ref.self)
					probs = append(probs, pr)
					continue
				}
				if _, ok := first[name]; ok {
					continue
				}
				pr.Msg = fmt.Sprintf("no service named %q", name)
				if sug := suggest(name, names); sug != "" {
					pr.Msg += fmt.Sprintf(", did you mean %q?", sug)
				} else {
					pr.Msg += " (a service's name is its file name with .toml, unless it sets `name`)"
				}
				probs = append(probs, pr)
			}
		}
	}
	probs = append(probs, cycles(all)...)
	return probs
}

// posLookup returns the line of a key of a loaded service.
func posLookup(all []loaded) func(*Service, string) int {
	m := make(map[*Service]*positions, len(all))
	for _, l := range all {
		m[l.svc] = l.pos
	}
	return func(s *Service, key string) int { return m[s].line(key, -1) }
}

// cycles reports the cycles of shutdown-after (those of start-after come
// from startOrder).
func cycles(all []loaded) []Problem {
	svcs := make([]*Service, len(all))
	for i, l := range all {
		svcs[i] = l.svc
	}
	edges := func(s *Service) []string { return s.ShutdownAfter }
	_, rest := topo(svcs, edges)
	return cycleProblems(svcs, rest, edges, "shutdown-after", posLookup(all),
		"these services would each wait for the other to stop first")
}

// startOrder sorts services topologically by start-after, so that every
// service comes after the services it starts after; ties are broken by
// name. Names that match no service and references to itself are ignored
// here (Load reports them). A cycle is reported as a Problem that prints
// it ("a.toml -> b.toml -> a.toml"), at the line lineOf gives.
func startOrder(svcs []*Service, lineOf func(*Service, string) int) ([]*Service, Problems) {
	edges := func(s *Service) []string { return s.StartAfter }
	order, rest := topo(svcs, edges)
	if len(rest) == 0 {
		return order, nil
	}
	return nil, cycleProblems(svcs, rest, edges, "start-after", lineOf,
		"these services would each wait for the other to start first")
}

// topo orders svcs (Kahn's algorithm, the smallest name first among the
// ready ones) along the dependencies edges(s) gives by name. It returns the
// order and the indexes of the services left over, which are in or behind a
// cycle.
func topo(svcs []*Service, edges func(*Service) []string) ([]*Service, []int) {
	byName := map[string][]int{}
	for i, s := range svcs {
		byName[s.Name] = append(byName[s.Name], i)
	}
	indeg := make([]int, len(svcs))
	dependents := make([][]int, len(svcs))
	for i, s := range svcs {
		seen := map[int]bool{}
		for _, name := range edges(s) {
			for _, j := range byName[name] {
				if j != i && !seen[j] {
					seen[j] = true
					indeg[i]++
					dependents[j] = append(dependents[j], i)
				}
			}
		}
	}
	// ready is kept sorted with the next service to take last: the
	// smallest name first, then the lowest index. Inserting by binary
	// search keeps the whole order O(n log n) comparisons.
	after := func(a, b int) int {
		if c := strings.Compare(svcs[b].Name, svcs[a].Name); c != 0 {
			return c
		}
		return b - a
	}
	var ready []int
	push := func(i int) {
		at, _ := slices.BinarySearchFunc(ready, i, after)
		ready = slices.Insert(ready, at, i)
	}
	for i := range svcs {
		if indeg[i] == 0 {
			push(i)
		}
	}
	order := make([]*Service, 0, len(svcs))
	done := make([]bool, len(svcs))
	for len(ready) > 0 {
		i := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		done[i] = true
		order = append(order, svcs[i])
		for _, j := range dependents[i] {
			if indeg[j]--; indeg[j] == 0 {
				push(j)
			}
		}
	}
	var rest []int
	for i := range svcs {
		if !done[i] {
			rest = append(rest, i)
		}
	}
	return order, rest
}

// cycleProblems finds the cycles among the left-over services rest and
// reports each once, starting from its smallest name.
func cycleProblems(svcs []*Service, rest []int, edges func(*Service) []string, key string,
	lineOf func(*Service, string) int, why string) []Problem {
	byName := map[string][]int{}
	for _, i := range rest {
		byName[svcs[i].Name] = append(byName[svcs[i].Name], i)
	}
	sort.Slice(rest, func(a, b int) bool { return svcs[rest[a]].Name < svcs[rest[b]].Name })
	const (
		white = iota
		grey
		black
	)
	color := map[int]int{}
	var stack []int
	var probs []Problem
	reported := map[string]bool{}
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for _, name := range edges(svcs[i]) {
			for _, j := range byName[name] {
				if j == i {
					continue
				}
				switch color[j] {
				case white:
					visit(j)
				case grey:
					// The stack from j to here is a cycle.
					k := len(stack) - 1
					for stack[k] != j {
						k--
					}
					cycle := append([]int(nil), stack[k:]...)
					// Start from the smallest name, for a stable report.
					m := 0
					for c := range cycle {
						if svcs[cycle[c]].Name < svcs[cycle[m]].Name {
							m = c
						}
					}
					cycle = append(cycle[m:], cycle[:m]...)
					names := make([]string, 0, len(cycle)+1)
					for _, c := range cycle {
						names = append(names, svcs[c].Name)
					}
					names = append(names, names[0])
					text := strings.Join(names, " -> ")
					if reported[text] {
						continue
					}
					reported[text] = true
					s := svcs[cycle[0]]
					probs = append(probs, Problem{File: s.File, Line: lineOf(s, key), Key: key,
						Msg: fmt.Sprintf("dependency cycle %s: %s", text, why)})
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for _, i := range rest {
		if color[i] == white {
			visit(i)
		}
	}
	return probs
}
