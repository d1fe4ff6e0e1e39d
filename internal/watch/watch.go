// Package watch tells when horust's configuration files change, for
// horust --watch: it watches the directories that hold them with inotify
// (through fsnotify) and calls back once the changes have settled.
//
// Directories are watched rather than files: an editor that saves by
// renaming a new file over the old one, and a Kubernetes ConfigMap volume,
// which swaps a "..data" symlink to a new directory of files in one rename,
// replace the files; a watch on the file itself would see only the first
// change. The package holds no state of horust's: it is a leaf goroutine
// with a timer of its own.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Settle is how long the files must stay unchanged before a change is
// reported: an editor, a `kubectl apply` or a `cp -r` makes several
// changes in a row, which make one reload.
const Settle = 500 * time.Millisecond

// target is one watched directory and the names in it that matter.
type target struct {
	files map[string]bool // names that matter; nil: every *.toml
}

// matters reports whether a change to name (a base name) in the directory
// can change the configuration.
func (t target) matters(name string) bool {
	if strings.HasPrefix(name, "..") {
		return true // a ConfigMap's ..data symlink and its timestamped directories
	}
	if t.files == nil {
		return strings.HasSuffix(name, ".toml")
	}
	return t.files[name]
}

// Run watches paths (directories of service files, or single files such as
// horust.toml, which may not exist yet) until ctx ends, and calls changed
// once the files have stayed unchanged for settle after a change. It
// returns an error when none of the paths can be watched; a path that
// cannot be watched beside others is logged.
func Run(ctx context.Context, paths []string, settle time.Duration, changed func(), log *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	targets := map[string]target{}
	for _, p := range paths {
		dir, t := p, target{}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			dir = filepath.Dir(p)
			t = targets[dir]
			if t.files == nil {
				t.files = map[string]bool{}
			}
			t.files[filepath.Base(p)] = true
		}
		if old, ok := targets[dir]; ok && old.files == nil {
			continue // the directory's *.toml are watched already
		}
		targets[dir] = t
	}
	watched := 0
	for dir := range targets {
		if err := w.Add(dir); err != nil {
			log.Warn("--watch: cannot watch the directory; its changes are not seen", "path", dir, "err", err)
			delete(targets, dir)
			continue
		}
		watched++
	}
	if watched == 0 {
		return errors.New("--watch: no configuration directory can be watched")
	}
	timer := time.NewTimer(settle)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if targets[filepath.Dir(ev.Name)].matters(filepath.Base(ev.Name)) {
				timer.Reset(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events, not the need to look again.
			log.Warn("--watch: inotify", "err", err)
			timer.Reset(settle)
		case <-timer.C:
			changed()
		}
	}
}
