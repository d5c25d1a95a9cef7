package nodesync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Prune removes the blobs that none of keep (the node.files of the
// versions kept) lists and that are not among sums (their node.files
// themselves), and temporary files older than an hour (an interrupted
// publish). It returns how many files it removed and their bytes. The
// store calls it after removing a version; a publish must not run at the
// same time.
func (s *Store) Prune(keep []*Files, sums ...Sum) (int, int64, error) {
	need := map[Sum]bool{}
	for _, f := range keep {
		list, _ := f.Blobs()
		for _, sum := range list {
			need[sum] = true
		}
	}
	for _, sum := range sums {
		need[sum] = true
	}
	var n int
	var freed int64
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != s.dir && filepath.Dir(p) != s.dir {
				return fs.SkipDir // not ours
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		name := d.Name()
		if isTemp(name) {
			if fi.ModTime().After(old) {
				return nil
			}
		} else if sum, err := ParseSum(strings.TrimSuffix(name, ".zst")); err != nil || need[sum] {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		freed += fi.Size()
		return nil
	})
	if err != nil {
		return n, freed, fmt.Errorf("pruning the blob store: %w", err)
	}
	return n, freed, nil
}
