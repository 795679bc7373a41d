package pgembed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the unprivileged user initdb and postgres run as when Lintel
// itself runs as root. A nil *account means "run as the current user".
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, primary included
}

// serverAccount picks who runs PostgreSQL. PostgreSQL refuses to start as
// root, so root hands the cluster to "postgres" (what distributions use) or,
// failing that, "nobody".
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		a := &account{name: name, uid: uint32(uid), gid: uint32(gid)}
		gids, _ := u.GroupIds()
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				a.groups = append(a.groups, uint32(n))
			}
		}
		if len(a.groups) == 0 {
			a.groups = []uint32{a.gid}
		}
		return a, nil
	}
	return nil, errors.New("pgembed: running as root, but neither user postgres nor nobody exists to run PostgreSQL as (PostgreSQL refuses to run as root)")
}

func (a *account) String() string {
	return fmt.Sprintf("%s (uid %d)", a.name, a.uid)
}

// credential is what SysProcAttr.Credential needs; nil keeps the current user.
func (a *account) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
}

func (a *account) inGroup(gid uint32) bool {
	for _, g := range a.groups {
		if g == gid {
			return true
		}
	}
	return gid == a.gid
}

// canSearch applies the kernel's owner/group/other rule (the first class
// that matches decides, even if it denies) for the x bit of a directory.
func (a *account) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case a.inGroup(st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// makeReachable ensures a can reach dataDir/pg: dataDir itself (ours) gets
// the search bit for others if needed (search only: a still cannot list
// dataDir or read pg-password). Ancestors are checked but not modified,
// since they may belong to someone else; parents Start created are 0755
// already.
func (a *account) makeReachable(dataDir string) error {
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if !a.canSearch(fi) {
		if err := os.Chmod(dataDir, fi.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("pgembed: let %s reach the cluster: %w", a, err)
		}
	}
	for dir := filepath.Dir(dataDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("pgembed: %w", err)
		}
		if !a.canSearch(fi) {
			return fmt.Errorf("pgembed: PostgreSQL must run as %s because lintel runs as root, but that user cannot reach %s: "+
				"directory %s (mode %#o) is not searchable by it; run `chmod o+x %s` or choose a data directory elsewhere",
				a, dataDir, dir, uint32(fi.Mode().Perm()), dir)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// chownTree hands dir and everything below it to a, unless dir already
// belongs to a (the normal case on every start but the first, or after the
// data directory was used by a non-root lintel).
func (a *account) chownTree(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == a.uid && st.Gid == a.gid {
		return nil
	}
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(a.uid), int(a.gid))
	})
	if err != nil {
		return fmt.Errorf("pgembed: hand %s to %s: %w", dir, a, err)
	}
	return nil
}

// mkdirData creates dataDir (mode 0700) and any missing parents (mode 0755,
// set explicitly so a restrictive umask cannot make them unsearchable for
// the postgres user).
func mkdirData(dataDir string) error {
	var missing []string
	for dir := dataDir; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgembed: %w", err)
		}
		missing = append(missing, dir)
		if dir == filepath.Dir(dir) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		dir := missing[i]
		mode := fs.FileMode(0o755)
		if dir == dataDir {
			mode = 0o700
		}
		if err := os.Mkdir(dir, mode); errors.Is(err, fs.ErrExist) {
			continue // created concurrently by someone else: not ours to chmod
		} else if err != nil {
			return fmt.Errorf("pgembed: create data directory: %w", err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("pgembed: create data directory: %w", err)
		}
	}
	return nil
}
