package config

import (
	"maps"
	"slices"
)

// Change is what a reload does to one service (docs/configuration.md,
// "Reload").
type Change string

// The kinds of Change.
const (
	Added     Change = "added"
	Removed   Change = "removed"
	Changed   Change = "changed"
	Unchanged Change = "unchanged"
)

// Diff lists the keys whose effective values differ between two definitions
// of a service, in the order of the sample service; nil when they are equal.
// The values compared are the decoded ones, after templating and with every
// default applied: a file edited without a change of meaning (comments, a
// default spelled out, "5s" for "5000ms") has no difference, and an
// environment variable that a template uses is part of the value.
func Diff(a, b *Service) []string {
	var keys []string
	for _, k := range serviceKeys {
		if !k.equal(a, b) {
			keys = append(keys, k.name)
		}
	}
	return keys
}

// DiffGlobal lists the keys of horust.toml whose values differ.
func DiffGlobal(a, b Global) []string {
	if a.UnsuccessfulExitFinishedFailed != b.UnsuccessfulExitFinishedFailed {
		return []string{"unsuccessful-exit-finished-failed"}
	}
	return nil
}

// serviceKey compares one key (or a group of fields read from one key) of
// two definitions.
type serviceKey struct {
	name  string
	equal func(a, b *Service) bool
}

func same[T comparable](get func(*Service) T) func(a, b *Service) bool {
	return func(a, b *Service) bool { return get(a) == get(b) }
}

func sameSlice[T comparable](get func(*Service) []T) func(a, b *Service) bool {
	return func(a, b *Service) bool { return slices.Equal(get(a), get(b)) }
}

// serviceKeys is every key of a service file that has an effect. The name
// is not compared (services are matched by it), nor the file a service was
// read from.
var serviceKeys = []serviceKey{
	{"command", func(a, b *Service) bool { return a.Command == b.Command && slices.Equal(a.Argv, b.Argv) }},
	{"user", same(func(s *Service) User { return s.User })},
	{"working-directory", same(func(s *Service) string { return s.WorkingDirectory })},
	{"stdout", same(func(s *Service) string { return s.Stdout })},
	{"stderr", same(func(s *Service) string { return s.Stderr })},
	{"stdout-rotate-size", same(func(s *Service) uint64 { return s.StdoutRotateSize })},
	{"stdout-rotate-keep", same(func(s *Service) int { return s.StdoutRotateKeep })},
	{"stderr-rotate-size", same(func(s *Service) uint64 { return s.StderrRotateSize })},
	{"stderr-rotate-keep", same(func(s *Service) int { return s.StderrRotateKeep })},
	{"stdout-should-append-timestamp-to-filename", same(func(s *Service) bool { return s.AppendTimestamp })},
	{"stdout-prefix", same(func(s *Service) bool { return s.Prefix })},
	{"stdout-timestamps", same(func(s *Service) bool { return s.Timestamps })},
	{"oneshot", same(func(s *Service) bool { return s.Oneshot })},
	{"start-delay", same(func(s *Service) int64 { return int64(s.StartDelay) })},
	{"start-after", sameSlice(func(s *Service) []string { return s.StartAfter })},
	{"shutdown-after", sameSlice(func(s *Service) []string { return s.ShutdownAfter })},
	{"signal-rewrite", same(func(s *Service) string { return s.SignalRewrite })},
	{"restart.strategy", same(func(s *Service) RestartStrategy { return s.Restart.Strategy })},
	{"restart.backoff", same(func(s *Service) int64 { return int64(s.Restart.Backoff) })},
	{"restart.attempts", same(func(s *Service) uint32 { return s.Restart.Attempts })},
	{"restart.min-uptime", same(func(s *Service) int64 { return int64(s.Restart.MinUptime) })},
	{"restart.max-backoff", same(func(s *Service) int64 { return int64(s.Restart.MaxBackoff) })},
	{"healthiness.http-endpoint", same(func(s *Service) string { return s.Healthiness.HTTPEndpoint })},
	{"healthiness.file-path", same(func(s *Service) string { return s.Healthiness.FilePath })},
	{"healthiness.command", same(func(s *Service) string { return s.Healthiness.Command })},
	{"healthiness.tcp-endpoint", same(func(s *Service) string { return s.Healthiness.TCPEndpoint })},
	{"healthiness.max-failed", same(func(s *Service) int32 { return s.Healthiness.MaxFailed })},
	{"healthiness.interval", same(func(s *Service) int64 { return int64(s.Healthiness.Interval) })},
	{"healthiness.timeout", same(func(s *Service) int64 { return int64(s.Healthiness.Timeout) })},
	{"healthiness.start-timeout", same(func(s *Service) int64 { return int64(s.Healthiness.StartTimeout) })},
	{"healthiness.notify", same(func(s *Service) bool { return s.Healthiness.Notify })},
	{"failure.successful-exit-code", sameSlice(func(s *Service) []int { return s.Failure.SuccessfulExitCodes })},
	{"failure.strategy", same(func(s *Service) FailureStrategy { return s.Failure.Strategy })},
	{"environment.keep-env", same(func(s *Service) bool { return s.Environment.KeepEnv })},
	{"environment.re-export", sameSlice(func(s *Service) []string { return s.Environment.ReExport })},
	{"environment.additional", func(a, b *Service) bool { return maps.Equal(a.Environment.Additional, b.Environment.Additional) }},
	{"termination.signal", same(func(s *Service) int { return int(s.Termination.Signal) })},
	{"termination.wait", same(func(s *Service) int64 { return int64(s.Termination.Wait) })},
	{"termination.die-if-failed", sameSlice(func(s *Service) []string { return s.Termination.DieIfFailed })},
	{"resource-limit.cpu", same(func(s *Service) float64 { return s.Resource.CPU })},
	{"resource-limit.memory", same(func(s *Service) uint64 { return s.Resource.Memory })},
	{"resource-limit.pids-max", same(func(s *Service) int64 { return s.Resource.PidsMax })},
}
