package clone

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FIFREEZE and FITHAW (linux/fs.h: _IOWR('X', 119, int) and 120); x/sys
// does not name them.
const (
	fiFreeze = 0xc0045877
	fiThaw   = 0xc0045878
)

// settle writes the journal of the filesystem holding name (inside root:
// an image's symlink never leads it to the host's filesystems) back to where
// the data and metadata belong, by freezing and at once thawing it.
// GRUB reads ext4 and xfs without replaying their journal: after a power
// cut, a file that was replaced (the cloner's kernel, renamed into place)
// and whose new inode is only in the journal is, to GRUB, the old inode,
// whose blocks may already hold other data. A filesystem without a
// freeze (tmpfs, vfat) is only synced.
func settle(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	dir := "/" + name
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), fiFreeze, 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) {
			unix.Sync() // no journal to settle (tmpfs, vfat)
			return nil
		}
		return fmt.Errorf("freezing the filesystem of %s: %w", dir, err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), fiThaw, 0); err != nil {
		return fmt.Errorf("thawing the filesystem of %s: %w", dir, err)
	}
	return nil
}
