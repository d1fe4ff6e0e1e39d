package config

import "github.com/horust-go/horust/internal/nearest"

// suggest returns the name the user most likely meant by s among
// candidates, or "" (see nearest.Name).
func suggest(s string, candidates []string) string { return nearest.Name(s, candidates) }
