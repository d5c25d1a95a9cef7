package versions

import (
	"bytes"
	"compress/gzip"
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
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in, want, next, tag string
		err                 string
	}{
		{in: "1.19", want: "1.19", next: "1.20", tag: "CLONE_1_19"},
		{in: "1.9\n", want: "1.9", next: "1.10", tag: "CLONE_1_9"},
		{in: " 2.0 ", want: "2.0", next: "2.1", tag: "CLONE_2_0"},
		{in: "CLONE_1_19", want: "1.19", next: "1.20", tag: "CLONE_1_19"},
		{in: "1.99", want: "1.99", next: "1.100", tag: "CLONE_1_99"},
		{in: "1", err: "MAJOR.MINOR"},
		{in: "1.05", err: "leading zero"},
		{in: "1.x", err: "not a decimal"},
		{in: "1.2.3", err: "not a decimal"},
		{in: "", err: "MAJOR.MINOR"},
		{in: ".3", err: "empty"},
		{in: "1.-3", err: "not a decimal"},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseVersion(%q) = %v, %v; want error with %q", tt.in, v, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if v.String() != tt.want || v.Next().String() != tt.next || v.Tag() != tt.tag {
			t.Errorf("ParseVersion(%q) = %s next %s tag %s; want %s %s %s", tt.in, v, v.Next(), v.Tag(), tt.want, tt.next, tt.tag)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.9", "1.10", -1}, {"1.10", "1.9", 1}, {"2.0", "1.99", 1}, {"1.19", "1.19", 0}, {"x", "1.0", -1},
	}
	for _, tt := range tests {
		if got := CompareStrings(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareStrings(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestVersionFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	if _, err := ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	for _, v := range []string{"1.9", "1.10", "3.0"} {
		pv, _ := ParseVersion(v)
		if err := WriteFile(p, pv); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != v+"\n" {
			t.Errorf("file holds %q, want %q", b, v+"\n")
		}
		got, err := ReadFile(p)
		if err != nil || got != pv {
			t.Errorf("ReadFile = %v, %v; want %v", got, err, pv)
		}
	}
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: error %v should name %s", err, p)
	}
}

// image writes a small gzip file with distinct content.
func image(t *testing.T, dir, content string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("070701" + content))
	zw.Close()
	p := filepath.Join(dir, content+".cpio.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const layoutText = "label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=2097152, type=83\n"

func layoutFile(t *testing.T, dir string) string {
	p := filepath.Join(dir, "node.sfdisk")
	if err := os.WriteFile(p, []byte(layoutText), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
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
			_, err := s.PublishWith(image(t, src, content), PublishOptions{Version: v, Layout: layout, Note: content, NoPromote: noPromote})
			return err
		}
	}
	steps := []step{
		{name: "publish without layout in empty store", do: publish("a", "", "", false), err: "no layout"},
		{name: "publish first", do: publish("a", "", lay, false), current: "1.0", present: []string{"1.0"}},
		{name: "publish second inherits layout", do: publish("b", "", "", false), current: "1.1", present: []string{"1.0", "1.1"}},
		{name: "publish explicit version", do: publish("c", "1.9", "", false), current: "1.9", present: []string{"1.0", "1.1", "1.9"}},
		{name: "next after 1.9 is 1.10, canary", do: publish("d", "", "", true), current: "1.9", present: []string{"1.0", "1.1", "1.9", "1.10"}},
		{name: "duplicate version refused", do: publish("e", "1.1", "", false), current: "1.9", err: "already exists"},
		{name: "promote canary", do: func() error { return s.Promote("1.10") }, current: "1.10"},
		{name: "promote missing", do: func() error { return s.Promote("4.2") }, current: "1.10", err: "not in the image store"},
		{name: "rollback to previously current", do: func() error { _, err := s.Rollback(); return err }, current: "1.9", bad: []string{"1.10"}},
		{name: "promote bad refused", do: func() error { return s.Promote("1.10") }, current: "1.9", bad: []string{"1.10"}, err: "marked bad"},
		{name: "rollback again skips bad", do: func() error { _, err := s.RollbackWith("nodes hang"); return err }, current: "1.1", bad: []string{"1.10", "1.9"}},
		{name: "prune keeps current and newest", do: func() error { _, err := s.Prune(2); return err }, current: "1.1", bad: []string{"1.10"}, present: []string{"1.1", "1.10"}},
		{name: "rollback with nothing good left", do: func() error { _, err := s.Rollback(); return err }, current: "1.1", bad: []string{"1.10"}, err: "no good version"},
		{name: "force promote clears bad", do: func() error { return s.PromoteForce("1.10") }, current: "1.10", present: []string{"1.1", "1.10"}},
		{name: "prune 0 refused", do: func() error { _, err := s.Prune(0); return err }, current: "1.10", err: "at least 1"},
		{name: "prune 1 keeps only current", do: func() error { _, err := s.Prune(1); return err }, current: "1.10", present: []string{"1.10"}},
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
		if got := strings.TrimSpace(readAlias(t, s, FileName)); got != st.current {
			t.Fatalf("%s: DIR/CLONE_CD_VERSION says %s, want %s", st.name, got, st.current)
		}
		if got := readAlias(t, s, LayoutFile); got != layoutText {
			t.Fatalf("%s: DIR/node.sfdisk = %q", st.name, got)
		}
		// The flat alias serves current's image, whose note names its content.
		img, _ := os.ReadFile(filepath.Join(s.Dir, ImageFile))
		want, _ := os.ReadFile(filepath.Join(src, cur.Note+".cpio.gz"))
		if !bytes.Equal(img, want) {
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
		cmd := exec.Command("sha256sum", "-c", SumFile)
		cmd.Dir = e.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c in %s: %v\n%s", e.Dir, err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(e.Dir, FileName)); string(b) != e.Version+"\n" {
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

func TestPublishRejects(t *testing.T) {
	src := t.TempDir()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lay := layoutFile(t, src)
	notGzip := filepath.Join(src, "x.tar")
	os.WriteFile(notGzip, []byte("hello world"), 0o644)
	badSum := image(t, src, "sum")
	os.WriteFile(badSum+".sha256", []byte(strings.Repeat("0", 64)+"  node.cpio.gz\n"), 0o644)
	goodSum := image(t, src, "good")
	sum, _, _ := hashFile(goodSum)
	os.WriteFile(goodSum+".sha256", []byte(sum+"  node.cpio.gz\n"), 0o644)
	badLayout := filepath.Join(src, "bad.sfdisk")
	os.WriteFile(badLayout, []byte("hello\n"), 0o644)
	tests := []struct {
		name, image, layout, version, err string
	}{
		{"missing image", filepath.Join(src, "nope.gz"), lay, "", "no such file"},
		{"not gzip", notGzip, lay, "", "not a gzip'd cpio"},
		{"sha256 mismatch", badSum, lay, "", "sha256"},
		{"bad version", goodSum, lay, "1.05", "leading zero"},
		{"bad layout", goodSum, badLayout, "", "does not look like an sfdisk layout"},
		{"missing layout", goodSum, filepath.Join(src, "nope.sfdisk"), "", "no such file"},
		{"good with sha256", goodSum, lay, "", ""},
	}
	for _, tt := range tests {
		_, err := s.Publish(tt.image, tt.layout, tt.version, "")
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Errorf("after rejects: %d versions, want 1", len(list))
	}
}

func TestConcurrentPublish(t *testing.T) {
	src := t.TempDir()
	dir := t.TempDir()
	s0, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s0.Publish(image(t, src, "base"), layoutFile(t, src), "", ""); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	got := make([]string, n)
	for i := 0; i < n; i++ {
		img := image(t, src, fmt.Sprintf("img%d", i))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(dir) // each its own Store, as separate processes would
			if err == nil {
				var e *Entry
				e, err = s.Publish(img, "", "", "")
				if e != nil {
					got[i] = e.Version
				}
			}
			errs[i] = err
		}(i)
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
	b, _ := os.ReadFile(filepath.Join(dir, ImageFile))
	if sum, _, _ := hashFile(filepath.Join(dir, ImageFile)); sum != cur.SHA256 || len(b) == 0 {
		t.Errorf("flat alias does not match current %s", cur.Version)
	}
}

func TestAdoptMedusaDir(t *testing.T) {
	dir := t.TempDir()
	img := image(t, dir, "legacy")
	os.Rename(img, filepath.Join(dir, ImageFile))
	os.WriteFile(filepath.Join(dir, FileName), []byte("1.19\n"), 0o644)
	layoutFile(t, dir)
	want, _ := os.ReadFile(filepath.Join(dir, ImageFile))
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.Current()
	if err != nil || cur.Version != "1.19" || !strings.Contains(cur.Note, "adopted") {
		t.Fatalf("adopted current = %+v, %v", cur, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, ImageFile))
	if !bytes.Equal(got, want) {
		t.Fatal("image changed by adoption")
	}
	if l, err := os.Readlink(filepath.Join(dir, ImageFile)); err != nil || l != "current/node.cpio.gz" {
		t.Fatalf("flat node.cpio.gz is not an alias: %q %v", l, err)
	}
	e, err := s.Publish(image(t, t.TempDir(), "next"), "", "", "")
	if err != nil || e.Version != "1.20" {
		t.Fatalf("publish after adopt: %+v %v", e, err)
	}
}

func TestNodes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	s.Publish(image(t, src, "a"), layoutFile(t, src), "1.0", "")
	s.Publish(image(t, src, "b"), "", "1.1", "")
	states := []NodeState{
		{Node: "s002", Version: "1.1", State: "done"},
		{Node: "s001", Version: "1.0", State: "done", Extra: map[string]any{"address": "10.0.0.1"}},
		{Node: "s003", Version: "1.1", State: "cloning"},
	}
	for _, ns := range states {
		if err := s.WriteNodeState(ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteNodeState(NodeState{Node: "../x"}); err == nil {
		t.Error("node name with / accepted")
	}
	// A state file written by someone else, with extra keys.
	os.MkdirAll(filepath.Join(s.Dir, "nodes", "s004"), 0o755)
	os.WriteFile(filepath.Join(s.Dir, "nodes", "s004", "state.json"), []byte(`{"version":"1.0","state":"booted","mac":"52:54:00:00:00:04"}`), 0o644)
	ns, err := s.NodeState("s001")
	if err != nil || ns.Extra["address"] != "10.0.0.1" || ns.Updated.IsZero() || time.Since(ns.Updated) > time.Hour {
		t.Fatalf("NodeState s001 = %+v, %v", ns, err)
	}
	list, _ := s.List()
	want := map[string]string{"1.0": "s001 s004", "1.1": "s002 s003"}
	for _, e := range list {
		if got := strings.Join(e.Nodes, " "); got != want[e.Version] {
			t.Errorf("version %s nodes %q, want %q", e.Version, got, want[e.Version])
		}
	}
}

func TestPrunePinnedAndExtraFiles(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	ks := filepath.Join(src, "ks.cfg")
	os.WriteFile(ks, []byte("%post\ntouch /x\n%end\n"), 0o644)
	lay := layoutFile(t, src)
	if _, err := s.PublishWith(image(t, src, "a"), PublishOptions{Layout: lay, Files: map[string]string{"ks.cfg": ks}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishWith(image(t, src, "b"), PublishOptions{Files: map[string]string{"passwd": ks}}); err == nil || !strings.Contains(err.Error(), "carries only") {
		t.Fatalf("unknown extra file: %v", err)
	}
	for _, c := range []string{"b", "c", "d"} {
		if _, err := s.Publish(image(t, src, c), "", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, "versions", "1.0", "ks.cfg")); err != nil || !strings.Contains(string(b), "%post") {
		t.Fatalf("ks.cfg not published: %v", err)
	}
	os.MkdirAll(filepath.Join(s.Dir, "nodes", "s001"), 0o755)
	os.WriteFile(filepath.Join(s.Dir, "nodes", "s001", "assign"), []byte("1.1\n"), 0o644)
	removed, err := s.Prune(1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range removed {
		names = append(names, e.Version)
	}
	if strings.Join(names, " ") != "1.0 1.2" {
		t.Errorf("pruned %v, want 1.0 1.2 (1.1 pinned for s001, 1.3 current)", names)
	}
}

// TestChangedImage: writing through the flat alias (cp onto
// DIR/node.cpio.gz, the Medusa habit) is detected, not silently served as
// the published version.
func TestChangedImage(t *testing.T) {
	src := t.TempDir()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(image(t, src, "a"), layoutFile(t, src), "", ""); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Current(); cur.Changed {
		t.Fatal("fresh version marked changed")
	}
	b, _ := os.ReadFile(image(t, src, "overwrite-with-longer-content"))
	if err := os.WriteFile(filepath.Join(s.Dir, ImageFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Current()
	if !cur.Changed {
		t.Error("image written through the alias not detected")
	}
}

func TestPruneLeftovers(t *testing.T) {
	src := t.TempDir()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(image(t, src, "a"), layoutFile(t, src), "", ""); err != nil {
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
