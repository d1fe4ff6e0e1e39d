//go:build !darwin

package passwd

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// useFiles points the package at other databases for the test.
func useFiles(t *testing.T, passwdPath, groupPath string) {
	t.Helper()
	oldP, oldG := passwdFile, groupFile
	passwdFile, groupFile = passwdPath, groupPath
	t.Cleanup(func() { passwdFile, groupFile = oldP, oldG })
}

func useTestdata(t *testing.T) {
	useFiles(t, filepath.Join("testdata", "passwd"), filepath.Join("testdata", "group"))
}

func TestUserByName(t *testing.T) {
	useTestdata(t)
	cases := []struct {
		name string
		want User // zero: no entry
	}{
		{"root", User{"root", 0, 0, "/root"}},
		{"alice", User{"alice", 1000, 1000, "/home/alice"}}, // leading blanks trimmed; the first of two entries
		{"bob", User{"bob", 1000, 1000, "/home/bob-same-uid"}},
		{"nis", User{}},  // +nis: a NIS compat line never matches
		{"+nis", User{}}, // not even by its own name
		{"minus", User{}},
		{"-minus", User{}},
		{"", User{}}, // a line without a name
		{"short", User{}},
		{"noshell", User{}}, // six fields: the shell's colon is missing
		{"emptyshell", User{"emptyshell", 3002, 3002, "/home/emptyshell"}},
		{"baduid", User{}},
		{"badgid", User{}},
		{"big", User{}},
		{"neg", User{}},
		{"plus", User{}},
		{"emptyuid", User{}},
		{"max", User{"max", 4294967295, 4294967295, "/home/max"}},
		{"long", User{"long", 3004, 3004, "/home/long"}}, // a 10 kB gecos
		{"extra", User{"extra", 3005, 3005, "/home/extra"}},
		{"crlf", User{"crlf", 3006, 3006, "/home/crlf"}},
		{"commented", User{}},
		{"#commented", User{}},
		{"padded", User{"padded", 3008, 3008, "/home/padded"}},
		{"last", User{"last", 3009, 3009, "/home/last"}}, // no newline at the end
		{"nobody", User{}},
		{"ali", User{}},
		{"root:x", User{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, ok, err := UserByName(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tc.want != User{}) || u != tc.want {
				t.Fatalf("UserByName(%q) = %+v, %v; want %+v", tc.name, u, ok, tc.want)
			}
		})
	}
}

func TestUserByID(t *testing.T) {
	useTestdata(t)
	cases := []struct {
		uid  uint32
		want User // zero: no entry
	}{
		{0, User{"root", 0, 0, "/root"}},
		{1000, User{"alice", 1000, 1000, "/home/alice"}}, // alice and bob: the first wins
		{1001, User{"alice", 1001, 1001, "/home/alice-again"}},
		{2000, User{}}, // NIS lines
		{2001, User{}},
		{2002, User{}}, // no name
		{3000, User{}}, // short
		{3001, User{}}, // no shell field
		{3003, User{}}, // bad gid
		{5, User{}},    // "+5"
		{3004, User{"long", 3004, 3004, "/home/long"}},
		{3008, User{"padded", 3008, 3008, "/home/padded"}}, // "0003008", read as a number as glibc does
		{3009, User{"last", 3009, 3009, "/home/last"}},
		{4294967295, User{"max", 4294967295, 4294967295, "/home/max"}},
		{54321, User{}},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(int(tc.uid)), func(t *testing.T) {
			u, ok, err := UserByID(tc.uid)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tc.want != User{}) || u != tc.want {
				t.Fatalf("UserByID(%d) = %+v, %v; want %+v", tc.uid, u, ok, tc.want)
			}
		})
	}
}

func TestGroupIDs(t *testing.T) {
	useTestdata(t)
	cases := []struct {
		user User
		want []uint32
	}{
		// wheel, staff (blanks around), dev, dup (the first), biglist (at
		// the end of 2,000 members), crlf; not samegid (60 again), own
		// (the primary group), the NIS lines, near, badgid, extra.
		{User{Name: "alice", GID: 1000}, []uint32{1000, 10, 50, 60, 70, 97, 98}},
		{User{Name: "bob", GID: 1000}, []uint32{1000, 50, 71}},
		{User{Name: "carol", GID: 500}, []uint32{500, 60, 99}}, // first in dev's list, alone in last's
		{User{Name: "dave", GID: 7}, []uint32{7, 60}},          // last in dev's list
		{User{Name: "user1999", GID: 8}, []uint32{8, 97}},
		{User{Name: "nobody", GID: 65534}, []uint32{65534}},
		{User{Name: "ali", GID: 1}, []uint32{1, 90}},
		{User{Name: "Alice", GID: 1}, []uint32{1, 90}},
		{User{Name: "alic", GID: 1}, []uint32{1}},
	}
	for _, tc := range cases {
		t.Run(tc.user.Name, func(t *testing.T) {
			got, err := tc.user.GroupIDs()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("groups of %s: %v, want %v", tc.user.Name, got, tc.want)
			}
		})
	}
}

func TestGroupByName(t *testing.T) {
	useTestdata(t)
	cases := []struct {
		name string
		gid  uint32
		ok   bool
	}{
		{"root", 0, true},
		{"wheel", 10, true},
		{"staff", 50, true},
		{"dup", 70, true}, // the first of two
		{"samegid", 60, true},
		{"extra", 96, true},
		{"crlf", 98, true},
		{"last", 99, true},
		{"nisgroup", 0, false},
		{"+nisgroup", 0, false},
		{"-minusgroup", 0, false},
		{"badgid", 0, false},
		{"short", 0, false},
		{"nope", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gid, ok, err := GroupByName(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || (ok && gid != tc.gid) {
				t.Fatalf("GroupByName(%q) = %d, %v; want %d, %v", tc.name, gid, ok, tc.gid, tc.ok)
			}
		})
	}
}

// TestUnreadable: a database that cannot be read is an error naming the
// file; a missing one is fs.ErrNotExist, so callers can tell "no database".
func TestUnreadable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	huge := filepath.Join(dir, "huge")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxFile + 1); err != nil { // sparse: cheap to make and to read
		t.Fatal(err)
	}
	f.Close()
	cases := []struct {
		name, path, want string
		notExist         bool
	}{
		{"missing", missing, "open " + missing + ": no such file or directory", true},
		{"a directory", dir, "read " + dir + ": is a directory", false},
		{"too large", huge, huge + ": larger than 16 MiB", false},
		{"too large without a size", "/dev/zero", "/dev/zero: larger than 16 MiB", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			useFiles(t, tc.path, tc.path)
			check := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, fs.ErrNotExist) != tc.notExist {
					t.Errorf("%s: error %v, want one with %q (not exist: %v)", what, err, tc.want, tc.notExist)
				}
			}
			_, _, err := UserByName("root")
			check("UserByName", err)
			if tc.path == "/dev/zero" {
				return // 16 MiB read once is enough
			}
			_, _, err = UserByID(0)
			check("UserByID", err)
			_, err = User{Name: "root"}.GroupIDs()
			check("GroupIDs", err)
			_, _, err = GroupByName("root")
			check("GroupByName", err)
		})
	}
}

// TestSameAsOSUser asks both this package and os/user about every entry of
// this machine's /etc/passwd and /etc/group.
func TestSameAsOSUser(t *testing.T) {
	names := func(path string) []string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("no %s here: %v", path, err)
		}
		var ns []string
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if name, _, ok := strings.Cut(line, ":"); ok && name != "" && !strings.ContainsAny(name[:1], "#+-") {
				ns = append(ns, name)
			}
		}
		if len(ns) == 0 {
			t.Skipf("%s has no entries", path)
		}
		return ns
	}
	for _, name := range names(passwdFile) {
		want, err := user.Lookup(name)
		if err != nil {
			t.Errorf("os/user cannot find %s: %v", name, err)
			continue
		}
		got, ok, err := UserByName(name)
		if err != nil || !ok {
			t.Errorf("UserByName(%q): %v, %v", name, ok, err)
			continue
		}
		if g := fmtUser(got); g != fmtUserOS(want) {
			t.Errorf("UserByName(%q) = %s, os/user %s", name, g, fmtUserOS(want))
		}
		byID, err := user.LookupId(want.Uid)
		if err != nil {
			t.Errorf("os/user LookupId(%s): %v", want.Uid, err)
			continue
		}
		if got, ok, err := UserByID(got.UID); err != nil || !ok || fmtUser(got) != fmtUserOS(byID) {
			t.Errorf("UserByID(%s) = %s, %v, %v; os/user %s", want.Uid, fmtUser(got), ok, err, fmtUserOS(byID))
		}
		wantGroups, err := want.GroupIds()
		if err != nil {
			t.Errorf("os/user GroupIds(%s): %v", name, err)
			continue
		}
		gids, err := got.GroupIDs()
		if err != nil {
			t.Errorf("GroupIDs(%s): %v", name, err)
			continue
		}
		var g []string
		for _, gid := range gids {
			g = append(g, strconv.FormatUint(uint64(gid), 10))
		}
		if w := dedup(wantGroups); !slices.Equal(g, w) {
			t.Errorf("groups of %s: %v, os/user %v", name, g, w)
		}
	}
	for _, name := range names(groupFile) {
		want, err := user.LookupGroup(name)
		if err != nil {
			t.Errorf("os/user cannot find group %s: %v", name, err)
			continue
		}
		if gid, ok, err := GroupByName(name); err != nil || !ok || strconv.FormatUint(uint64(gid), 10) != want.Gid {
			t.Errorf("GroupByName(%q) = %d, %v, %v; os/user %s", name, gid, ok, err, want.Gid)
		}
	}
}

func fmtUser(u User) string {
	return u.Name + ":" + strconv.FormatUint(uint64(u.UID), 10) + ":" + strconv.FormatUint(uint64(u.GID), 10) + ":" + u.Home
}

func fmtUserOS(u *user.User) string {
	return u.Username + ":" + u.Uid + ":" + u.Gid + ":" + u.HomeDir
}

// dedup keeps the first of repeated ids, as glibc's getgrouplist does (the
// pure-Go os/user repeats a gid two groups share).
func dedup(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// BenchmarkUserByID is the lookup every start of horust makes (its own
// user, for USER and HOME), here and through os/user side by side. It looks
// up nobody (65534): os/user caches the current user, which a start, making
// the lookup once, never profits from. Warm, as here, both are bound by the
// same system calls; what a start saves is os/user's cold code (Current,
// bufio), seen only in a fresh process (docs/design.md).
func BenchmarkUserByID(b *testing.B) {
	const uid = 65534
	if os.Getuid() == uid {
		b.Skip("runs as nobody, whom os/user caches")
	}
	if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
		b.Skipf("no uid %d here: %v", uid, err)
	}
	b.Run("passwd", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := UserByID(uid); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("os-user", func(b *testing.B) {
		for b.Loop() {
			if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServiceUser is the lookup of a service's user by name with its
// groups, as each start of a service with user = "..." makes.
func BenchmarkServiceUser(b *testing.B) {
	b.Run("passwd", func(b *testing.B) {
		for b.Loop() {
			u, ok, err := UserByName("root")
			if !ok || err != nil {
				b.Fatal(ok, err)
			}
			if _, err := u.GroupIDs(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os-user", func(b *testing.B) {
		for b.Loop() {
			u, err := user.Lookup("root")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := u.GroupIds(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
