//go:build tools

// Package deps pins the modules the project's packages are being written
// against, so that go.mod keeps them while those packages land. It is
// removed once every one of them is imported for real.
package deps

import (
	_ "github.com/pelletier/go-toml/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/sys/unix"
)
