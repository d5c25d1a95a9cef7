package clone

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/clonecd/clonecd/kickstart"
	"github.com/clonecd/clonecd/medium"
)

// kickstartPost runs the media's ks.cfg %post scripts at the end of the
// identity step: chroot ones inside the new root (with /dev, /proc and
// /sys bound), --nochroot ones in the cloner with INSTALL_ROOT set; each
// gets HOSTNAME. A failing script stops the clone only with --erroronfail.
func (r *run) kickstartPost(host string) error {
	if _, err := fs.Stat(r.media, medium.Kickstart); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("media %s: %w", medium.Kickstart, err)
	}
	ks, err := kickstart.ParseFS(r.media, medium.Kickstart, kickstart.Options{Name: medium.Kickstart})
	if err != nil {
		return fmt.Errorf("media %s: %w", medium.Kickstart, err)
	}
	if len(ks.Post) == 0 {
		return nil
	}
	if err := r.binds(); err != nil {
		return err
	}
	for i := range ks.Post {
		s := &ks.Post[i]
		where := "chroot"
		if s.NoChroot {
			where = "nochroot"
		}
		r.logf("identity: ks.cfg %%post at line %d (%s, %s)", s.Line, where, orNone(s.Interpreter))
		err := s.Run(r.ctx, kickstart.RunOptions{Root: r.root, Env: []string{"HOSTNAME=" + host, "CLONECD_VERSION=" + r.version}, Output: r.log})
		if err != nil {
			if s.ErrorOnFail {
				return fmt.Errorf("ks.cfg %%post --erroronfail: %w", err)
			}
			r.logf("identity: warning: %v", err)
		}
	}
	return nil
}
