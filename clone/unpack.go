package clone

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/partition"
	"github.com/clonecd/clonecd/progress"
)

// mountFS maps a layout filesystem name to the kernel's.
func mountFS(fs string) string {
	switch fs {
	case "fat", "fat16", "fat32", "msdos":
		return "vfat"
	}
	return fs
}

// mountAll mounts the new root and the other partitions at their mount
// points, shallowest first, and opens the root (r.newRoot) through which
// the later steps read and write it. Preserved partitions are left alone:
// nothing is written to them.
func (r *run) mountAll() error {
	if r.root == "" {
		if r.cfg.Work != "" {
			r.root = r.cfg.Work
			if err := os.MkdirAll(r.root, 0o755); err != nil {
				return err
			}
		} else {
			d, err := os.MkdirTemp("", "clonecd-root-")
			if err != nil {
				return err
			}
			r.root, r.tmpRoot = d, true
		}
	}
	var parts []partition.Part
	for _, p := range r.fitted.Parts {
		if p.Mount != "" && strings.HasPrefix(p.Mount, "/") && p.FS != "swap" && p.FS != "" {
			parts = append(parts, p)
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return depth(parts[i].Mount) < depth(parts[j].Mount) })
	for _, p := range parts {
		dev := partition.PartDevice(r.disk, p.Number)
		if r.keep[p.Number] {
			r.logf("unpack: %s (%s) preserved, not mounted", dev, p.Mount)
			continue
		}
		if p.Mount == "/" {
			if err := unix.Mount(dev, r.root, mountFS(p.FS), 0, ""); err != nil {
				return fmt.Errorf("mount %s (%s) on %s: %w", dev, p.FS, r.root, err)
			}
			r.mounts = append(r.mounts, r.root)
			root, err := os.OpenRoot(r.root)
			if err != nil {
				return err
			}
			r.newRoot = root
		} else {
			if r.newRoot == nil {
				return fmt.Errorf("%s is mounted before /", p.Mount)
			}
			if err := r.mountIn(dev, strings.TrimPrefix(path.Clean(p.Mount), "/"), mountFS(p.FS), 0); err != nil {
				return err
			}
		}
		r.logf("unpack: mounted %s (%s) on %s", dev, p.FS, p.Mount)
	}
	if r.newRoot == nil {
		return fmt.Errorf("the root partition is not mounted")
	}
	return nil
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// unpack streams node.cpio.gz from the media into the mounted partitions
// and checks its sha256 against node.cpio.gz.sha256.
func (r *run) unpack() error {
	if err := r.mountAll(); err != nil {
		return err
	}
	if r.safe != nil {
		// The image's boot/grub and boot/clonecd go to RAM until the whole
		// stream has been unpacked and its sha256 matched: a cut in the
		// middle must not leave the image's grub.cfg (no ramclone entry,
		// another root UUID), grubenv or modules, nor half a cloner
		// kernel, where the node's core.img looks (safety.go).
		if err := r.stageImageBoot(); err != nil {
			return err
		}
	}
	f, err := r.media.Open(r.image)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	var total int64
	if st, err := f.Stat(); err == nil {
		total = st.Size()
	}
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(f, h), total: total, rep: r.cfg.Reporter, log: r.log, what: "unpack", t0: time.Now()}
	st, err := image.Unpack(cr, r.root, image.UnpackOptions{Merge: true, RootAttrs: true, Warn: func(w string) { r.logf("unpack: warning: %s", w) }})
	if err == nil {
		// hash whatever follows the archive's trailer too
		_, err = io.Copy(io.Discard, cr)
	}
	if mm := (*medium.MismatchError)(nil); errors.As(err, &mm) {
		return fmt.Errorf("%w: not the image the master signed, refused at the end of its stream", mm)
	}
	if err != nil {
		return fmt.Errorf("unpacking %s after %s: %w", r.image, progress.Bytes(cr.n), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != r.imageSum {
		return fmt.Errorf("%s is corrupt: sha256 %s, %s says %s", r.image, got, r.sumFrom(), r.imageSum)
	}
	if r.safe != nil {
		if err := r.unstageImageBoot(); err != nil {
			return err
		}
	}
	sec := time.Since(cr.t0).Seconds()
	r.logf("unpack: %s in %.1fs (%.1f MB/s read, %.1f MB/s written), sha256 ok; %+v", progress.Bytes(cr.n), sec,
		float64(cr.n)/1e6/max(sec, 0.001), float64(st.Bytes)/1e6/max(sec, 0.001), *st)
	return nil
}

// countReader counts bytes, reports progress and logs every 10%.
type countReader struct {
	r     io.Reader
	n     int64
	total int64
	rep   Reporter
	log   io.Writer
	what  string // the log lines' prefix: "unpack"
	t0    time.Time
	next  int64
	lastR time.Time
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.rep != nil && (time.Since(c.lastR) > time.Second || err != nil) {
		c.rep.Progress(c.n, c.total)
		c.lastR = time.Now()
	}
	if c.total > 0 && c.n >= c.next {
		pct := c.n * 100 / c.total
		if c.n > 0 {
			fmt.Fprintf(c.log, "clonecd: %s: %d%% (%s of %s, %.0fs)\n", c.what, pct, progress.Bytes(c.n), progress.Bytes(c.total), time.Since(c.t0).Seconds())
		}
		c.next = (pct/10 + 1) * c.total / 10
	}
	return n, err
}
