//go:build !darwin

package passwd

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
)

// The databases; tests point them at testdata.
var (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// maxFile caps what is read of a database: far above any user database
// kept in files (100,000 users are about 7 MiB), and a file that is not one
// (a device, a runaway generator) cannot make horust allocate without limit.
const maxFile = 16 << 20

// UserByName is the first entry of /etc/passwd named name; ok is false when
// there is none.
func UserByName(name string) (u User, ok bool, err error) {
	return findUser(func(f [][]byte) bool { return string(f[0]) == name })
}

// UserByID is the first entry of /etc/passwd with uid; ok is false when
// there is none.
func UserByID(uid uint32) (u User, ok bool, err error) {
	return findUser(func(f [][]byte) bool {
		n, ok := parseID(f[2])
		return ok && n == uid
	})
}

// findUser is the first valid entry of /etc/passwd that match accepts.
func findUser(match func(f [][]byte) bool) (u User, ok bool, err error) {
	data, err := read(passwdFile)
	if err != nil {
		return User{}, false, err
	}
	// name:password:uid:gid:gecos:home:shell
	each(data, 7, func(f [][]byte) bool {
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 || !match(f) {
			return false
		}
		u, ok = User{Name: string(f[0]), UID: uid, GID: gid, Home: string(f[5])}, true
		return true
	})
	return u, ok, nil
}

// GroupIDs are the groups of u as os/user's GroupIds gives them: its primary
// group first, then each group of /etc/group whose member list names u, once
// each (glibc's initgroups drops repeats too).
func (u User) GroupIDs() ([]uint32, error) {
	data, err := read(groupFile)
	if err != nil {
		return nil, err
	}
	gids := []uint32{u.GID}
	// name:password:gid:member,member,...
	each(data, 4, func(f [][]byte) bool {
		gid, ok := parseID(f[2])
		if ok && isMember(f[3], u.Name) && !slices.Contains(gids, gid) {
			gids = append(gids, gid)
		}
		return false
	})
	return gids, nil
}

// GroupByName is the gid of the first entry of /etc/group named name; ok is
// false when there is none.
func GroupByName(name string) (gid uint32, ok bool, err error) {
	data, err := read(groupFile)
	if err != nil {
		return 0, false, err
	}
	each(data, 4, func(f [][]byte) bool {
		if string(f[0]) != name {
			return false
		}
		gid, ok = parseID(f[2])
		return ok
	})
	if !ok {
		return 0, false, nil
	}
	return gid, true, nil
}

// each calls fn with the n fields of each entry of data, the last field
// being the rest of the line, until fn returns true. Comments, blank lines,
// lines with fewer than n fields, entries without a name and NIS compat
// entries are skipped.
func each(data []byte, n int, fn func(f [][]byte) bool) {
	var buf [7][]byte
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' || line[0] == ':' {
			continue
		}
		f := buf[:0]
		for len(f) < n-1 {
			field, rest, found := bytes.Cut(line, []byte{':'})
			if !found {
				break
			}
			f, line = append(f, field), rest
		}
		if len(f) < n-1 {
			continue
		}
		if fn(append(f, line)) {
			return
		}
	}
}

// isMember reports whether the comma-separated list names name.
func isMember(list []byte, name string) bool {
	for len(list) > 0 {
		var m []byte
		m, list, _ = bytes.Cut(list, []byte{','})
		if string(m) == name {
			return true
		}
	}
	return false
}

// parseID is a uid or gid: decimal digits only, at most 32 bits.
func parseID(b []byte) (uint32, bool) {
	n, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(n), err == nil
}

// read is the whole file at path: one open, one fstat for its size, and one
// read into a buffer of that size, which is the file as it was at the fstat
// (a file replaced by rename, as tools update these databases, stays whole).
// A file whose reads do not end at that size (it changed, or it is not a
// regular file) is read on until end of file. It goes to the system calls
// directly: os.Open would register the file with the network poller and
// read once more to see the end, for nothing.
func read(path string) ([]byte, error) {
	fd, err := open(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Size > maxFile {
		return nil, tooLarge(path)
	}
	// Room for a file that grows meanwhile, or reports no size, as
	// os.ReadFile makes.
	buf := make([]byte, 0, st.Size+512)
	for {
		if len(buf) > maxFile {
			return nil, tooLarge(path)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf)) // double
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == syscall.EINTR:
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return buf, nil
		default:
			buf = buf[:len(buf)+n]
			if int64(len(buf)) == st.Size {
				return buf, nil
			}
		}
	}
}

func tooLarge(path string) error {
	return fmt.Errorf("%s: larger than %d MiB, the most horust reads of a user or group database", path, maxFile>>20)
}

func open(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
