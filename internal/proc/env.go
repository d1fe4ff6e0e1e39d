package proc

import (
	"bytes"
	"os"
	"slices"
	"strings"

	"github.com/horust-go/horust/internal/config"
)

// DefaultPath is the PATH a service gets when horust has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games"

// hostnameFile is read for HOSTNAME; a variable so tests can point it elsewhere.
var hostnameFile = "/etc/hostname"

// Environ builds the environment of one start of svc, in the original's
// order of precedence (later wins): horust's environment when keep-env is
// set; HOSTNAME, PATH, USER and HOME; TERM when horust has it; the re-export
// list; the additional table; then extra (NOTIFY_SOCKET and the like).
// host is horust's own environment. It also returns the re-export names that
// horust does not have, for the caller to log.
func Environ(svc *config.Service, id Identity, host []string, extra ...string) (env []string, missing []string) {
	e := newEnvSet(len(host) + 8)
	hostGet := func(k string) (string, bool) {
		for i := len(host) - 1; i >= 0; i-- {
			if name, val, ok := strings.Cut(host[i], "="); ok && name == k {
				return val, true
			}
		}
		return "", false
	}
	if svc.Environment.KeepEnv {
		for _, kv := range host {
			if k, v, ok := strings.Cut(kv, "="); ok {
				e.set(k, v)
			}
		}
	}
	hostPath, ok := hostGet("PATH")
	if !ok {
		hostPath = DefaultPath
	}
	hostName, _ := hostGet("HOSTNAME")
	e.set("HOSTNAME", hostname(hostName))
	e.set("PATH", hostPath)
	e.set("USER", id.Name)
	e.set("HOME", id.Home)
	if term, ok := hostGet("TERM"); ok && !e.has("TERM") {
		e.set("TERM", term)
	}
	for _, k := range svc.Environment.ReExport {
		if v, ok := hostGet(k); ok {
			e.set(k, v)
		} else {
			missing = append(missing, k)
		}
	}
	// Sorted so that the environment does not depend on map order.
	keys := make([]string, 0, len(svc.Environment.Additional))
	for k := range svc.Environment.Additional {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e.set(k, svc.Environment.Additional[k])
	}
	for _, kv := range extra {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e.set(k, v)
		}
	}
	return e.list(), missing
}

// hostname is HOSTNAME as the original computes it, without its trailing
// newline: the content of /etc/hostname when that is a regular file
// ("localhost" when it cannot be read), otherwise horust's $HOSTNAME or
// "localhost".
func hostname(fromEnv string) string {
	fi, err := os.Stat(hostnameFile)
	if err == nil && fi.Mode().IsRegular() {
		b, err := os.ReadFile(hostnameFile)
		if err != nil {
			return "localhost"
		}
		return string(bytes.TrimRight(b, "\r\n"))
	}
	if fromEnv != "" {
		return fromEnv
	}
	return "localhost"
}

// envSet is an environment that keeps the first position of each name.
type envSet struct {
	keys []string
	vals map[string]string
}

func newEnvSet(n int) *envSet {
	return &envSet{keys: make([]string, 0, n), vals: make(map[string]string, n)}
}

func (e *envSet) has(k string) bool { _, ok := e.vals[k]; return ok }

func (e *envSet) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envSet) list() []string {
	out := make([]string, len(e.keys))
	for i, k := range e.keys {
		out[i] = k + "=" + e.vals[k]
	}
	return out
}
