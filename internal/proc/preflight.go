package proc

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/shell"
)

// Preflight lists what would make a start of svc fail that can be seen
// without starting it: a program not on pathList (horust's PATH) or not an
// executable file (the service's and its check command's), a user not in
// the user database, a working directory or an output file's folder that
// does not exist. horust --validate prints them as warnings, not errors:
// the machine, or the moment, where horust runs may differ.
func Preflight(svc *config.Service, pathList string) []string {
	var ws []string
	dir := svc.WorkingDirectory
	if dir != "" {
		if err := isDir(dir); err != nil {
			ws = append(ws, "working-directory: "+err.Error())
		}
	}
	argv := svc.Argv
	if len(argv) == 0 {
		argv, _ = shell.Split(svc.Command) // the configuration checked that it splits
	}
	if len(argv) > 0 {
		if err := checkProgram(argv[0], dir, pathList); err != nil {
			ws = append(ws, "command: "+err.Error())
		}
	}
	if words, _ := shell.Split(svc.Healthiness.Command); len(words) > 0 {
		// Check commands run in horust's own directory.
		if err := checkProgram(words[0], "", pathList); err != nil {
			ws = append(ws, "healthiness.command: "+err.Error())
		}
	}
	if _, err := Lookup(svc.User, Self()); err != nil {
		ws = append(ws, "user: "+err.Error())
	}
	for _, out := range [][2]string{{"stdout", svc.Stdout}, {"stderr", svc.Stderr}} {
		key, target := out[0], out[1]
		if target == "" || target == "STDOUT" || target == "STDERR" {
			continue
		}
		if err := isDir(filepath.Dir(target)); err != nil {
			ws = append(ws, fmt.Sprintf("%s: the folder of %s: %v", key, target, err))
		}
	}
	return ws
}

// checkProgram finds name as a start does: on pathList when it has no
// slash, else relative to dir; it must be an executable regular file.
func checkProgram(name, dir, pathList string) error {
	path, err := LookPath(name, pathList)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("program %s: %w", name, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("program %s: not a regular file", name)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("program %s: not executable (mode %v)", name, fi.Mode().Perm())
	}
	return nil
}

// isDir reports why dir is not a directory that exists, or nil.
func isDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}
