package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// levelTrace is below debug; HORUST_LOG=trace selects it.
const levelTrace = slog.LevelDebug - 4

// newLogger builds horust's own logger from HORUST_LOG (error, warn, info,
// debug, trace; default error, so a normal run prints nothing of its own) and
// HORUST_LOG_FORMAT (text or json). Lines go to w (stderr).
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelError
	switch strings.ToLower(strings.TrimSpace(os.Getenv("HORUST_LOG"))) {
	case "warn", "warning":
		level = slog.LevelWarn
	case "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "trace":
		level = levelTrace
	case "off":
		level = slog.LevelError + 100
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(os.Getenv("HORUST_LOG_FORMAT"), "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
