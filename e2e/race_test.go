//go:build race

package e2e

// raceEnabled: the suite runs under the race detector, and builds horust
// and horustctl with it too.
const raceEnabled = true
