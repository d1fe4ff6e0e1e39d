package main

import (
	"log/slog"
	"testing"
)

func TestLogLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"", slog.LevelError},
		{"warn", slog.LevelWarn},
		{" INFO ", slog.LevelInfo},
		{"debug", slog.LevelDebug},
		{"trace", levelTrace},
		{"off", slog.LevelError + 100},
		{"nonsense", slog.LevelError},
		// The original's env_logger filters.
		{"horust=debug", slog.LevelDebug},
		{"horust::supervisor=info", slog.LevelInfo},
		{"horust", levelTrace},
		{"info,hyper=warn", slog.LevelInfo},
		{"horust=debug,warn", slog.LevelDebug}, // the module's own directive wins
		{"warn,horust=trace", levelTrace},
		{"hyper=debug", slog.LevelError}, // another module only
		{"horust=debug/some regex", slog.LevelDebug},
		{"horustctl=debug", slog.LevelError}, // not horust's module
	}
	for _, tt := range tests {
		if got := logLevel(tt.in); got != tt.want {
			t.Errorf("logLevel(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
