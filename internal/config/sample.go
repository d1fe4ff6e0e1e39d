package config

import _ "embed"

//go:embed sample-service.toml
var sampleService string

// SampleService returns the sample service file that `horust
// --sample-service` prints: every option with the original's sample values,
// in the canonical spellings, with comments.
func SampleService() string { return sampleService }
