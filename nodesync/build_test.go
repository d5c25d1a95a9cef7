package nodesync

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestBuild: node.files of a packed tree lists every entry with its
// metadata, hard links as one file and its other names, device numbers,
// the file capability; the store holds each content once.
func TestBuild(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "setcap")
	dir := t.TempDir()
	big := strings.Repeat("compressible text ", 4096)
	build(t, dir, []node{
		{path: "etc", kind: Dir},
		{path: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n"},
		{path: "etc/shadow", data: "root:*:1::::::\n", mode: 0o640, gid: 42},
		{path: "usr/bin/ping", data: "\x7fELF ping", mode: 0o755, cap: "cap_net_raw+ep"},
		{path: "usr/bin/sudo", data: "\x7fELF sudo", mode: 0o4755},
		{path: "usr/share/a", data: big},
		{path: "usr/share/b", kind: Hardlink, data: "usr/share/a"},
		{path: "usr/share/copy", data: big, uid: 1000, gid: 1000},
		{path: "usr/share/link", kind: Symlink, data: "a"},
		{path: "usr/share/empty", data: ""},
		{path: "dev2/null", kind: Char, rdev: [2]uint32{1, 3}},
		{path: "dev2/fifo", kind: Fifo},
		{path: "name with space\nand newline", data: "x"},
		// Past maxMem: streamed through a temporary file.
		{path: "usr/share/huge-text", data: strings.Repeat("a line of text\n", maxMem/15+100)},
		{path: "usr/share/huge-random", data: pseudoRandom(maxMem + 1000)},
	})
	fixDirTimes(t, dir)
	img := pack(t, dir)
	store := newStore(t)
	out := filepath.Join(t.TempDir(), "node.files")
	f, st, err := Publish(img, store.Dir(), out, BuildOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if again := readFiles(t, raw); len(again.Entries) != len(f.Entries) {
		t.Fatalf("node.files reads back %d entries, Build gave %d", len(again.Entries), len(f.Entries))
	}
	sum := func(s string) Sum { return sha256.Sum256([]byte(s)) }
	for _, tt := range []struct {
		path string
		want Entry
	}{
		{"/", Entry{Type: Dir, Mode: 0o755, Mtime: 1700000000}},
		{"/etc/shadow", Entry{Type: Regular, Mode: 0o640, Gid: 42, Mtime: 1700000000, Size: 15, Sum: sum("root:*:1::::::\n")}},
		{"/usr/bin/sudo", Entry{Type: Regular, Mode: 0o4755, Mtime: 1700000000, Size: 9, Sum: sum("\x7fELF sudo")}},
		{"/usr/share/a", Entry{Type: Regular, Mode: 0o644, Mtime: 1700000000, Size: int64(len(big)), Sum: sum(big)}},
		{"/usr/share/b", Entry{Type: Hardlink, Target: "/usr/share/a", Mode: 0o644, Mtime: 1700000000, Size: int64(len(big)), Sum: sum(big)}},
		{"/usr/share/copy", Entry{Type: Regular, Mode: 0o644, Uid: 1000, Gid: 1000, Mtime: 1700000000, Size: int64(len(big)), Sum: sum(big)}},
		{"/usr/share/link", Entry{Type: Symlink, Target: "a", Mode: 0o777, Mtime: 1700000000}},
		{"/usr/share/empty", Entry{Type: Regular, Mode: 0o644, Mtime: 1700000000, Sum: EmptySum}},
		{"/dev2/null", Entry{Type: Char, Mode: 0o644, Mtime: 1700000000, Major: 1, Minor: 3}},
		{"/dev2/fifo", Entry{Type: Fifo, Mode: 0o644, Mtime: 1700000000}},
		{"/name with space\nand newline", Entry{Type: Regular, Mode: 0o644, Mtime: 1700000000, Size: 1, Sum: sum("x")}},
	} {
		got, ok := f.Lookup(tt.path)
		if !ok {
			t.Errorf("Build: %s missing", tt.path)
			continue
		}
		want := tt.want
		want.Path = tt.path
		if got.Path != want.Path || got.Type != want.Type || got.Mode != want.Mode || got.Uid != want.Uid ||
			got.Gid != want.Gid || got.Mtime != want.Mtime || got.Size != want.Size || got.Sum != want.Sum ||
			got.Target != want.Target || got.Major != want.Major || got.Minor != want.Minor || len(got.Xattrs) != 0 {
			t.Errorf("Build: %s = %+v; want %+v", tt.path, *got, want)
		}
	}
	ping, _ := f.Lookup("/usr/bin/ping")
	if len(ping.Xattrs) != 1 || ping.Xattrs[0].Name != "security.capability" {
		t.Errorf("ping's xattrs = %+v; want security.capability", ping.Xattrs)
	}
	// Contents: passwd, shadow, ping, sudo, big, x, the huge ones.
	if st.Blobs != 8 || st.NewBlobs != 8 {
		t.Errorf("stats = %+v; want 8 blobs, 8 new", *st)
	}
	hugeText, _ := f.Lookup("/usr/share/huge-text")
	hugeRandom, _ := f.Lookup("/usr/share/huge-random")
	for _, s := range []Sum{sum(big), sum("x"), sha256.Sum256(raw), hugeText.Sum, hugeRandom.Sum} {
		b, err := store.Open(s)
		if err != nil {
			t.Fatalf("store lacks %s: %v", s, err)
		}
		rc, err := b.Content()
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(readAll(t, rc)); got != s {
			t.Errorf("blob %s holds content %x", s, got)
		}
		rc.Close()
		b.Close()
	}
	if b, _ := store.Open(sum(big)); b.Encoding != EncZstd || b.Stored >= b.Size/2 {
		t.Errorf("compressible blob stored as %s, %d of %d bytes", b.Encoding, b.Stored, b.Size)
	}
	for _, tt := range []struct {
		sum Sum
		enc string
	}{{sum("x"), EncRaw}, {hugeText.Sum, EncZstd}, {hugeRandom.Sum, EncRaw}} {
		if b, err := store.Open(tt.sum); err != nil || b.Encoding != tt.enc {
			t.Errorf("blob %s: %v, stored as %s; want %s", tt.sum, err, b.Encoding, tt.enc)
		}
	}
	// A second version with the same contents writes no blob.
	_, st2, err := Publish(img, store.Dir(), out, BuildOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if st2.NewBlobs != 0 {
		t.Errorf("republishing wrote %d blobs; want 0", st2.NewBlobs)
	}
	if left := temps(t, store.Dir()); len(left) > 0 {
		t.Errorf("temporary files left in the store: %v", left)
	}
	var b bytes.Buffer
	f.WriteTo(&b)
	if !bytes.Equal(b.Bytes(), raw) {
		t.Errorf("WriteTo differs from the file Publish wrote")
	}
}

// TestPrune: pruning with one version kept removes the blobs only the
// other version had, and nothing the kept one needs.
func TestPrune(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "setcap")
	imgA, imgB := versions(t)
	store := newStore(t)
	filesA := publish(t, imgA, store)
	filesB := publish(t, imgB, store)
	raw, err := filesB.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	n, freed, err := store.Prune([]*Files{filesB}, sha256.Sum256(raw))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || freed == 0 {
		t.Errorf("Prune removed %d blobs (%d bytes); want A's own", n, freed)
	}
	sums, _ := filesB.Blobs()
	for _, s := range append(sums, sha256.Sum256(raw)) {
		if !store.Has(s) {
			t.Errorf("Prune removed %s, which B needs", s)
		}
	}
	old, _ := filesA.Lookup("/usr/share/doc/old.txt")
	if store.Has(old.Sum) {
		t.Errorf("Prune kept %s, which only A had", old.Sum)
	}
}
