package clone

import (
	"fmt"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// finish syncs, unmounts, detaches the loop device and ejects the media.
func (r *run) finish() error {
	unix.Sync()
	if err := r.unmountAll(); err != nil {
		return err
	}
	r.restoreTune()
	if r.loop != "" {
		if err := detach(r.loop); err != nil {
			return err
		}
		r.logf("finish: %s detached", r.loop)
		r.loop = ""
	}
	unix.Sync()
	if r.cfg.Eject != nil {
		if err := r.cfg.Eject(); err != nil {
			r.logf("finish: warning: eject: %v", err)
		} else {
			r.logf("finish: media ejected")
		}
	}
	return nil
}

// unmountAll unmounts what the run mounted, deepest first, retrying busy
// mounts for a few seconds.
func (r *run) unmountAll() error {
	if r.newRoot != nil {
		r.newRoot.Close()
		r.newRoot = nil
	}
	for i := len(r.mounts) - 1; i >= 0; i-- {
		m := r.mounts[i]
		var err error
		for try := 0; try < 50; try++ {
			err = unix.Unmount(m, 0)
			if err == nil || err == unix.EINVAL || err == unix.ENOENT {
				err = nil
				break
			}
			if err != unix.EBUSY {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			// a recursive bind may hold submounts
			if err2 := unix.Unmount(m, unix.MNT_DETACH); err2 != nil {
				return fmt.Errorf("unmounting %s: %w", m, err)
			}
		}
		r.mounts = r.mounts[:i]
	}
	if r.tmpRoot && r.root != "" {
		os.Remove(r.root)
		r.root, r.tmpRoot = "", false
	}
	return nil
}

// cleanup undoes what a failed or stopped run left mounted or attached.
func (r *run) cleanup() {
	unix.Sync()
	if err := r.unmountAll(); err != nil {
		r.logf("cleanup: %v", err)
	}
	r.restoreTune()
	if r.loop != "" {
		if err := detach(r.loop); err != nil {
			r.logf("cleanup: %v", err)
		}
		r.loop = ""
	}
}

func detach(loop string) error {
	exec.Command("partx", "-d", loop).Run()
	if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup -d %s: %v: %s", loop, err, out)
	}
	return nil
}
