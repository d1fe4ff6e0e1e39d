//go:build linux && race

package e2e

// raceEnabled: the suite runs under the race detector, and builds horust
// with it too (the soak then runs a race-instrumented horust).
const raceEnabled = true
