package versions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/nodesync"
	"github.com/clonecd/clonecd/swarm"
)

const layoutText = "label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=2097152, type=83\n"

func layoutFile(t *testing.T, dir string) string {
	p := filepath.Join(dir, "node.sfdisk")
	if err := os.WriteFile(p, []byte(layoutText), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func hashFile(t testing.TB, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// readAlias reads a flat alias of the store (DIR/CLONE_CD_VERSION etc.).
func readAlias(t *testing.T, s *Store, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		t.Fatalf("alias %s: %v", name, err)
	}
	return string(b)
}

func TestStoreLifecycle(t *testing.T) {
	src := t.TempDir()
	s, err := Open(filepath.Join(t.TempDir(), "clone_image"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Current(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty store Current: %v", err)
	}
	lay := layoutFile(t, src)
	type step struct {
		name    string
		do      func() error
		current string
		bad     []string
		present []string
		err     string
	}
	publish := func(content, v, layout string, noPromote bool) func() error {
		return func() error {
			_, err := s.Publish(testimage.Write(t, src, content), PublishOptions{Version: v, Layout: layout, Note: content, NoPromote: noPromote})
			return err
		}
	}
	promote := func(v string, force bool) func() error {
		return func() error { _, err := s.Promote(v, force); return err }
	}
	rollback := func(reason string) func() error {
		return func() error { _, err := s.Rollback(reason); return err }
	}
	prune := func(keep int) func() error {
		return func() error { _, err := s.Prune(keep); return err }
	}
	steps := []step{
		{name: "publish without layout in empty store", do: publish("a", "", "", false), err: "no layout"},
		{name: "publish first", do: publish("a", "", lay, false), current: "1.0", present: []string{"1.0"}},
		{name: "publish second inherits layout", do: publish("b", "", "", false), current: "1.1", present: []string{"1.0", "1.1"}},
		{name: "publish explicit version", do: publish("c", "1.9", "", false), current: "1.9", present: []string{"1.0", "1.1", "1.9"}},
		{name: "next after 1.9 is 1.10, canary", do: publish("d", "", "", true), current: "1.9", present: []string{"1.0", "1.1", "1.9", "1.10"}},
		{name: "duplicate version refused", do: publish("e", "1.1", "", false), current: "1.9", err: "already exists"},
		{name: "promote canary", do: promote("1.10", false), current: "1.10"},
		{name: "promote missing", do: promote("4.2", false), current: "1.10", err: "has no version 4.2"},
		{name: "rollback to previously current", do: rollback(""), current: "1.9", bad: []string{"1.10"}},
		{name: "promote bad refused", do: promote("1.10", false), current: "1.9", bad: []string{"1.10"}, err: "marked bad"},
		{name: "rollback again skips bad", do: rollback("nodes hang"), current: "1.1", bad: []string{"1.10", "1.9"}},
		{name: "prune keeps current and newest", do: prune(2), current: "1.1", bad: []string{"1.10"}, present: []string{"1.1", "1.10"}},
		{name: "rollback with nothing good left", do: rollback(""), current: "1.1", bad: []string{"1.10"}, err: "no good version"},
		{name: "force promote clears bad", do: promote("1.10", true), current: "1.10", present: []string{"1.1", "1.10"}},
		{name: "prune 0 refused", do: prune(0), current: "1.10", err: "at least 1"},
		{name: "prune 1 keeps only current", do: prune(1), current: "1.10", present: []string{"1.10"}},
		{name: "publish after prune continues numbering", do: publish("f", "", "", false), current: "1.11", present: []string{"1.10", "1.11"}},
	}
	for _, st := range steps {
		err := st.do()
		if st.err != "" {
			if err == nil || !strings.Contains(err.Error(), st.err) {
				t.Fatalf("%s: error %v, want %q", st.name, err, st.err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		cur, err := s.Current()
		if st.current == "" {
			continue
		}
		if err != nil || cur.Version != st.current {
			t.Fatalf("%s: current %v, %v; want %s", st.name, cur, err, st.current)
		}
		if got := strings.TrimSpace(readAlias(t, s, medium.Version)); got != st.current {
			t.Fatalf("%s: DIR/CLONE_CD_VERSION says %s, want %s", st.name, got, st.current)
		}
		if got := readAlias(t, s, medium.Layout); got != layoutText {
			t.Fatalf("%s: DIR/node.sfdisk = %q", st.name, got)
		}
		// The flat alias serves current's image, whose note names its content.
		if hashFile(t, filepath.Join(s.Dir, medium.ImageGzip)) != hashFile(t, filepath.Join(src, cur.Note+".cpio.gz")) {
			t.Fatalf("%s: DIR/node.cpio.gz is not %s's image", st.name, cur.Note)
		}
		list, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		var names, bad []string
		for _, e := range list {
			names = append(names, e.Version)
			if e.Bad {
				bad = append(bad, e.Version)
			}
			if e.Current != (e.Version == st.current) {
				t.Fatalf("%s: %s Current=%v", st.name, e.Version, e.Current)
			}
		}
		if st.present != nil && strings.Join(names, " ") != strings.Join(st.present, " ") {
			t.Fatalf("%s: versions %v, want %v", st.name, names, st.present)
		}
		if strings.Join(bad, " ") != strings.Join(sortedVersions(st.bad), " ") {
			t.Fatalf("%s: bad %v, want %v", st.name, bad, st.bad)
		}
	}
	// Every version directory verifies with the real sha256sum.
	list, _ := s.List()
	for _, e := range list {
		cmd := exec.Command("sha256sum", "-c", medium.SumName(medium.ImageGzip))
		cmd.Dir = e.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c in %s: %v\n%s", e.Dir, err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(e.Dir, medium.Version)); string(b) != e.Version+"\n" {
			t.Errorf("%s/CLONE_CD_VERSION = %q", e.Dir, b)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(s.Dir, "versions", ".*")); len(leftovers) != 0 {
		t.Errorf("temporary directories left: %v", leftovers)
	}
}

func sortedVersions(v []string) []string {
	out := append([]string(nil), v...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if CompareStrings(out[j], out[i]) < 0 {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// treeHash records every path under dir with its type, size and content
// hash: a listing must leave it equal.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		fmt.Fprintf(&b, "%s %v %d", p, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			b.WriteString(" " + hashFile(t, p))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// TestPublishRejects: what publish refuses, before it writes anything.
func TestPublishRejects(t *testing.T) {
	src := t.TempDir()
	lay := layoutFile(t, src)
	good := testimage.Write(t, src, "good")
	goodData, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(src, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	truncated := write("trunc.cpio.gz", goodData[:len(goodData)-10])
	flipped := append([]byte(nil), goodData...)
	flipped[len(flipped)-6] ^= 0xff // the gzip trailer's CRC
	badSum := write("sum.cpio.gz", goodData)
	write("sum.cpio.gz.sha256", []byte(strings.Repeat("0", 64)+"  sum.cpio.gz\n"))
	badSumFile := write("badsumfile.cpio.gz", goodData)
	write("badsumfile.cpio.gz.sha256", []byte("not a sum\n"))
	tests := []struct {
		name, image, layout, version string
		files                        map[string]string
		err                          string
	}{
		{"missing image", filepath.Join(src, "nope.gz"), lay, "", nil, "no such file"},
		{"not gzip", write("x.tar", []byte("hello world")), lay, "", nil, "x.tar"},
		{"truncated", truncated, lay, "", nil, "trunc.cpio.gz"},
		{"crc flipped", write("crc.cpio.gz", flipped), lay, "", nil, "crc.cpio.gz"},
		{"random gzip", func() string {
			p := testimage.Write(t, src, "z")
			b, _ := os.ReadFile(p)
			return write("rnd.cpio.gz", append(b[:10], bytes.Repeat([]byte{7}, 500)...))
		}(), lay, "", nil, "rnd.cpio.gz"},
		{"sha256 mismatch", badSum, lay, "", nil, "sum.cpio.gz.sha256 says 0000"},
		{"unreadable sha256 file", badSumFile, lay, "", nil, "badsumfile.cpio.gz.sha256: line 1"},
		{"bad version", good, lay, "1.05", nil, "leading zero"},
		{"bad layout", good, write("bad.sfdisk", []byte("hello\n")), "", nil, "does not look like an sfdisk layout"},
		{"missing layout", good, filepath.Join(src, "nope.sfdisk"), "", nil, "nope.sfdisk: no such file"},
		{"unknown extra file", good, lay, "", map[string]string{"passwd": lay}, "carries only"},
		{"missing extra file", good, lay, "", map[string]string{medium.Kickstart: filepath.Join(src, "nope.cfg")}, "nope.cfg"},
		{"directory as image", src, lay, "", nil, "not a regular file"},
	}
	for _, tt := range tests {
		store := filepath.Join(t.TempDir(), "store")
		s, _ := Open(store)
		_, err := s.Publish(tt.image, PublishOptions{Layout: tt.layout, Version: tt.version, Files: tt.files})
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Publish(%s) = %v; want an error with %q", tt.name, err, tt.err)
		}
		if strings.Contains(err.Error(), "publish:") {
			t.Errorf("Publish(%s) = %q; the caller names the command", tt.name, err)
		}
		if _, err := os.Stat(store); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Publish(%s) refused but made %s", tt.name, store)
		}
	}
	// The good image with a matching sha256 file is accepted.
	os.WriteFile(good+".sha256", medium.FormatSum(hashFile(t, good), good), 0o644)
	s, _ := Open(t.TempDir())
	if _, err := s.Publish(good, PublishOptions{Layout: lay}); err != nil {
		t.Errorf("Publish(good image with its sha256) = %v", err)
	}
}

// TestPublishLower: a version lower than current is refused, unless
// forced (then current) or a canary (then not current).
func TestPublishLower(t *testing.T) {
	src := t.TempDir()
	s, _ := Open(t.TempDir())
	if _, err := s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src), Version: "1.20"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		o       PublishOptions
		err     string
		current string
	}{
		{PublishOptions{Version: "0.20"}, "lower than the current version 1.20", "1.20"},
		{PublishOptions{Version: "1.3"}, "lower than the current version 1.20", "1.20"},
		{PublishOptions{Version: "1.3", NoPromote: true}, "", "1.20"},
		{PublishOptions{Version: "0.20", Force: true}, "", "0.20"},
	} {
		before := treeHash(t, s.Dir)
		_, err := s.Publish(testimage.Write(t, src, "v"+tt.o.Version), tt.o)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Publish(%+v) = %v; want %q", tt.o, err, tt.err)
			}
			if treeHash(t, s.Dir) != before {
				t.Errorf("Publish(%+v) was refused but changed the store", tt.o)
			}
		} else if err != nil {
			t.Errorf("Publish(%+v) = %v", tt.o, err)
		}
		if cur, _ := s.Current(); cur == nil || cur.Version != tt.current {
			t.Errorf("after Publish(%+v) current is %v; want %s", tt.o, cur, tt.current)
		}
	}
}

// TestManifest: a published version's MANIFEST lists every file of the
// version with its sha256 and size, and nothing else.
func TestManifest(t *testing.T) {
	src := t.TempDir()
	ks := filepath.Join(src, "ks.cfg")
	os.WriteFile(ks, []byte("%post\ntouch /x\n%end\n"), 0o644)
	kernel := filepath.Join(src, "vmlinuz")
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	s, _ := Open(t.TempDir())
	e, err := s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src),
		Files: map[string]string{medium.Kickstart: ks, medium.Kernel: kernel}, Date: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(e.Dir, medium.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := medium.ParseManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != e.Version || !m.Date.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("MANIFEST names version %s date %s; want %s 2026-01-02T03:04:05Z", m.Version, m.Date, e.Version)
	}
	var onDisk []string
	filepath.WalkDir(e.Dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(e.Dir, p)
		if d.Type().IsRegular() && medium.IsFile(filepath.ToSlash(rel)) && rel != medium.ManifestFile {
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return nil
	})
	want := []string{medium.Version, medium.Kernel, medium.Kickstart, medium.ImageGzip, medium.SumName(medium.ImageGzip), medium.Files, medium.Layout, medium.Torrent}
	if strings.Join(onDisk, " ") != strings.Join(want, " ") {
		t.Errorf("version files %v; want %v", onDisk, want)
	}
	// The swarm's torrent: its infohash is what the signature covers.
	if tb, err := os.ReadFile(filepath.Join(e.Dir, medium.Torrent)); err != nil {
		t.Error(err)
	} else if _, err := swarm.ParseTorrent(tb, m.BTIH[medium.ImageGzip]); err != nil {
		t.Errorf("MANIFEST's btih %q: %v", m.BTIH[medium.ImageGzip], err)
	}
	var listed []string
	for _, mf := range m.Files {
		listed = append(listed, mf.Name)
		b, err := os.ReadFile(filepath.Join(e.Dir, mf.Name))
		if err != nil {
			t.Errorf("MANIFEST lists %s: %v", mf.Name, err)
			continue
		}
		if err := m.CheckBytes(mf.Name, b); err != nil {
			t.Errorf("MANIFEST: %v", err)
		}
	}
	if strings.Join(listed, " ") != strings.Join(onDisk, " ") {
		t.Errorf("MANIFEST lists %v; want every file of the version %v", listed, onDisk)
	}
	if fi, _ := os.Stat(e.Image()); fi.Mode().Perm() != 0o600 {
		t.Errorf("the stored image has mode %o; want 0600 (it holds the node's secrets)", fi.Mode().Perm())
	}
}

func TestConcurrentPublish(t *testing.T) {
	src := t.TempDir()
	dir := t.TempDir()
	s0, _ := Open(dir)
	if _, err := s0.Publish(testimage.Write(t, src, "base"), PublishOptions{Layout: layoutFile(t, src)}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	got := make([]string, n)
	for i := range n {
		img := testimage.Write(t, src, fmt.Sprintf("img%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := Open(dir) // each its own Store, as separate processes would
			e, err := s.Publish(img, PublishOptions{})
			if e != nil {
				got[i] = e.Version
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("publish %d: %v", i, errs[i])
		}
		if seen[got[i]] {
			t.Fatalf("version %s published twice", got[i])
		}
		seen[got[i]] = true
	}
	list, _ := s0.List()
	if len(list) != n+1 || list[n].Version != "1.8" {
		t.Fatalf("versions after concurrent publish: %d, last %s", len(list), list[len(list)-1].Version)
	}
	cur, _ := s0.Current()
	if hashFile(t, filepath.Join(dir, medium.ImageGzip)) != cur.SHA256 {
		t.Errorf("flat alias does not match current %s", cur.Version)
	}
}

// medusaDir makes a Medusa-style directory: plain node.cpio.gz, its
// sha256, node.sfdisk, CLONE_CD_VERSION and a Makefile.
func medusaDir(t *testing.T) string {
	dir := t.TempDir()
	img := testimage.Write(t, dir, "legacy")
	os.Rename(img, filepath.Join(dir, medium.ImageGzip))
	os.WriteFile(filepath.Join(dir, medium.SumName(medium.ImageGzip)), medium.FormatSum(hashFile(t, filepath.Join(dir, medium.ImageGzip)), medium.ImageGzip), 0o644)
	os.WriteFile(filepath.Join(dir, medium.Version), []byte("1.19\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("all:\n"), 0o644)
	layoutFile(t, dir)
	return dir
}

// TestListingsWriteNothing: reading a store (List, Current, Get, plan a
// prune), one that does not exist or a Medusa checkout, creates and moves
// nothing; neither do the changes that refuse a Medusa checkout.
func TestListingsWriteNothing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nostore")
	s, err := Open(missing)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(); !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("List of a missing store = %v; want ErrNoStore saying it does not exist", err)
	}
	s.Current()
	s.Get("1.0")
	s.PlanPrune(1)
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading a missing store made %s", missing)
	}

	dir := medusaDir(t)
	before := treeHash(t, dir)
	s, _ = Open(dir)
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Version != "1.19" || !list[0].Current || !list[0].Flat {
		t.Fatalf("List of a Medusa checkout = %+v, %v; want 1.19 current, read in place", list, err)
	}
	if cur, err := s.Current(); err != nil || cur.Image() != filepath.Join(dir, medium.ImageGzip) || cur.SHA256 == "" {
		t.Errorf("Current of a Medusa checkout = %+v, %v", cur, err)
	}
	if e, err := s.Get("1.19"); err != nil || e.Layout() != filepath.Join(dir, medium.Layout) {
		t.Errorf("Get(1.19) of a Medusa checkout = %+v, %v", e, err)
	}
	if _, err := s.Get("1.18"); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Get(1.18) of a Medusa checkout = %v; want ErrNoVersion", err)
	}
	s.PlanPrune(1)
	// Changes other than publish refuse a Medusa checkout, untouched.
	if _, err := s.Promote("1.19", false); err == nil || !strings.Contains(err.Error(), "Medusa-style") {
		t.Errorf("Promote in a Medusa checkout = %v; want a refusal", err)
	}
	if err := s.MarkBad("1.19", "x"); err == nil {
		t.Errorf("MarkBad in a Medusa checkout succeeded")
	}
	if _, err := s.Rollback(""); err == nil {
		t.Errorf("Rollback in a Medusa checkout succeeded")
	}
	if plan, err := s.Prune(1); err != nil || len(plan.Delete) != 0 {
		t.Errorf("Prune(1) in a Medusa checkout = %+v, %v; want nothing deleted", plan, err)
	}
	if after := treeHash(t, dir); after != before {
		t.Errorf("reading a Medusa checkout changed it:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// TestAdoptOnPublish: publishing into a Medusa-style directory adopts it
// first: its image becomes version CLONE_CD_VERSION, the new one the next.
func TestAdoptOnPublish(t *testing.T) {
	dir := medusaDir(t)
	want := hashFile(t, filepath.Join(dir, medium.ImageGzip))
	s, _ := Open(dir)
	e, err := s.Publish(testimage.Write(t, t.TempDir(), "next"), PublishOptions{})
	if err != nil || e.Version != "1.20" {
		t.Fatalf("publish into a Medusa directory = %+v, %v; want 1.20", e, err)
	}
	old, err := s.Get("1.19")
	if err != nil || !strings.Contains(old.Note, "adopted") || old.Flat || hashFile(t, old.Image()) != want {
		t.Fatalf("adopted 1.19 = %+v, %v", old, err)
	}
	if _, err := os.Stat(filepath.Join(old.Dir, medium.ManifestFile)); err != nil {
		t.Errorf("adopted version has no MANIFEST: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(dir, medium.ImageGzip)); err != nil || l != "current/node.cpio.gz" {
		t.Fatalf("flat node.cpio.gz is not an alias: %q %v", l, err)
	}
	// A broken legacy image is not adopted, and nothing moves.
	dir = medusaDir(t)
	os.WriteFile(filepath.Join(dir, medium.ImageGzip), []byte("\x1f\x8bnot really"), 0o644)
	before := treeHash(t, dir)
	s, _ = Open(dir)
	if err := s.Adopt(); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("Adopt of a broken image = %v; want a refusal", err)
	}
	os.Remove(filepath.Join(dir, ".lock"))
	if treeHash(t, dir) != before {
		t.Errorf("a refused adoption changed the directory")
	}
}

// TestOldStore: a version directory written by older clonecd (no
// meta.json, no MANIFEST, the cloner's kernel and initrd flat) is read.
func TestOldStore(t *testing.T) {
	dir := t.TempDir()
	v := filepath.Join(dir, "versions", "1.5")
	os.MkdirAll(v, 0o755)
	img := testimage.Write(t, v, "old")
	os.Rename(img, filepath.Join(v, medium.ImageGzip))
	os.WriteFile(filepath.Join(v, medium.SumName(medium.ImageGzip)), medium.FormatSum(hashFile(t, filepath.Join(v, medium.ImageGzip)), medium.ImageGzip), 0o644)
	os.WriteFile(filepath.Join(v, "vmlinuz"), []byte("kernel"), 0o644)
	os.Symlink("versions/1.5", filepath.Join(dir, "current"))
	s, _ := Open(dir)
	e, err := s.Current()
	if err != nil || e.Version != "1.5" || e.SHA256 != hashFile(t, filepath.Join(v, medium.ImageGzip)) {
		t.Fatalf("Current of an old store = %+v, %v", e, err)
	}
	if got := e.Path(medium.Kernel); got != filepath.Join(v, "vmlinuz") {
		t.Errorf("Path(%s) = %s; want the old flat vmlinuz", medium.Kernel, got)
	}
	if got := e.Path(medium.Initrd); got != filepath.Join(v, filepath.FromSlash(medium.Initrd)) {
		t.Errorf("Path(%s) = %s; want the medium's name (neither exists)", medium.Initrd, got)
	}
}

func TestNodes(t *testing.T) {
	s, _ := Open(t.TempDir())
	src := t.TempDir()
	s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src), Version: "1.0"})
	s.Publish(testimage.Write(t, src, "b"), PublishOptions{Version: "1.1"})
	nodes := s.Nodes(fleet.Limits{})
	for _, st := range []fleet.State{
		{Node: "s002", Version: "1.1", State: fleet.Done},
		{Node: "s001", Version: "1.0", State: fleet.Done},
		{Node: "s003", Version: "1.1", State: fleet.Cloning},
		{Node: "s004", Version: "1.0", State: fleet.Failed},
	} {
		if _, err := nodes.Update(st); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(s.Dir, "nodes", "s004", "state.json"), []byte("{"), 0o644) // one corrupt
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1.0": "s001", "1.1": "s002 s003"}
	for _, e := range list {
		if got := strings.Join(e.Nodes, " "); got != want[e.Version] {
			t.Errorf("version %s nodes %q, want %q", e.Version, got, want[e.Version])
		}
	}
}

// TestPruneHeld: prune keeps versions pinned for a node or that a node is
// waiting for or cloning (reported recently), and says why.
func TestPruneHeld(t *testing.T) {
	s, _ := Open(t.TempDir())
	src := t.TempDir()
	lay := layoutFile(t, src)
	for i, c := range []string{"a", "b", "c", "d", "e", "f"} {
		o := PublishOptions{}
		if i == 0 {
			o.Layout = lay
		}
		if _, err := s.Publish(testimage.Write(t, src, c), o); err != nil {
			t.Fatal(err)
		}
	}
	nodes := s.Nodes(fleet.Limits{})
	nodes.Assign("s001", "1.1")
	nodes.Update(fleet.State{Node: "s002", State: fleet.Cloning, Version: "1.2"})
	nodes.Update(fleet.State{Node: "s003", State: fleet.Waiting, Version: "1.3"})
	nodes.Update(fleet.State{Node: "s004", State: fleet.Done, Version: "1.0"})
	s.now = func() time.Time { return time.Now().Add(StaleClone / 2) }
	plan, err := s.PlanPrune(1)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, h := range plan.Held {
		held = append(held, h.Version+": "+h.Why)
	}
	if got, want := strings.Join(held, "; "), "1.1: pinned for s001; 1.2: s002 is cloning it; 1.3: s003 is waiting for it"; got != want {
		t.Errorf("PlanPrune(1) holds %q; want %q", got, want)
	}
	removed, err := s.Prune(1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range removed.Delete {
		names = append(names, e.Version)
	}
	if strings.Join(names, " ") != "1.0 1.4" {
		t.Errorf("Prune(1) deleted %v; want 1.0 1.4", names)
	}
	// A clone not heard of for StaleClone no longer holds its version.
	s.now = func() time.Time { return time.Now().Add(2 * StaleClone) }
	plan, _ = s.PlanPrune(1)
	if len(plan.Held) != 1 || plan.Held[0].Version != "1.1" {
		t.Errorf("after StaleClone PlanPrune(1) holds %+v; want only the pin 1.1", plan.Held)
	}
}

// TestChangedImage: writing through the flat alias (cp onto
// DIR/node.cpio.gz, the Medusa habit) is detected, not silently served as
// the published version.
func TestChangedImage(t *testing.T) {
	src := t.TempDir()
	s, _ := Open(t.TempDir())
	if _, err := s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src)}); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Current(); cur.Changed {
		t.Fatal("fresh version marked changed")
	}
	b, _ := os.ReadFile(testimage.Write(t, src, "overwrite-with-longer-content"))
	if err := os.WriteFile(filepath.Join(s.Dir, medium.ImageGzip), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Current(); !cur.Changed {
		t.Error("image written through the alias not detected")
	}
}

func TestPruneLeftovers(t *testing.T) {
	src := t.TempDir()
	s, _ := Open(t.TempDir())
	if _, err := s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src)}); err != nil {
		t.Fatal(err)
	}
	v := filepath.Join(s.Dir, "versions")
	old := time.Now().Add(-48 * time.Hour)
	for _, d := range []string{".prune-1.3", ".publish-old", ".publish-new", ".adopt-old"} {
		os.MkdirAll(filepath.Join(v, d), 0o755)
	}
	os.Chtimes(filepath.Join(v, ".publish-old"), old, old)
	os.Chtimes(filepath.Join(v, ".adopt-old"), old, old)
	if _, err := s.Prune(1); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(v, ".*"))
	if len(left) != 1 || filepath.Base(left[0]) != ".publish-new" {
		t.Errorf("left after prune: %v, want only the recent .publish-new", left)
	}
}

// TestPruneBlobs: publish fills the blob store from the image and lists
// node.files in MANIFEST; prune removes the blobs only pruned versions
// listed and keeps those of the versions kept.
func TestPruneBlobs(t *testing.T) {
	s, _ := Open(t.TempDir())
	src := t.TempDir()
	lay := layoutFile(t, src)
	blobs := map[string][]nodesync.Sum{}
	for _, c := range []string{"old content", "new content"} {
		e, err := s.Publish(testimage.Write(t, src, c), PublishOptions{Layout: lay})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(e.Path(medium.Files))
		if err != nil {
			t.Fatalf("publish wrote no %s: %v", medium.Files, err)
		}
		files, err := nodesync.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		blobs[e.Version], _ = files.Blobs()
		if len(blobs[e.Version]) == 0 {
			t.Fatalf("version %s: %s lists no content", e.Version, medium.Files)
		}
	}
	store, err := nodesync.OpenStore(s.BlobDir())
	if err != nil {
		t.Fatal(err)
	}
	for v, sums := range blobs {
		for _, sum := range sums {
			if !store.Has(sum) {
				t.Errorf("after publish: version %s's blob %s missing", v, sum)
			}
		}
	}
	if _, err := s.Prune(1); err != nil {
		t.Fatal(err)
	}
	keep := map[nodesync.Sum]bool{}
	for _, sum := range blobs["1.1"] {
		keep[sum] = true
		if !store.Has(sum) {
			t.Errorf("Prune(1) removed blob %s of the kept version 1.1", sum)
		}
	}
	gone := 0
	for _, sum := range blobs["1.0"] {
		if !keep[sum] {
			if store.Has(sum) {
				t.Errorf("Prune(1) kept blob %s that only the pruned 1.0 lists", sum)
			}
			gone++
		}
	}
	if gone == 0 {
		t.Fatal("1.0 and 1.1 share every blob: the test proves nothing")
	}
}
