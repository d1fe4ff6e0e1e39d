// Package nearest finds the name a user most likely meant: configuration
// errors ("did you mean ...?") and horustctl's unknown service names use it.
package nearest

import (
	"sort"
	"strings"
)

// Name returns the candidate that the user most likely meant by s, or ""
// when none is close: the same name with or without ".toml", the same name
// in another letter case or with '_' for '-', or else the nearest by edit
// distance (at most 2 edits, and fewer than the length of s).
func Name(s string, candidates []string) string {
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	norm := func(x string) string {
		return strings.ReplaceAll(strings.ToLower(strings.TrimSuffix(x, ".toml")), "_", "-")
	}
	for _, c := range sorted {
		if c != s && norm(c) == norm(s) {
			return c
		}
	}
	best, bestDist := "", 3
	for _, c := range sorted {
		if c == s {
			continue
		}
		if d := editDistance(s, c); d < bestDist && d < len([]rune(s)) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
