package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// levelTrace is below debug; HORUST_LOG=trace selects it.
const levelTrace = slog.LevelDebug - 4

// namedLevel is the level a name of HORUST_LOG stands for. (A switch, not a
// map: a map literal is built at package initialization, in every start.)
func namedLevel(name string) (slog.Level, bool) {
	switch name {
	case "error":
		return slog.LevelError, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "info":
		return slog.LevelInfo, true
	case "debug":
		return slog.LevelDebug, true
	case "trace":
		return levelTrace, true
	case "off":
		return slog.LevelError + 100, true
	}
	return 0, false
}

// newLogger builds horust's own logger from HORUST_LOG (see logLevel) and
// HORUST_LOG_FORMAT (text or json). Lines go to w (stderr).
func newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevel(os.Getenv("HORUST_LOG"))}
	if strings.EqualFold(os.Getenv("HORUST_LOG_FORMAT"), "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logLevel reads HORUST_LOG: a level (error, the default, so a normal run
// prints nothing of its own; warn, info, debug, trace, off), or the
// original's env_logger filter, comma-separated directives such as
// "horust=debug" or "info,hyper=warn". A directive for horust (or one of its
// modules, "horust::x") wins over a level for every module; a bare "horust"
// is trace, as in env_logger; directives for other modules are ignored, and
// so is env_logger's "/regex" suffix.
func logLevel(v string) slog.Level {
	global, own := slog.LevelError, slog.Level(0)
	hasOwn := false
	v, _, _ = strings.Cut(strings.ToLower(v), "/")
	for _, d := range strings.Split(v, ",") {
		module, name, hasName := strings.Cut(strings.TrimSpace(d), "=")
		if !hasName {
			if l, ok := namedLevel(module); ok {
				global = l
				continue
			}
			name = "trace" // a module alone: all its levels
		}
		l, ok := namedLevel(strings.TrimSpace(name))
		module = strings.TrimSpace(module)
		if !ok || module != "horust" && !strings.HasPrefix(module, "horust::") {
			continue
		}
		own, hasOwn = l, true
	}
	if hasOwn {
		return own
	}
	return global
}
