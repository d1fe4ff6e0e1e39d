// Package config loads horust's configuration: the service files (templated
// with the environment, decoded from TOML, given their defaults and validated
// all at once), the global horust.toml, the one-shot service of
// `horust -- cmd`, and the value formats the files use (humantime durations,
// bytefmt sizes, signal names).
//
// Loading never stops at the first problem: every problem of every file is
// collected into a Problems error, each with its file, line and key, so that
// one run tells the user everything to fix. Nothing here starts processes or
// touches the system beyond reading files.
package config
