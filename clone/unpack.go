package clone

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/clonecd/clonecd/progress"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/partition"
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
// points, shallowest first. Preserved partitions are left alone: nothing is
// written to them.
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
		dir := filepath.Join(r.root, p.Mount)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", dir, err)
		}
		if err := unix.Mount(dev, dir, mountFS(p.FS), 0, ""); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", dev, p.FS, dir, err)
		}
		r.mounts = append(r.mounts, dir)
		r.logf("unpack: mounted %s (%s) on %s", dev, p.FS, p.Mount)
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
	want, err := readSum(r.media, "node.cpio.gz.sha256")
	if err != nil {
		return err
	}
	f, err := r.media.Open("node.cpio.gz")
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	var total int64
	if st, err := f.Stat(); err == nil {
		total = st.Size()
	}
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(f, h), total: total, rep: r.cfg.Reporter, log: r.log, t0: time.Now()}
	st, err := image.Unpack(cr, r.root, image.UnpackOptions{Merge: true, RootAttrs: true, Warn: func(w string) { r.logf("unpack: warning: %s", w) }})
	if err != nil {
		return fmt.Errorf("unpacking node.cpio.gz after %s: %w", progress.Bytes(cr.n), err)
	}
	// hash whatever follows the archive's trailer too
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("reading node.cpio.gz: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return fmt.Errorf("node.cpio.gz is corrupt: sha256 %s, node.cpio.gz.sha256 says %s", got, want)
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

// readSum reads the first field of a sha256sum-format file.
func readSum(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", fmt.Errorf("media: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("media %s: not a sha256sum line: %q", name, strings.TrimSpace(string(b)))
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", fmt.Errorf("media %s: %w", name, err)
	}
	return strings.ToLower(f[0]), nil
}

// countReader counts bytes, reports progress and logs every 10%.
type countReader struct {
	r     io.Reader
	n     int64
	total int64
	rep   Reporter
	log   io.Writer
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
			fmt.Fprintf(c.log, "clonecd: unpack: %d%% (%s of %s, %.0fs)\n", pct, progress.Bytes(c.n), progress.Bytes(c.total), time.Since(c.t0).Seconds())
		}
		c.next = (pct/10 + 1) * c.total / 10
	}
	return n, err
}
