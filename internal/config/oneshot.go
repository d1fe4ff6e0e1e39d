package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/horust-go/horust/internal/shell"
)

// OneShot builds the service of `horust -- args...` (docs/design.md).
// Several arguments are the exact argv (Argv), and Command is them joined by
// spaces, for display. One argument that contains a blank is a command line,
// split by shell rules (the original's documented form
// `horust -- "/usr/bin/env bash -c 'echo hello'"`); one argument without
// blanks is the program alone. The name is the command string. Every other
// key has its default, except keep-env, which is true: as a tini
// replacement, horust must pass the container's environment on.
func OneShot(args []string, cwd string) (*Service, error) {
	if len(args) == 0 {
		return nil, errors.New("one-shot mode: no command after --")
	}
	svc := Default(cwd)
	svc.Environment.KeepEnv = true
	if len(args) == 1 && strings.ContainsAny(args[0], " \t\n") {
		words, err := shell.Split(args[0])
		if err != nil {
			return nil, fmt.Errorf("one-shot command %q: %w", args[0], err)
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("one-shot command %q: no program to run", args[0])
		}
		svc.Command, svc.Argv = args[0], words
	} else {
		if args[0] == "" {
			return nil, errors.New("one-shot mode: the program name is empty")
		}
		svc.Command, svc.Argv = strings.Join(args, " "), append([]string(nil), args...)
	}
	svc.Name = svc.Command
	return svc, nil
}
