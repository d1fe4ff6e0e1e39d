package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/passwd"
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
	if u, ok, err := passwd.UserByID(uint32(uid)); ok && err == nil {
		id.Name, id.Home = u.Name, u.Home
	}
	return id
}

// Lookup resolves the user of a service. An unset user is horust's own
// (self). A name must exist in the user database. A number without an entry
// (or without a database: an image with no /etc/passwd) runs with that uid,
// gid equal to it, no supplementary groups, USER set to the number and HOME
// to "/".
func Lookup(u config.User, self Identity) (Identity, error) {
	if !u.Set {
		return self, nil
	}
	var (
		pw  passwd.User
		ok  bool
		err error
	)
	if u.IsName {
		if pw, ok, err = passwd.UserByName(u.Name); err != nil {
			return Identity{}, fmt.Errorf("user %q: %w", u.Name, err)
		}
		if !ok {
			return Identity{}, fmt.Errorf("user %q: user: unknown user %s", u.Name, u.Name)
		}
	} else {
		pw, ok, err = passwd.UserByID(u.UID)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Identity{}, fmt.Errorf("user %d: %w", u.UID, err)
		}
		if !ok {
			id := Identity{UID: u.UID, GID: u.UID, Name: strconv.FormatUint(uint64(u.UID), 10), Home: "/"}
			id.Switch = needSwitch(id, self)
			return id, nil
		}
	}
	id := Identity{UID: pw.UID, GID: pw.GID, Name: pw.Name, Home: pw.Home}
	if id.Groups, err = pw.GroupIDs(); errors.Is(err, fs.ErrNotExist) {
		id.Groups = []uint32{pw.GID} // no group database: the primary group only
	} else if err != nil {
		return Identity{}, fmt.Errorf("user %q: groups: %w", pw.Name, err)
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
