package versions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The store belongs to the owner of its directory. Root changing a store
// it does not own (the Debian package's /var/lib/clonecd is the
// clonecd user's: the service runs as it) hands what it made to that
// owner, so that the service reads what root published; the modes stay
// private (0600 files, 0700 directories). Anyone else writes as
// themselves: a store they can write is theirs.

// shareOwner gives everything under the store to the owner of its
// directory when root changed a store root does not own.
func (s *Store) shareOwner() error {
	uid, gid, ok := s.foreignOwner()
	if !ok {
		return nil
	}
	return filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (a prune in another process)
			}
			return err
		}
		return chownTo(path, uid, gid)
	})
}

// foreignOwner is the owner of the store's directory when this process
// is root and the directory is not root's.
func (s *Store) foreignOwner() (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	fi, err := os.Stat(s.Dir)
	if err != nil {
		return 0, 0, false
	}
	st, isUnix := fi.Sys().(*syscall.Stat_t)
	if !isUnix || st.Uid == 0 {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

func chownTo(path string, uid, gid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("giving %s to the store's owner: %w", path, err)
	}
	return nil
}
