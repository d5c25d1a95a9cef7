package nodesync

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
)

// Publish is the store's hook: it reads the image file, puts every file's
// content into the blob store in blobDir (shared by all versions: a
// content already there is not written again), and writes the image's
// node.files to out (atomically, 0644). node.files itself is stored as a
// blob too, so a node can fetch it by the sha256 the signed MANIFEST
// gives. The caller then lists out in the version's MANIFEST.
func Publish(imagePath, blobDir, out string, o BuildOptions) (*Files, *BuildStats, error) {
	img, err := os.Open(imagePath)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	if o.Store == nil {
		if o.Store, err = OpenStore(blobDir); err != nil {
			return nil, nil, err
		}
	}
	files, st, err := Build(img, o)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", imagePath, err)
	}
	data, err := files.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", imagePath, err)
	}
	if st.FilesSum, err = o.Store.Put(data); err != nil {
		return nil, nil, err
	}
	st.FilesSize = int64(len(data))
	if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
		return nil, nil, err
	}
	return files, st, nil
}

// FetchFiles fetches node.files by its sha256 (the one the version's
// signed MANIFEST lists) from src, checks it and parses it.
func FetchFiles(ctx context.Context, src Source, sum Sum) (*Files, error) {
	var files *Files
	err := src.Fetch(ctx, []Sum{sum}, func(got Sum, r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, maxFiles+1))
		if err != nil {
			return nil // a broken transfer: the source retries
		}
		if len(b) > maxFiles || Sum(sha256Sum(b)) != sum {
			return &MismatchError{Sum: sum, Size: int64(len(b)), Want: int64(len(b))}
		}
		files, err = Parse(bytes.NewReader(b))
		return err
	})
	if err == nil && files == nil {
		err = fmt.Errorf("%s %s: not delivered", medium.Files, sum)
	}
	if err != nil {
		return nil, err
	}
	return files, nil
}

// maxFiles bounds the node.files FetchFiles takes (a million entries).
const maxFiles = 256 << 20
