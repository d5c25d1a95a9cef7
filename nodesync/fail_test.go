package nodesync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cutWriter aborts the response (the connection drops) after limit
// bytes of body.
type cutWriter struct {
	http.ResponseWriter
	limit int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.limit {
		c.ResponseWriter.Write(p[:c.limit])
		http.NewResponseController(c.ResponseWriter).Flush()
		panic(http.ErrAbortHandler)
	}
	c.limit -= len(p)
	return c.ResponseWriter.Write(p)
}

// flipWriter flips one byte of the content of the blob target (in a
// batch frame or a GET body).
type flipWriter struct {
	http.ResponseWriter
	target  string
	single  bool
	flipped *atomic.Bool
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.flipped.Load() {
		return f.ResponseWriter.Write(p)
	}
	at := -1
	if f.single {
		at = len(p) / 2
	} else if i := bytes.Index(p, []byte(f.target+" ")); i >= 0 {
		if nl := bytes.IndexByte(p[i:], '\n'); nl >= 0 {
			_, _, n, err := parseFrameHeader(string(p[i : i+nl]))
			if err == nil && i+nl+1+int(n)/2 < len(p) {
				at = i + nl + 1 + int(n)/2
			}
		}
	}
	if at < 0 {
		return f.ResponseWriter.Write(p)
	}
	q := bytes.Clone(p)
	q[at] ^= 0x20
	f.flipped.Store(true)
	return f.ResponseWriter.Write(q)
}

// oldOrNew checks that every regular file and symlink of the node is as
// in A or as in B (or absent where one of them lacks it), and that no
// temporary file is left.
func oldOrNew(t *testing.T, dir string, a, b *Files) {
	t.Helper()
	tr, err := openTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	paths := map[string]bool{}
	for _, f := range []*Files{a, b} {
		for _, e := range f.Entries {
			paths[e.Path] = true
		}
	}
	for p := range paths {
		ea, inA := a.Lookup(p)
		eb, inB := b.Lookup(p)
		var st unix.Stat_t
		if err := tr.lstat(p, &st); err != nil {
			if !inA || !inB || strings.HasPrefix(p, "/data/") {
				continue
			}
			t.Errorf("%s: missing, but A and B both have it", p)
			continue
		}
		match := func(e *Entry) bool {
			if e == nil || modeBits(e.Type) != st.Mode&unix.S_IFMT {
				return false
			}
			switch e.Type {
			case Regular, Hardlink:
				sum, _, err := tr.hash(p, nil)
				return err == nil && sum == e.Sum
			case Symlink:
				target, err := readlinkAt(tr, p)
				return err == nil && target == e.Target
			}
			return true
		}
		if !(inA && match(ea)) && !(inB && match(eb)) && !strings.HasPrefix(p, "/etc/") {
			t.Errorf("%s: neither A's nor B's", p)
		}
	}
	if left := temps(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestSyncBroken: a dropped connection or a flipped byte mid-sync leaves
// every file as in A or as in B, no temporary file, the version file
// not written, no removal done; the next sync completes.
func TestSyncBroken(t *testing.T) {
	imgA, imgB, store, filesB := published(t)
	fa, err := os.Open(imgA)
	if err != nil {
		t.Fatal(err)
	}
	filesA, _, err := Build(fa, BuildOptions{})
	fa.Close()
	if err != nil {
		t.Fatal(err)
	}
	lib, _ := filesB.Lookup("/usr/lib/libx.so.2")
	zstdBlob := lib.Sum.String()
	random, _ := filesB.Lookup("/usr/bin/random")
	rawBlob := random.Sum.String()
	if b, err := store.Open(random.Sum); err != nil || b.Encoding != EncRaw {
		t.Fatalf("/usr/bin/random's blob is not stored raw: %v", err)
	}
	for _, tt := range []struct {
		name   string
		source HTTPSource
		wrap   func(flipped *atomic.Bool) func(http.ResponseWriter, *http.Request, http.Handler)
		failed string // a path that must be among the failures
	}{
		{"connection dropped in every batch", HTTPSource{Batch: 3, Retries: -1},
			func(*atomic.Bool) func(http.ResponseWriter, *http.Request, http.Handler) {
				return func(w http.ResponseWriter, r *http.Request, h http.Handler) {
					h.ServeHTTP(&cutWriter{w, 300}, r)
				}
			}, "/usr/lib/libx.so.2"},
		{"flipped byte in a batch", HTTPSource{},
			func(f *atomic.Bool) func(http.ResponseWriter, *http.Request, http.Handler) {
				return func(w http.ResponseWriter, r *http.Request, h http.Handler) {
					h.ServeHTTP(&flipWriter{ResponseWriter: w, target: rawBlob, flipped: f}, r)
				}
			}, "/usr/bin/random"},
		{"flipped byte in a GET", HTTPSource{Single: true},
			func(f *atomic.Bool) func(http.ResponseWriter, *http.Request, http.Handler) {
				return func(w http.ResponseWriter, r *http.Request, h http.Handler) {
					if strings.HasSuffix(r.URL.Path, zstdBlob) {
						w = &flipWriter{ResponseWriter: w, single: true, flipped: f}
					}
					h.ServeHTTP(w, r)
				}
			}, "/usr/lib/libx.so.2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, store)
			var flipped atomic.Bool
			srv.setWrap(tt.wrap(&flipped))
			dir := nodeFrom(t, imgA)
			src := tt.source
			src.URL = srv.URL
			rep, err := Sync(context.Background(), dir, filesB, &src, Options{Version: "1.2"})
			var ie *IncompleteError
			if !errors.As(err, &ie) {
				t.Fatalf("Sync = %v; want an IncompleteError", err)
			}
			if strings.Contains(tt.name, "flipped") && !flipped.Load() {
				t.Fatalf("no byte flipped")
			}
			found := false
			for _, f := range rep.Failed {
				found = found || f.Path == tt.failed
			}
			if !found {
				t.Errorf("failures %v do not name %s", rep.Failed, tt.failed)
			}
			if js, err := json.Marshal(rep.Failed); err != nil || !strings.Contains(string(js), `"Error":"`) {
				t.Errorf("failures as JSON: %s, %v", js, err)
			}
			t.Logf("first sync: %v; %d changes made", err, len(rep.Changes))
			oldOrNew(t, dir, filesA, filesB)
			if _, err := os.Lstat(filepath.Join(dir, "usr/bin/stray")); err != nil || rep.DeletesSkipped == 0 {
				t.Errorf("removals done after a failure")
			}
			if _, err := os.Lstat(filepath.Join(dir, "etc/clonecd-version")); err == nil {
				t.Errorf("version file written after a failure")
			}
			srv.setWrap(nil)
			if _, err := Sync(context.Background(), dir, filesB, &src, Options{Version: "1.2"}); err != nil {
				t.Fatalf("second sync: %v", err)
			}
			for _, d := range verifyImage(t, imgB, dir, leftAlone...).Differences {
				t.Errorf("verify against B: %s", d)
			}
			checkUntouched(t, dir)
		})
	}
}

// stallWriter stops sending (without closing) after limit bytes until
// the client gives up.
type stallWriter struct {
	http.ResponseWriter
	limit int
	ctx   context.Context
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if len(p) > s.limit {
		s.ResponseWriter.Write(p[:s.limit])
		http.NewResponseController(s.ResponseWriter).Flush()
		<-s.ctx.Done()
		panic(http.ErrAbortHandler)
	}
	s.limit -= len(p)
	return s.ResponseWriter.Write(p)
}

// TestSyncRetry: a connection dropped, or an answer that stalls, once is
// taken up again where it broke, and the sync completes in one go.
func TestSyncRetry(t *testing.T) {
	imgA, imgB, store, filesB := published(t)
	for _, tt := range []struct {
		name  string
		spoil func(w http.ResponseWriter, r *http.Request) http.ResponseWriter
	}{
		{"dropped", func(w http.ResponseWriter, r *http.Request) http.ResponseWriter { return &cutWriter{w, 500} }},
		{"stalled", func(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
			return &stallWriter{w, 500, r.Context()}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, store)
			var n atomic.Int64
			srv.setWrap(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
				if n.Add(1) == 1 {
					w = tt.spoil(w, r)
				}
				h.ServeHTTP(w, r)
			})
			dir := nodeFrom(t, imgA)
			src := &HTTPSource{URL: srv.URL, Stall: 300 * time.Millisecond}
			rep, err := Sync(context.Background(), dir, filesB, src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if n.Load() < 2 {
				t.Errorf("%d requests; want a retry", n.Load())
			}
			for _, d := range verifyImage(t, imgB, dir, leftAlone...).Differences {
				t.Errorf("verify against B: %s", d)
			}
			t.Logf("%d blobs fetched in %d requests", rep.FetchedBlobs, n.Load())
		})
	}
}

// TestSyncLocked: a second sync of the same root at once is refused.
func TestSyncLocked(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	files := &Files{Entries: []Entry{{Path: "/", Type: Dir, Mode: 0o755}}}
	if _, err := Sync(context.Background(), dir, files, nil, Options{}); err == nil || !strings.Contains(err.Error(), "another sync") {
		t.Errorf("Sync of a locked root = %v; want a refusal", err)
	}
}
