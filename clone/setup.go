package clone

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/partition"
	"github.com/clonecd/clonecd/progress"
)

// MediaDir opens a clone media directory (a mounted clonecd.iso, or a
// directory holding its files) for Config.Media.
func MediaDir(dir string) (fs.FS, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("media %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("media %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("media %s is not a directory (give the directory holding %s)", dir, medium.ImageGzip)
	}
	return os.DirFS(dir), nil
}

// optional reads a file the media may lack (ks.cfg, nodes, clonecd.conf,
// the cloner's kernel and initrd). Only a missing file is optional
// (ok false, no error): any other failure (a server's 5xx after its
// retries, a timeout, an I/O error) is an error naming the file, so that a
// step never goes on as if %post, the nodes table or the ramclone entry
// did not exist.
func optional(fsys fs.FS, name string) (b []byte, ok bool, err error) {
	b, err = fs.ReadFile(fsys, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("media %s: %w", name, err)
	}
	return b, true, nil
}

// setup reads what the run needs from the media and chooses the node's
// name. Outside network mode it also reads the whole image, so that a
// truncated or corrupted one stops the run before anything is written.
func (r *run) setup() error {
	if err := r.verifyMedia(); err != nil {
		return err
	}
	v, err := fs.ReadFile(r.media, medium.Version)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	r.version = strings.TrimSpace(string(v))
	if r.cfg.Version != "" {
		r.version = r.cfg.Version
	}
	conf, _, err := optional(r.media, medium.Conf)
	if err != nil {
		return err
	}
	r.conf = parseConf(string(conf))
	f, err := r.media.Open(medium.Layout)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	r.layout, err = partition.ParseLayout(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("media %s: %w", medium.Layout, err)
	}
	if r.layout.Part(r.rootNumber()) == nil {
		return fmt.Errorf("media %s: no partition is mounted at / (add a `# clonecd: part=N fs=ext4 mount=/` line)", medium.Layout)
	}
	if r.cfg.Net {
		// Stat would open the image stream: the sum files (or the
		// signed manifest) say which image the server has.
		if err := r.netImage(); err != nil {
			return err
		}
		r.logf("media: version %s, image %s, %s table with %d partitions", r.version, r.image, r.layout.Label, len(r.layout.Parts))
		if err := r.chooseHostname(); err != nil {
			return err
		}
		r.logf("setup: network mode: %s is checked as it streams in (sha256 at its end); until the clone is complete the node's disk boots the cloner (safety net, step partition)", r.image)
		return nil
	}
	if name, sum, ok := r.signedImage(); ok {
		r.image, r.imageSum = name, sum
	} else if r.image, err = medium.FindImage(r.media); err != nil {
		return fmt.Errorf("media: %w", err)
	} else if r.imageSum, err = medium.ReadSum(r.media, r.image); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	st, err := fs.Stat(r.media, r.image)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	r.logf("media: version %s, image %s (%s), %s table with %d partitions", r.version, r.image, progress.Bytes(st.Size()), r.layout.Label, len(r.layout.Parts))
	if err := r.chooseHostname(); err != nil {
		return err
	}
	return r.checkImage(st.Size())
}

// netImage finds the server's image by its sum file (the first of
// medium.Images that has one).
func (r *run) netImage() error {
	if name, sum, ok := r.signedImage(); ok {
		r.image, r.imageSum = name, sum
		return nil
	}
	for _, n := range medium.Images {
		sum, err := medium.ReadSum(r.media, n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("media: %w", err)
		}
		r.image, r.imageSum = n, sum
		return nil
	}
	return fmt.Errorf("media: no image (%s with its %s file)", strings.Join(medium.Images, " or "), medium.SumSuffix)
}

// rootNumber is the number of the layout's partition mounted at /.
func (r *run) rootNumber() int {
	for _, p := range r.layout.Parts {
		if p.Mount == "/" {
			return p.Number
		}
	}
	return 0
}

// checkImage reads the whole image: its sha256 must match the media's sum
// and it must be sound to its end (image.Check: decompression checksums,
// cpio to the trailer).
func (r *run) checkImage(size int64) error {
	t0 := time.Now()
	f, err := r.media.Open(r.image)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	res, err := image.Check(&countReader{r: f, total: size, log: r.log, what: "setup: checking " + r.image, t0: t0})
	if mm := (*medium.MismatchError)(nil); errors.As(err, &mm) {
		return fmt.Errorf("%s is damaged, nothing was written to the disk: %w: not the image the master signed", r.image, mm)
	}
	if err != nil {
		return fmt.Errorf("%s is damaged, nothing was written to the disk: %w", r.image, err)
	}
	if res.SHA256 != r.imageSum {
		return fmt.Errorf("%s is damaged or not the one its sum names, nothing was written to the disk: sha256 %s, %s says %s",
			r.image, res.SHA256, r.sumFrom(), r.imageSum)
	}
	r.logf("setup: %s checked in %.1fs: sha256 matches, %d entries, sound to its end", r.image, time.Since(t0).Seconds(), res.Entries)
	return nil
}

// chooseHostname picks the node's name (given, the nodes table by MAC,
// DHCP's, node-MAC) before anything is written, so that a bad name stops
// the run there.
func (r *run) chooseHostname() error {
	var nodes io.Reader = r.cfg.Nodes
	what := "--nodes table"
	if nodes == nil {
		b, ok, err := optional(r.media, medium.Nodes)
		if err != nil {
			return err
		}
		if ok {
			nodes, what = bytes.NewReader(b), "media "+medium.Nodes
		}
	}
	var table []Node
	if nodes != nil {
		var err error
		if table, err = ParseNodes(nodes); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	macs := r.cfg.MACs
	if macs == nil {
		macs = LocalMACs(r.cfg.SysRoot)
	}
	name, why := ChooseHostname(r.cfg.Hostname, table, macs, r.cfg.DHCPHostname)
	if err := checkHostname(name); err != nil {
		return fmt.Errorf("node name from %s: %w", why, err)
	}
	r.hostname, r.hostnameWhy = name, why
	r.logf("setup: node name %s (%s)", name, why)
	return nil
}

func parseConf(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}
