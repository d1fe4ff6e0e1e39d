package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/horust-go/horust/internal/shell"
)

// positions remembers where the keys of one service file are written, for
// the problems found after decoding (references, duplicates, cycles).
type positions struct {
	keys  map[string]int   // dotted key -> line
	items map[string][]int // dotted key of an array -> line of each item
}

// line returns the line of item i of key, or of the key itself.
func (p *positions) line(key string, i int) int {
	if p == nil {
		return 0
	}
	if lines := p.items[key]; i >= 0 && i < len(lines) {
		return lines[i]
	}
	return p.keys[key]
}

// decoder turns the tree of one file into a Service, collecting every
// problem instead of stopping at the first.
type decoder struct {
	file  string
	probs []Problem
	pos   *positions
	hint  string // added to an unknown key's message when nothing is close
}

func (d *decoder) problem(v *value, key, format string, args ...any) {
	p := Problem{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if v != nil {
		p.Line = v.line
	}
	d.probs = append(d.probs, p)
}

// field is the handler of one known key of a table.
type field func(key string, v *value)

// fields calls the handler of every key of t in the order written, and
// reports unknown keys with the nearest known one as a suggestion. prefix is
// the dotted name of t ("" for the top level).
func (d *decoder) fields(t *table, prefix string, known map[string]field) {
	for _, k := range t.keys {
		v := t.fields[k]
		key := join(prefix, k)
		d.pos.keys[key] = v.line
		if f, ok := known[k]; ok {
			f(key, v)
			continue
		}
		names := make([]string, 0, len(known))
		for name := range known {
			names = append(names, name)
		}
		what := "key"
		if v.kind == kindTable {
			what = "table"
		}
		msg := fmt.Sprintf("unknown %s %q", what, k)
		if s := suggest(k, names); s != "" {
			msg += fmt.Sprintf(", did you mean %q?", s)
		} else if home := elsewhere(k, prefix); home != "" {
			msg += home
		} else if prefix == "environment" && strings.ToUpper(k) == k {
			msg += "; environment variables go under [environment.additional]"
		} else {
			msg += d.hint
		}
		d.problem(v, key, "%s", msg)
	}
}

// homes are the tables each key of a service file belongs in ("" is the
// top level). (A slice, not a map: a map literal is built at package
// initialization, in every start; this is read only to explain an error.)
var homes = []struct {
	key    string
	tables []string
}{
	{"strategy", []string{"restart", "failure"}}, {"backoff", []string{"restart"}}, {"attempts", []string{"restart"}},
	{"min-uptime", []string{"restart"}}, {"max-backoff", []string{"restart"}},
	{"http-endpoint", []string{"healthiness"}}, {"tcp-endpoint", []string{"healthiness"}}, {"file-path", []string{"healthiness"}},
	{"max-failed", []string{"healthiness"}}, {"interval", []string{"healthiness"}}, {"timeout", []string{"healthiness"}},
	{"start-timeout", []string{"healthiness"}}, {"notify", []string{"healthiness"}},
	{"successful-exit-code", []string{"failure"}},
	{"keep-env", []string{"environment"}}, {"re-export", []string{"environment"}}, {"additional", []string{"environment"}},
	{"signal", []string{"termination"}}, {"wait", []string{"termination"}}, {"die-if-failed", []string{"termination"}},
	{"cpu", []string{"resource-limit"}}, {"cpu-percent", []string{"resource-limit"}}, {"memory", []string{"resource-limit"}},
	{"pids-max", []string{"resource-limit"}},
	{"command", []string{"", "healthiness"}}, {"name", []string{""}}, {"user", []string{""}}, {"working-directory", []string{""}},
	{"stdout", []string{""}}, {"stderr", []string{""}}, {"stdout-rotate-size", []string{""}}, {"stdout-rotate-keep", []string{""}},
	{"stderr-rotate-size", []string{""}}, {"stderr-rotate-keep", []string{""}},
	{"stdout-should-append-timestamp-to-filename", []string{""}}, {"stdout-prefix", []string{""}},
	{"stdout-timestamps", []string{""}}, {"start-delay", []string{""}}, {"start-after", []string{""}}, {"shutdown-after", []string{""}},
	{"signal-rewrite", []string{""}}, {"oneshot", []string{""}},
}

// elsewhere explains where key belongs when it is a known key of another
// table than prefix, or returns "".
func elsewhere(key, prefix string) string {
	var tables []string
	for _, h := range homes {
		if h.key == key {
			tables = h.tables
			break
		}
	}
	if len(tables) == 0 {
		return ""
	}
	if len(tables) == 1 && tables[0] == "" {
		// The usual cause: a top-level key written after a [table] header.
		return "; it is a top-level key: move it above the first [table] header"
	}
	var where []string
	for _, t := range tables {
		if t == "" {
			where = append(where, "the top level")
		} else if t != prefix {
			where = append(where, "["+t+"]")
		}
	}
	if prefix == "" {
		return "; it belongs under " + strings.Join(where, " or ")
	}
	return "; it belongs under " + strings.Join(where, " or ") + ", not [" + prefix + "]"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// typeIs reports whether v has kind k, and reports a problem when not.
func (d *decoder) typeIs(key string, v *value, k kind, example string) bool {
	if v.kind == k {
		return true
	}
	d.problem(v, key, "must be %s%s, not %s", k, example, v.kind)
	return false
}

func (d *decoder) str(key string, v *value, dst *string) bool {
	if !d.typeIs(key, v, kindString, "") {
		return false
	}
	*dst = v.text
	return true
}

// nonEmpty decodes a string that must not be empty or blank.
func (d *decoder) nonEmpty(key string, v *value, dst *string, hint string) {
	var s string
	if !d.str(key, v, &s) {
		return
	}
	if strings.TrimSpace(s) == "" {
		d.problem(v, key, "must not be empty%s", hint)
		return
	}
	*dst = s
}

func (d *decoder) boolean(key string, v *value, dst *bool) {
	if d.typeIs(key, v, kindBool, " (true or false)") {
		*dst = v.text == "true"
	}
}

// integer decodes an integer within [lo, hi].
func (d *decoder) integer(key string, v *value, lo, hi int64) (int64, bool) {
	if !d.typeIs(key, v, kindInteger, "") {
		return 0, false
	}
	n, err := parseInt(v.text)
	if err != nil || n < lo || n > hi {
		d.problem(v, key, "%s is out of range: must be between %d and %d", v.text, lo, hi)
		return 0, false
	}
	return n, true
}

// number decodes a float or an integer as a float.
func (d *decoder) number(key string, v *value) (float64, bool) {
	var (
		f   float64
		err error
	)
	switch v.kind {
	case kindFloat:
		f, err = strconv.ParseFloat(strings.ReplaceAll(v.text, "_", ""), 64)
	case kindInteger:
		var n int64
		n, err = parseInt(v.text)
		f = float64(n)
	default:
		d.problem(v, key, "must be a number, not %s", v.kind)
		return 0, false
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.problem(v, key, "%s is not a usable number", v.text)
		return 0, false
	}
	return f, true
}

func (d *decoder) duration(key string, v *value, dst *time.Duration) bool {
	if !d.typeIs(key, v, kindString, ` holding a duration such as "5s" or "1m 30s"`) {
		return false
	}
	dur, err := ParseDuration(v.text)
	if err != nil {
		d.problem(v, key, "invalid duration %q: %v", v.text, err)
		return false
	}
	*dst = dur
	return true
}

// positive decodes a duration that must be above zero.
func (d *decoder) positive(key string, v *value, dst *time.Duration) {
	var dur time.Duration
	if !d.duration(key, v, &dur) {
		return
	}
	if dur <= 0 {
		d.problem(v, key, "must be longer than 0s")
		return
	}
	*dst = dur
}

func (d *decoder) size(key string, v *value, dst *uint64) {
	if !d.typeIs(key, v, kindString, ` holding a size such as "100 MB" or "10 MiB"`) {
		return
	}
	n, err := ParseSize(v.text)
	if err != nil {
		d.problem(v, key, "%v", err)
		return
	}
	*dst = n
}

// names decodes an array of non-empty strings and records the line of each.
func (d *decoder) names(key string, v *value, dst *[]string) {
	if !d.typeIs(key, v, kindArray, ` of strings such as ["db.toml"]`) {
		return
	}
	out := make([]string, 0, len(v.items))
	lines := make([]int, 0, len(v.items))
	for i, it := range v.items {
		if it.kind != kindString {
			d.problem(it, key, "item %d must be a string, not %s", i+1, it.kind)
			continue
		}
		if it.text == "" {
			d.problem(it, key, "item %d is an empty string", i+1)
			continue
		}
		out = append(out, it.text)
		lines = append(lines, it.line)
	}
	*dst = out
	d.pos.items[key] = lines
}

// command checks that s splits into at least one word by shell rules.
func (d *decoder) command(key string, v *value, s string) bool {
	words, err := shell.Split(s)
	switch {
	case err != nil:
		d.problem(v, key, "cannot be split into words (%v): %s", err, s)
		return false
	case len(words) == 0:
		d.problem(v, key, "is empty; give the program to run, e.g. \"/bin/sleep 10\"")
		return false
	}
	return true
}

// oneOf decodes a string that must be one of choices.
func (d *decoder) oneOf(key string, v *value, choices ...string) (string, bool) {
	var s string
	if !d.str(key, v, &s) {
		return "", false
	}
	for _, c := range choices {
		if s == c {
			return s, true
		}
	}
	quoted := make([]string, len(choices))
	for i, c := range choices {
		quoted[i] = strconv.Quote(c)
	}
	msg := fmt.Sprintf("unknown value %q; use %s or %s", s, strings.Join(quoted[:len(quoted)-1], ", "), quoted[len(quoted)-1])
	if sug := suggest(s, choices); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	d.problem(v, key, "%s", msg)
	return "", false
}

// decodeService decodes the (templated) text of one service file. It always
// returns a Service, with as much filled in as could be decoded, so that the
// checks across services can run (a file with a bad value still has a name
// that others may depend on).
func decodeService(file, text, cwd string) (*Service, *positions, []Problem) {
	svc := Default(cwd)
	svc.Name = filepath.Base(file)
	svc.File = file
	d := &decoder{file: file, pos: &positions{keys: map[string]int{}, items: map[string][]int{}},
		hint: "; `horust --sample-service` shows every key"}
	root, serr := parseTOML([]byte(text))
	if serr != nil {
		d.probs = append(d.probs, Problem{File: file, Line: serr.Line, Col: serr.Col, Msg: "invalid TOML: " + serr.Msg})
		// Keep the name when it came before the error.
		if v := root.get("name"); v != nil && v.kind == kindString && v.text != "" {
			svc.Name = v.text
			d.pos.keys["name"] = v.line
		}
		return svc, d.pos, d.probs
	}
	d.decodeTop(root, svc)
	return svc, d.pos, d.probs
}

func (d *decoder) decodeTop(root *table, svc *Service) {
	var hasCommand bool
	appendTS := map[string]*value{}
	resources := map[string]*value{}
	var oneshot, strategy *value
	d.fields(root, "", map[string]field{
		"name": func(k string, v *value) {
			var s string
			if d.str(k, v, &s) && s != "" {
				svc.Name = s
			}
		},
		"command": func(k string, v *value) {
			hasCommand = true
			if d.str(k, v, &svc.Command) {
				d.command(k, v, svc.Command)
			}
		},
		"user": func(k string, v *value) { d.user(k, v, &svc.User) },
		"working-directory": func(k string, v *value) {
			d.nonEmpty(k, v, &svc.WorkingDirectory, " (leave it out to use horust's working directory)")
		},
		"stdout": func(k string, v *value) {
			d.nonEmpty(k, v, &svc.Stdout, `: use "STDOUT", "STDERR" or a file path`)
		},
		"stderr": func(k string, v *value) {
			d.nonEmpty(k, v, &svc.Stderr, `: use "STDOUT", "STDERR" or a file path`)
		},
		"stdout-rotate-size": func(k string, v *value) { d.size(k, v, &svc.StdoutRotateSize) },
		"stderr-rotate-size": func(k string, v *value) { d.size(k, v, &svc.StderrRotateSize) },
		"stdout-rotate-keep": func(k string, v *value) {
			if n, ok := d.integer(k, v, 0, math.MaxInt32); ok {
				svc.StdoutRotateKeep = int(n)
			}
		},
		"stderr-rotate-keep": func(k string, v *value) {
			if n, ok := d.integer(k, v, 0, math.MaxInt32); ok {
				svc.StderrRotateKeep = int(n)
			}
		},
		"stdout-should-append-timestamp-to-filename": func(k string, v *value) {
			appendTS[k] = v
			d.boolean(k, v, &svc.AppendTimestamp)
		},
		"stdout_should_append_timestamp_to_filename": func(k string, v *value) {
			appendTS[k] = v
			d.boolean(k, v, &svc.AppendTimestamp)
		},
		"stdout-prefix":     func(k string, v *value) { d.boolean(k, v, &svc.Prefix) },
		"stdout-timestamps": func(k string, v *value) { d.boolean(k, v, &svc.Timestamps) },
		"oneshot": func(k string, v *value) {
			oneshot = v
			d.boolean(k, v, &svc.Oneshot)
		},
		"start-delay":    func(k string, v *value) { d.duration(k, v, &svc.StartDelay) },
		"start-after":    func(k string, v *value) { d.names(k, v, &svc.StartAfter) },
		"shutdown-after": func(k string, v *value) { d.names(k, v, &svc.ShutdownAfter) },
		"signal-rewrite": func(k string, v *value) { d.str(k, v, &svc.SignalRewrite) },
		"restart": func(k string, v *value) {
			if d.typeIs(k, v, kindTable, "") {
				strategy = v.table.get("strategy")
				d.restart(k, v.table, &svc.Restart)
			}
		},
		"healthiness": func(k string, v *value) {
			if d.typeIs(k, v, kindTable, "") {
				d.healthiness(k, v.table, &svc.Healthiness)
			}
		},
		"failure": func(k string, v *value) {
			if d.typeIs(k, v, kindTable, "") {
				d.failure(k, v.table, &svc.Failure)
			}
		},
		"environment": func(k string, v *value) {
			if d.typeIs(k, v, kindTable, "") {
				d.environment(k, v.table, &svc.Environment)
			}
		},
		"termination": func(k string, v *value) {
			if d.typeIs(k, v, kindTable, "") {
				d.termination(k, v.table, &svc.Termination)
			}
		},
		"resource-limit": func(k string, v *value) {
			resources[k] = v
			if d.typeIs(k, v, kindTable, "") {
				d.resource(k, v.table, &svc.Resource)
			}
		},
		"resource": func(k string, v *value) {
			resources[k] = v
			if d.typeIs(k, v, kindTable, "") {
				d.resource(k, v.table, &svc.Resource)
			}
		},
	})
	if !hasCommand {
		d.problem(nil, "command", "missing: every service needs a command to run")
	}
	d.exclusive(appendTS, "stdout-should-append-timestamp-to-filename", "stdout_should_append_timestamp_to_filename")
	d.exclusive(resources, "resource-limit", "resource")
	if svc.Oneshot && svc.Restart.Strategy == RestartAlways {
		at := strategy
		if at == nil {
			at = oneshot
		}
		d.problem(at, "restart.strategy", "\"always\" cannot be used with oneshot = true (line %d): a job runs until it succeeds; use \"on-failure\" with attempts to retry it", oneshot.line)
	}
}

// exclusive reports two spellings of the same key given together.
func (d *decoder) exclusive(seen map[string]*value, a, b string) {
	va, vb := seen[a], seen[b]
	if va == nil || vb == nil {
		return
	}
	later, lk, ek := vb, b, a
	if va.line > vb.line {
		later, lk, ek = va, a, b
	}
	d.problem(later, lk, "%s and %s are two spellings of the same setting; keep only one", ek, lk)
}

func (d *decoder) user(k string, v *value, u *User) {
	switch v.kind {
	case kindInteger:
		if n, ok := d.integer(k, v, 0, math.MaxUint32); ok {
			*u = User{Set: true, UID: uint32(n)}
		}
	case kindString:
		if strings.TrimSpace(v.text) == "" {
			d.problem(v, k, "must not be empty: give a user name or a numeric uid (leave it out to run as horust's user)")
			return
		}
		*u = User{Set: true, IsName: true, Name: v.text}
	default:
		d.problem(v, k, "must be a user name (string) or a uid (integer), not %s", v.kind)
	}
}

func (d *decoder) restart(prefix string, t *table, r *Restart) {
	d.fields(t, prefix, map[string]field{
		"strategy": func(k string, v *value) {
			if s, ok := d.oneOf(k, v, string(RestartAlways), string(RestartOnFailure), string(RestartNever)); ok {
				r.Strategy = RestartStrategy(s)
			}
		},
		"backoff":     func(k string, v *value) { d.duration(k, v, &r.Backoff) },
		"min-uptime":  func(k string, v *value) { d.duration(k, v, &r.MinUptime) },
		"max-backoff": func(k string, v *value) { d.duration(k, v, &r.MaxBackoff) },
		"attempts": func(k string, v *value) {
			if n, ok := d.integer(k, v, 0, math.MaxUint32); ok {
				r.Attempts = uint32(n)
			}
		},
	})
}

func (d *decoder) healthiness(prefix string, t *table, h *Healthiness) {
	d.fields(t, prefix, map[string]field{
		"http-endpoint": func(k string, v *value) {
			var s string
			if d.str(k, v, &s) && d.httpURL(k, v, s) {
				h.HTTPEndpoint = s
			}
		},
		"tcp-endpoint": func(k string, v *value) {
			var s string
			if d.str(k, v, &s) && d.hostPort(k, v, s) {
				h.TCPEndpoint = s
			}
		},
		"file-path": func(k string, v *value) { d.nonEmpty(k, v, &h.FilePath, " (leave it out for no file check)") },
		"command": func(k string, v *value) {
			var s string
			if d.str(k, v, &s) && d.command(k, v, s) {
				h.Command = s
			}
		},
		"max-failed": func(k string, v *value) {
			if n, ok := d.integer(k, v, math.MinInt32, math.MaxInt32); ok {
				h.MaxFailed = int32(n)
			}
		},
		"interval":      func(k string, v *value) { d.positive(k, v, &h.Interval) },
		"timeout":       func(k string, v *value) { d.positive(k, v, &h.Timeout) },
		"start-timeout": func(k string, v *value) { d.duration(k, v, &h.StartTimeout) },
		"notify":        func(k string, v *value) { d.boolean(k, v, &h.Notify) },
	})
}

// httpURL checks an http-endpoint.
func (d *decoder) httpURL(k string, v *value, s string) bool {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		d.problem(v, k, "invalid URL %q: %v", s, errUnwrapURL(err))
	case u.Scheme != "http" && u.Scheme != "https":
		d.problem(v, k, "URL %q must start with http:// or https://", s)
	case u.Host == "" || u.Hostname() == "":
		d.problem(v, k, "URL %q has no host; write e.g. \"http://localhost:8080/health\"", s)
	default:
		return true
	}
	return false
}

// errUnwrapURL drops url.Error's repetition of the URL.
func errUnwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// hostPort checks a tcp-endpoint.
func (d *decoder) hostPort(k string, v *value, s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		d.problem(v, k, "invalid address %q: write host:port, e.g. \"127.0.0.1:5432\" or \"[::1]:5432\"", s)
		return false
	}
	if host == "" {
		d.problem(v, k, "address %q has no host; write e.g. \"127.0.0.1:%s\"", s, port)
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		d.problem(v, k, "address %q: the port must be a number from 1 to 65535", s)
		return false
	}
	return true
}

func (d *decoder) failure(prefix string, t *table, f *Failure) {
	d.fields(t, prefix, map[string]field{
		"successful-exit-code": func(k string, v *value) {
			if !d.typeIs(k, v, kindArray, " of integers such as [0, 1]") {
				return
			}
			codes := make([]int, 0, len(v.items))
			for i, it := range v.items {
				if it.kind != kindInteger {
					d.problem(it, k, "item %d must be an integer, not %s", i+1, it.kind)
					continue
				}
				if n, ok := d.integer(k, it, math.MinInt32, math.MaxInt32); ok {
					codes = append(codes, int(n))
				}
			}
			f.SuccessfulExitCodes = codes
		},
		"strategy": func(k string, v *value) {
			if s, ok := d.oneOf(k, v, string(FailureShutdown), string(FailureKillDependents), string(FailureIgnore)); ok {
				f.Strategy = FailureStrategy(s)
			}
		},
	})
}

func (d *decoder) environment(prefix string, t *table, e *Environment) {
	d.fields(t, prefix, map[string]field{
		"keep-env": func(k string, v *value) { d.boolean(k, v, &e.KeepEnv) },
		"re-export": func(k string, v *value) {
			d.names(k, v, &e.ReExport)
			for i, name := range e.ReExport {
				if strings.ContainsAny(name, "=\x00") {
					d.problem(&value{line: d.pos.line(k, i)}, k, "%q is not a variable name", name)
				}
			}
		},
		"additional": func(k string, v *value) {
			if !d.typeIs(k, v, kindTable, ` such as { KEY = "value" }`) {
				return
			}
			e.Additional = make(map[string]string, len(v.table.keys))
			for _, name := range v.table.keys {
				it := v.table.fields[name]
				key := join(k, name)
				d.pos.keys[key] = it.line
				switch {
				case it.kind != kindString:
					d.problem(it, key, "must be a string, not %s (quote it)", it.kind)
				case name == "" || strings.ContainsAny(name, "=\x00"):
					d.problem(it, key, "%q is not a variable name", name)
				case strings.ContainsRune(it.text, 0):
					d.problem(it, key, "the value contains a NUL byte")
				default:
					e.Additional[name] = it.text
				}
			}
		},
	})
}

func (d *decoder) termination(prefix string, t *table, term *Termination) {
	d.fields(t, prefix, map[string]field{
		"signal": func(k string, v *value) {
			var s string
			if !d.str(k, v, &s) {
				return
			}
			sig, err := ParseSignal(s)
			if err != nil {
				d.problem(v, k, "%v", err)
				return
			}
			term.Signal = sig
		},
		"wait":          func(k string, v *value) { d.duration(k, v, &term.Wait) },
		"die-if-failed": func(k string, v *value) { d.names(k, v, &term.DieIfFailed) },
	})
}

func (d *decoder) resource(prefix string, t *table, r *Resource) {
	cpus := map[string]*value{}
	d.fields(t, prefix, map[string]field{
		"cpu": func(k string, v *value) {
			cpus["cpu"] = v
			if f, ok := d.number(k, v); ok {
				if f < 0 {
					d.problem(v, k, "must not be negative (0.5 is half a CPU)")
					return
				}
				if d.cpuAtLeastMin(k, v, f, f, "0.01") {
					r.CPU = f
				}
			}
		},
		"cpu-percent": func(k string, v *value) {
			cpus["cpu-percent"] = v
			if f, ok := d.number(k, v); ok {
				if f < 0 {
					d.problem(v, k, "must not be negative (200 is two CPUs)")
					return
				}
				if d.cpuAtLeastMin(k, v, f, f/100, "1") {
					r.CPU = f / 100
				}
			}
		},
		"memory": func(k string, v *value) { d.size(k, v, &r.Memory) },
		"pids-max": func(k string, v *value) {
			if n, ok := d.integer(k, v, 0, math.MaxInt64); ok {
				r.PidsMax = n
			}
		},
	})
	if cpus["cpu"] != nil && cpus["cpu-percent"] != nil {
		later, lk, ek := cpus["cpu-percent"], "cpu-percent", "cpu"
		if cpus["cpu"].line > later.line {
			later, lk, ek = cpus["cpu"], "cpu", "cpu-percent"
		}
		d.problem(later, join(prefix, lk), "%s and %s both set the CPU limit (cpu = 0.5 is cpu-percent = 50); keep only one", ek, lk)
	}
}

// cpuAtLeastMin reports whether a CPU limit of cpu CPUs (0: none), given
// as given, is one the kernel takes (MinCPU, rounded to the µs as the
// quota is); least is MinCPU in the key's unit.
func (d *decoder) cpuAtLeastMin(key string, v *value, given, cpu float64, least string) bool {
	if cpu > 0 && math.Round(cpu*100000) < MinCPU*100000 {
		d.problem(v, key, "%g is below the kernel's minimum of %s (1 ms of CPU every 100 ms); 0 means no limit", given, least)
		return false
	}
	return true
}

// parseInt parses a TOML integer as written: decimal with an optional sign,
// or 0x, 0o, 0b, with '_' between digits.
func parseInt(s string) (int64, error) {
	s = strings.ReplaceAll(s, "_", "")
	base := 10
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if base != 10 {
			s = s[2:]
		}
	}
	return strconv.ParseInt(s, base, 64)
}
