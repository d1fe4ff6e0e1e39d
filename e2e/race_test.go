//go:build race

package e2e

// raceEnabled is true when the tests run under the race detector: the soak
// then runs a race-instrumented horust.
const raceEnabled = true
