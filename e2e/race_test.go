//go:build race

package e2e

// raceEnabled: the suite runs under the race detector, and builds horust
// with it too.
const raceEnabled = true
