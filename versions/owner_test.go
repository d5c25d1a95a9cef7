package versions

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/clonecd/clonecd/internal/testimage"
)

// TestStoreOwner: root publishing into, promoting in and making the
// secret of a store another user owns (the package's clonecd user) hands
// everything it made to that user, modes kept private; a store root
// owns stays root's.
func TestStoreOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to publish into another user's store")
	}
	const uid, gid = 4242, 4343
	for _, tc := range []struct {
		name           string
		chown          bool
		wantUID, wantG int
	}{
		{"another user's store", true, uid, gid},
		{"root's store", false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.chown {
				if err := os.Chown(dir, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			s, _ := Open(dir)
			src := t.TempDir()
			if _, err := s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src), Version: "1.0"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Publish(testimage.Write(t, src, "b"), PublishOptions{Version: "1.1", NoPromote: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Promote("1.1", false); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Secret(); err != nil {
				t.Fatal(err)
			}
			n := 0
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := os.Lstat(path)
				if err != nil {
					return err
				}
				st := fi.Sys().(*syscall.Stat_t)
				if int(st.Uid) != tc.wantUID || int(st.Gid) != tc.wantG {
					t.Errorf("%s: owner %d:%d, want %d:%d", path, st.Uid, st.Gid, tc.wantUID, tc.wantG)
				}
				if fi.Mode().Type() == 0 && fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s: mode %v, want private", path, fi.Mode())
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n < 10 {
				t.Errorf("walked only %d paths", n)
			}
		})
	}
}
