//go:build !linux

package logs

import (
	"context"
	"errors"
)

// watchDir needs inotify: following a file the service writes itself works
// on Linux only.
func watchDir(context.Context, string) (<-chan struct{}, error) {
	return nil, errors.New("following a file that the service writes itself needs Linux (inotify)")
}
