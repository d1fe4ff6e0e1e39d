package config

import (
	"errors"
	"io/fs"
)

// LoadGlobal reads the global configuration file horust.toml. A missing file
// gives the zero Global and no error. The one setting may be spelled
// `unsuccessful-exit-finished-failed` (as the original's docs write it) or
// `unsuccessful_exit_finished_failed` (as its code reads it); a missing key
// is false. Unknown keys, a wrong type and invalid TOML are Problems with
// their line. The file is not templated.
func LoadGlobal(path string) (Global, error) {
	data, err := readConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Global{}, nil
	}
	if err != nil {
		return Global{}, Problems{{File: path, Msg: "cannot read: " + pathErr(err)}}
	}
	root, serr := parseTOML(data)
	if serr != nil {
		return Global{}, Problems{{File: path, Line: serr.Line, Col: serr.Col, Msg: "invalid TOML: " + serr.Msg}}
	}
	var g Global
	d := &decoder{file: path, pos: &positions{keys: map[string]int{}, items: map[string][]int{}},
		hint: "; the only setting is unsuccessful-exit-finished-failed"}
	seen := map[string]*value{}
	set := func(k string, v *value) {
		seen[k] = v
		d.boolean(k, v, &g.UnsuccessfulExitFinishedFailed)
	}
	d.fields(root, "", map[string]field{
		"unsuccessful-exit-finished-failed": set,
		"unsuccessful_exit_finished_failed": set,
	})
	d.exclusive(seen, "unsuccessful-exit-finished-failed", "unsuccessful_exit_finished_failed")
	if len(d.probs) > 0 {
		return Global{}, Problems(d.probs)
	}
	return g, nil
}
