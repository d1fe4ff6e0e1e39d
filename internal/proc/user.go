package proc

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/horust-go/horust/internal/config"
)

// Identity is the user a service runs as.
type Identity struct {
	UID, GID uint32
	Groups   []uint32
	Name     string // USER
	Home     string // HOME
	// Switch is set when the child must change credentials (uid, gid and
	// supplementary groups) before it executes the program.
	Switch bool
}

// Credential returns the credential for syscall.SysProcAttr, or nil when the
// child keeps horust's.
func (id Identity) Credential() *syscall.Credential {
	if !id.Switch {
		return nil
	}
	return &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: id.Groups}
}

// Self is the identity of horust's own user. A uid without a passwd entry
// (an arbitrary container uid) is not an error: USER is the uid and HOME is
// "/".
func Self() Identity {
	uid := os.Getuid()
	id := Identity{UID: uint32(uid), GID: uint32(os.Getgid()), Name: strconv.Itoa(uid), Home: "/"}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		id.Name, id.Home = u.Username, u.HomeDir
	}
	return id
}

// Lookup resolves the user of a service. An unset user is horust's own
// (self). A name must exist in the user database. A number without an entry
// runs with that uid, gid equal to it, no supplementary groups, USER set to
// the number and HOME to "/".
func Lookup(u config.User, self Identity) (Identity, error) {
	if !u.Set {
		return self, nil
	}
	var (
		pw  *user.User
		err error
	)
	if u.IsName {
		pw, err = user.Lookup(u.Name)
		if err != nil {
			return Identity{}, fmt.Errorf("user %q: %w", u.Name, err)
		}
	} else {
		pw, err = user.LookupId(strconv.FormatUint(uint64(u.UID), 10))
		if err != nil {
			var unknown user.UnknownUserIdError
			if !asUnknownUID(err, &unknown) {
				return Identity{}, fmt.Errorf("user %d: %w", u.UID, err)
			}
			id := Identity{UID: u.UID, GID: u.UID, Name: strconv.FormatUint(uint64(u.UID), 10), Home: "/"}
			id.Switch = needSwitch(id, self)
			return id, nil
		}
	}
	uid, err1 := strconv.ParseUint(pw.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(pw.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return Identity{}, fmt.Errorf("user %q: uid %q or gid %q is not a number", pw.Username, pw.Uid, pw.Gid)
	}
	id := Identity{UID: uint32(uid), GID: uint32(gid), Name: pw.Username, Home: pw.HomeDir}
	if gids, err := pw.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				id.Groups = append(id.Groups, uint32(n))
			}
		}
	}
	id.Switch = needSwitch(id, self)
	return id, nil
}

// needSwitch: root sets the full credential (so supplementary groups are
// right even for root itself); an ordinary user can only "switch" to itself,
// which needs nothing, and any other switch fails with EPERM in the child,
// which is the clear error we want.
func needSwitch(id, self Identity) bool {
	return self.UID == 0 || id.UID != self.UID || id.GID != self.GID
}

func asUnknownUID(err error, target *user.UnknownUserIdError) bool {
	e, ok := err.(user.UnknownUserIdError)
	if ok {
		*target = e
	}
	return ok
}
