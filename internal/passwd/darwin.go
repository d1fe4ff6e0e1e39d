//go:build darwin

package passwd

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// UserByName is the user called name; ok is false when there is none.
func UserByName(name string) (u User, ok bool, err error) {
	return fromOS(user.Lookup(name))
}

// UserByID is the user with uid; ok is false when there is none.
func UserByID(uid uint32) (u User, ok bool, err error) {
	return fromOS(user.LookupId(strconv.FormatUint(uint64(uid), 10)))
}

func fromOS(u *user.User, err error) (User, bool, error) {
	var unknownName user.UnknownUserError
	var unknownID user.UnknownUserIdError
	if errors.As(err, &unknownName) || errors.As(err, &unknownID) {
		return User{}, false, nil
	}
	if err != nil {
		return User{}, false, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return User{}, false, fmt.Errorf("user %s: uid %q or gid %q is not a number", u.Username, u.Uid, u.Gid)
	}
	return User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}, true, nil
}

// GroupIDs are the groups of u, its primary group first.
func (u User) GroupIDs() ([]uint32, error) {
	ids, err := (&user.User{Username: u.Name, Uid: strconv.FormatUint(uint64(u.UID), 10), Gid: strconv.FormatUint(uint64(u.GID), 10)}).GroupIds()
	if err != nil {
		return nil, err
	}
	gids := []uint32{u.GID}
	for _, id := range ids {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(gids, uint32(n)) {
			gids = append(gids, uint32(n))
		}
	}
	return gids, nil
}

// GroupByName is the gid of the group called name; ok is false when there
// is none.
func GroupByName(name string) (gid uint32, ok bool, err error) {
	g, err := user.LookupGroup(name)
	var unknown user.UnknownGroupError
	if errors.As(err, &unknown) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("group %s: gid %q is not a number", name, g.Gid)
	}
	return uint32(n), true, nil
}
