// Package passwd answers horust's questions about users and groups from
// /etc/passwd and /etc/group: a user by name or by uid, a user's groups, a
// group by name. horust reads the files itself rather than through os/user,
// which costs every start several hundred microseconds more for the same
// answers (docs/design.md, "One-shot start-up").
//
// The rules are those of glibc's files backend and of Go's pure-Go os/user:
// leading and trailing blanks of a line are trimmed, blank lines and lines
// starting with '#' are skipped, an entry whose name is empty or starts with
// '+' or '-' (a NIS compat line) never matches, a line with too few fields or
// an id that is not a decimal number that fits 32 bits is skipped, and the
// first of duplicate entries wins.
//
// On macOS the user database is Directory Services (its /etc/passwd holds
// only system accounts), so there the same questions go to os/user, which
// asks libSystem: macOS builds are for development, where the start-up cost
// does not matter.
package passwd

// User is an entry of the user database.
type User struct {
	Name     string
	UID, GID uint32
	Home     string
}
