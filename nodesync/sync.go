package nodesync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Sync brings the tree at dir to what f lists, fetching the contents it
// lacks from src, the way si_updateclient does (doc.go says what it
// compares, in what order it changes things and what it never touches).
// Everything is checked and the plan made before the first write; after
// that each entry is either as it was or as the image has it. When some
// were not brought up to date the report lists them and the error is an
// *IncompleteError; a later Sync finishes the job.
func Sync(ctx context.Context, dir string, f *Files, src Source, o Options) (*Report, error) {
	return run(ctx, time.Now(), dir, func() (*Files, error) { return f, nil }, src, o)
}

// SyncSum is Sync with node.files fetched from src by its sha256 (the one
// the version's signed MANIFEST lists; FetchFiles checks it) while the
// node's tree is walked.
func SyncSum(ctx context.Context, dir string, sum Sum, src Source, o Options) (*Report, error) {
	start := time.Now()
	type fetched struct {
		f   *Files
		err error
	}
	ch := make(chan fetched, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel() // when the walk fails first
	go func() {
		f, err := FetchFiles(fctx, src, sum)
		ch <- fetched{f, err}
	}()
	return run(ctx, start, dir, func() (*Files, error) {
		r := <-ch
		return r.f, r.err
	}, src, o)
}

func run(ctx context.Context, start time.Time, dir string, files func() (*Files, error), src Source, o Options) (*Report, error) {
	t, err := openTree(dir)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if err := unix.Flock(t.fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("%s: another sync is running (%w)", dir, err)
	}
	g, err := newGuard(t.root, dir, &o)
	if err != nil {
		return nil, err
	}
	sc, err := t.walk(g)
	if err != nil {
		return nil, err
	}
	f, err := files()
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	p, err := t.plan(f, sc, g, &o)
	if err != nil {
		return nil, err
	}
	rep := &Report{Entries: len(f.Entries), LeftAlone: p.left, Hashed: p.hashed}
	if o.DryRun {
		for _, op := range p.ops {
			rep.add(op.change())
		}
		for _, path := range p.removals {
			if sc.pinned[path] {
				continue
			}
			if o.NoDelete {
				rep.DeletesSkipped++
				continue
			}
			st := sc.local[path]
			c := Change{Path: path, Kind: Removed, Type: localType(st.Mode), What: "not in the image"}
			if c.Type == Regular {
				c.Size = st.Size
			}
			rep.add(c)
		}
	} else {
		s := &syncer{ctx: ctx, t: t, f: f, src: src, o: &o, p: p, s: sc, rep: rep,
			failed: map[string]bool{}, gone: map[string]bool{}, touched: map[string]bool{}}
		s.dirs()
		s.contents()
		s.links()
		s.specials()
		s.metadata()
		s.removals()
		if err := s.version(); err != nil {
			s.fail(versionFile, err)
		}
		s.dirTimes()
		if len(s.touched) > 0 || len(rep.Changes) > 0 {
			if err := unix.Syncfs(t.fd); err != nil {
				return rep, fmt.Errorf("%s: syncfs: %w", dir, err)
			}
		}
	}
	sort.SliceStable(rep.Changes, func(i, j int) bool { return rep.Changes[i].Path < rep.Changes[j].Path })
	sort.SliceStable(rep.Failed, func(i, j int) bool { return rep.Failed[i].Path < rep.Failed[j].Path })
	rep.Duration = time.Since(start)
	if len(rep.Failed) > 0 {
		return rep, &IncompleteError{rep.Failed}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// check makes sure f is what Parse accepts as far as Sync relies on it
// (a Files built by hand could name "/../x"): paths clean, sorted and
// unique, the first the root directory, each in an earlier directory,
// hard links naming earlier regular files.
func (f *Files) check() error {
	kinds := make(map[string]Type, len(f.Entries))
	for i := range f.Entries {
		e := &f.Entries[i]
		if validPath(e.Path) != nil || fieldCounts[e.Type] == 0 {
			return fmt.Errorf("entry %d: bad path %q or type %q", i, e.Path, byte(e.Type))
		}
		if i == 0 {
			if e.Path != "/" || e.Type != Dir {
				return errors.New("the first entry must be the root directory /")
			}
		} else if e.Path <= f.Entries[i-1].Path {
			return fmt.Errorf("%s: entries must be sorted by path, each once", e.Path)
		} else if kinds[parentOf(e.Path)] != Dir {
			return fmt.Errorf("%s: parent is not an earlier directory", e.Path)
		}
		if e.Type == Hardlink && kinds[e.Target] != Regular {
			return fmt.Errorf("%s: hard link to %q, not an earlier regular file", e.Path, e.Target)
		}
		kinds[e.Path] = e.Type
	}
	return nil
}
