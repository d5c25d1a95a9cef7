package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
)

// PackFile packs root into the file image and writes image.sha256 beside
// it (sha256sum format). It returns the stats and the hex digest.
//
// Everything that can be checked is checked before packing: image's
// directory exists, image is not a directory or a device, image.sha256
// is not a directory, and a .gz or .zst name matches o.Compress. The
// image is mode 0600 (it holds /etc/shadow and private keys), the sum
// 0644.
//
// The pair is replaced so that a crash at any point leaves the old pair,
// the new pair, or an image without a sum, never an image beside a sum
// that does not match it: both are written to temporary files and
// fsynced; then the old sum is removed (and the directory synced), the
// image renamed into place, and the sum last. A failure after packing
// says which of the two files were replaced.
func PackFile(root, image string, o PackOptions) (*Stats, string, error) {
	sumPath := image + medium.SumSuffix
	if err := checkOutput(image, sumPath, o.Compress); err != nil {
		return nil, "", err
	}
	tmp, err := atomicfile.Create(image, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer tmp.Cleanup()
	// never pack the image into itself, nor the one it replaces
	if fi, err := tmp.Stat(); err == nil {
		o.Skip = append(o.Skip, fi)
	}
	if fi, err := os.Stat(image); err == nil {
		o.Skip = append(o.Skip, fi)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	st, err := Pack(root, bw, o)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return st, "", fmt.Errorf("packing %s into %s: %w", root, image, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	sumTmp, err := atomicfile.Create(sumPath, 0o644)
	if err != nil {
		return st, "", fmt.Errorf("%s: %w (%s unchanged)", sumPath, err, image)
	}
	defer sumTmp.Cleanup()
	if _, err := sumTmp.Write(medium.FormatSum(sum, image)); err != nil {
		return st, "", fmt.Errorf("%s: %w (%s unchanged)", sumPath, err, image)
	}
	// From here on: old pair -> old image alone -> new image alone -> new pair.
	if err := os.Remove(sumPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, "", fmt.Errorf("cannot replace %s: %w (it and %s are unchanged)", sumPath, err, image)
	}
	if err := atomicfile.SyncDir(filepath.Dir(image)); err != nil {
		return st, "", fmt.Errorf("%w (%s was removed, %s is unchanged)", err, sumPath, image)
	}
	if err := tmp.Commit(); err != nil {
		return st, "", fmt.Errorf("%w (the old image, if any, is unchanged; %s was removed)", err, sumPath)
	}
	if err := sumTmp.Commit(); err != nil {
		return st, "", fmt.Errorf("%w (%s is the new image, without a sum)", err, image)
	}
	return st, sum, nil
}

// checkOutput refuses, before packing, an output that cannot be written
// or would replace something that is not an image.
func checkOutput(image, sumPath string, c Compression) error {
	dir := filepath.Dir(image)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: directory %s does not exist", image, dir)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", image, dir)
	}
	for _, p := range []string{image, sumPath} {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir() && p == image:
			return fmt.Errorf("%s is a directory: give the image's file name (%s)", image, filepath.Join(image, c.ImageName()))
		case fi.IsDir():
			return fmt.Errorf("%s is a directory: the image's sha256 file goes there; move it away", p)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file (%s): refusing to replace it", p, fi.Mode().Type())
		}
	}
	want := map[string]Compression{".gz": Gzip, ".zst": Zstd, ".zstd": Zstd}[filepath.Ext(image)]
	if ext := filepath.Ext(image); (ext == ".gz" || strings.HasPrefix(ext, ".zst")) && want != c {
		return fmt.Errorf("%s: a %s name for a %s image: name it %s", image, ext, c,
			strings.TrimSuffix(image, ext)+map[Compression]string{Gzip: ".gz", Zstd: ".zst", None: ""}[c])
	}
	return nil
}

// WriteSum writes image.sha256 in sha256sum format ("HEX  BASENAME"),
// atomically.
func WriteSum(image, sum string) error {
	return atomicfile.WriteFile(image+medium.SumSuffix, medium.FormatSum(sum, image), 0o644)
}
