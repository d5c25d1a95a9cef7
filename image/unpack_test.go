package image

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

// rootEnt is the archive's root directory, mode 0750 at a fixed time.
var rootEnt = ent{name: ".", mode: cpio.TypeDir | 0o750}

// TestUnpackDir: a non-empty DIR is refused without Merge, before any
// write; an image that cannot be opened or is not an archive creates no
// DIR; a new or empty DIR takes the image root's mode, a merged one keeps
// its own (U01, U07, U18).
func TestUnpackDir(t *testing.T) {
	img := rawArchive(t, cpio.Newc, reg("etc/motd", "from the image"), dirEnt("etc"), rootEnt)
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, dir string) // prepares DIR (absent if nil)
		image   []byte                         // nil: a missing image file
		o       UnpackOptions
		want    string // in the error; "" for success
		mode    os.FileMode
		created bool // DIR exists afterwards
	}{
		{name: "new DIR", image: img, mode: 0o750, created: true},
		{name: "empty sticky DIR takes the root's mode", setup: func(t *testing.T, d string) { mkdirMode(t, d, 0o1777) },
			image: img, mode: 0o750, created: true},
		{name: "non-empty DIR", setup: nonEmpty, image: img,
			want: "is not empty (it holds etc): unpack into a new or empty directory, or merge into this one (--merge)", created: true},
		{name: "non-empty DIR, merge", setup: nonEmpty, image: img, o: UnpackOptions{Merge: true}, mode: 0o777 | fs.ModeSticky, created: true},
		{name: "non-empty DIR, merge as the root", setup: nonEmpty, image: img, o: UnpackOptions{Merge: true, RootAttrs: true}, mode: 0o750, created: true},
		{name: "missing image", want: "no such file or directory"},
		{name: "gzip'd text", image: gz([]byte("hello world\n")), want: "gzip'd data: cpio: header at offset 0: not a cpio archive"},
		{name: "DIR is a file", setup: func(t *testing.T, d string) { os.WriteFile(d, []byte("x"), 0o644) },
			image: img, want: "is not a directory", created: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "dir")
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			imgPath := filepath.Join(base, "node.cpio.gz")
			if tt.image != nil {
				os.WriteFile(imgPath, tt.image, 0o600)
			}
			before := listTree(t, base)
			_, err := UnpackFile(imgPath, dir, tt.o)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("UnpackFile = %v; want success", err)
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("UnpackFile = %v; want an error with %q", err, tt.want)
				}
				if after := listTree(t, base); !equalLists(before, after) {
					t.Errorf("a refused unpack changed the tree:\nbefore %q\nafter  %q", before, after)
				}
			}
			fi, err := os.Stat(dir)
			if created := err == nil; created != tt.created {
				t.Fatalf("DIR exists afterwards: %v; want %v", created, tt.created)
			}
			if tt.want != "" || !tt.created {
				return
			}
			if got := fi.Mode() & (fs.ModePerm | fs.ModeSticky); got != tt.mode {
				t.Errorf("DIR mode %v; want %v", got, tt.mode)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "etc/motd")); string(b) != "from the image" {
				t.Errorf("etc/motd = %q", b)
			}
			if tt.o.Merge {
				if b, _ := os.ReadFile(filepath.Join(dir, "keep")); string(b) != "mine" {
					t.Errorf("merge lost DIR's own file: %q", b)
				}
			}
		})
	}
}

func mkdirMode(t *testing.T, d string, mode uint32) {
	t.Helper()
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
}

func nonEmpty(t *testing.T, d string) {
	mkdirMode(t, d, 0o1777)
	os.MkdirAll(filepath.Join(d, "etc"), 0o755)
	os.WriteFile(filepath.Join(d, "etc/motd"), []byte("precious"), 0o644)
	os.WriteFile(filepath.Join(d, "keep"), []byte("mine"), 0o644)
}

func equalLists(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// bigData is n bytes that do not compress away.
func bigData(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08x", uint32(i)*2654435761)
	}
	return b.String()[:n]
}

// TestUnpackRemovesPartialFiles: a file whose data did not arrive whole
// (truncated image, crc mismatch, hardlink group) is removed, never left
// under its name; what came before it is complete (U04).
func TestUnpackRemovesPartialFiles(t *testing.T) {
	big := bigData(3<<20 + 5) // several chunks
	link := func(name, data string) ent {
		return ent{name: name, data: data, mode: cpio.TypeReg | 0o644, nlink: 2, ino: 7}
	}
	plain := rawArchive(t, cpio.Newc, reg("a", "complete"), reg("big", big), reg("z", "after"))
	crc := rawArchive(t, cpio.CRC, reg("a", "complete"), reg("big", big), reg("z", "after"))
	crc[bytes.Index(crc, []byte(big[:64]))+(2<<20)] ^= 1
	links := rawArchive(t, cpio.Newc, reg("a", "complete"), link("l1", ""), link("l2", big))
	cut := func(b []byte) []byte { return b[:bytes.Index(b, []byte(big[:64]))+len(big)/2] }
	for _, tt := range []struct {
		name  string
		in    []byte
		gone  []string
		error string
	}{
		{"truncated", cut(plain), []string{"big", "z"}, `entry "big" at offset 120: truncated data`},
		{"truncated gzip", gz(cut(plain)), []string{"big", "z"}, `entry "big" at offset 120: truncated data`},
		{"truncated zstd", compress(t, Zstd, cut(plain)), []string{"big", "z"}, `entry "big" at offset 120: truncated data`},
		{"crc mismatch", crc, []string{"big", "z"}, `entry "big" at offset 120: checksum mismatch`},
		{"hardlink group", cut(links), []string{"l1", "l2"}, `entry "l2" at offset 236: truncated data`},
	} {
		for _, w := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, w), func(t *testing.T) {
				dir := t.TempDir()
				_, err := Unpack(bytes.NewReader(tt.in), dir, UnpackOptions{Workers: w, NoChown: true})
				if err == nil || !strings.Contains(err.Error(), tt.error) {
					t.Fatalf("Unpack = %v; want %q", err, tt.error)
				}
				if b, err := os.ReadFile(filepath.Join(dir, "a")); string(b) != "complete" {
					t.Errorf("a = %q, %v; want it complete", b, err)
				}
				for _, n := range tt.gone {
					if _, err := os.Lstat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s is there after the failed unpack (%v); want it removed", n, err)
					}
				}
			})
		}
	}
}

// TestUnpackUntrusted: no devices, no setuid/setgid, only user.* xattrs,
// each left out with a warning; FIFOs and the rest as usual.
func TestUnpackUntrusted(t *testing.T) {
	testenv.NeedRoot(t)
	src := makeTree(t)
	if err := unix.Setxattr(filepath.Join(src, "etc/passwd"), "user.note", []byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if _, err := Pack(src, &img, PackOptions{Compress: Zstd}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var warnings []string
	st, err := Unpack(bytes.NewReader(img.Bytes()), out, UnpackOptions{Untrusted: true, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"devs/null", "devs/sda1", "devs/big"} {
		if _, err := os.Lstat(filepath.Join(out, dev)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Untrusted unpack created the device %s (%v)", dev, err)
		}
	}
	if st.Skipped != 3 {
		t.Errorf("Stats.Skipped = %d; want 3 devices", st.Skipped)
	}
	if fi, err := os.Lstat(filepath.Join(out, "devs/initctl")); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("devs/initctl: %v %v; want the FIFO", fi, err)
	}
	for name, want := range map[string]os.FileMode{"usr/bin/su": 0o755, "usr/bin/wall": 0o755, "tmp": 0o777 | fs.ModeSticky} {
		fi, err := os.Lstat(filepath.Join(out, name))
		if err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
	if _, err := unix.Getxattr(filepath.Join(out, "usr/bin/ping"), "security.capability", nil); !errors.Is(err, unix.ENODATA) {
		t.Errorf("ping's capability: %v; want none (ENODATA)", err)
	}
	if _, err := unix.Getxattr(filepath.Join(out, "etc"), "trusted.clonecd-test", nil); !errors.Is(err, unix.ENODATA) {
		t.Errorf("etc's trusted.* xattr: %v; want none", err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(out, "etc/passwd"), "user.note", buf); err != nil || string(buf[:n]) != "kept" {
		t.Errorf("user.note = %q, %v; want kept", buf[:n], err)
	}
	all := strings.Join(warnings, "\n")
	for _, w := range []string{"/devs/null: device 1:3 not created", "/usr/bin/su: setuid/setgid bits dropped",
		"/usr/bin/ping: xattr security.capability not restored", "/etc: xattr trusted.clonecd-test not restored"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}
}

// TestUnpackParallel: the writers give the tree the sequential unpack
// gives, for our archives and GNU's, hardlink data first and last, in
// both compressions; Verify finds no difference. Run it with -race.
func TestUnpackParallel(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "cpio", "find")
	src := makeTree(t)
	for i := 0; i < 36; i++ { // files of every chunk shape
		size := []int{0, 1, 4095, 4097, 40000, 300000, 1 << 20, 1<<20 + 1, 2<<20 + 77}[i%9]
		p := filepath.Join(src, "data", fmt.Sprintf("d%d/f%03d", i%7, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(bigData(size)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, data string) ent {
		return ent{name: name, data: data, mode: cpio.TypeReg | 0o600, nlink: 3, ino: 99}
	}
	dataFirst := rawArchive(t, cpio.CRC, dirEnt("x"), link("x/a", bigData(2<<20)), link("x/b", ""), reg("x/c", "c"), link("c2", ""))
	dir := t.TempDir()
	var ours bytes.Buffer
	if _, err := Pack(src, &ours, PackOptions{Compress: Zstd}); err != nil {
		t.Fatal(err)
	}
	gnu := filepath.Join(dir, "gnu.cpio.gz")
	bash(t, src, "find . -xdev | cpio -o -H newc --quiet | gzip > "+gnu)
	gnuImg, _ := os.ReadFile(gnu)
	for name, img := range map[string][]byte{"ours zstd": ours.Bytes(), "gnu gzip": gnuImg, "hardlink data first": gz(dataFirst)} {
		t.Run(name, func(t *testing.T) {
			var trees []map[string]node
			for _, w := range []int{1, 3} {
				out := filepath.Join(t.TempDir(), "out")
				if _, err := Unpack(bytes.NewReader(img), out, UnpackOptions{Workers: w}); err != nil {
					t.Fatalf("workers=%d: %v", w, err)
				}
				rep, err := Verify(bytes.NewReader(img), out, VerifyOptions{NoExtra: false, Ignore: []string{}, Identity: []string{}})
				if err != nil || !rep.OK() {
					t.Errorf("workers=%d: verify: %v %v", w, err, rep.Differences)
				}
				trees = append(trees, walkTree(t, out, false))
			}
			compareTrees(t, trees[0], trees[1], nil, nil)
		})
	}
}

// TestUnpackStats: the writers count as the sequential unpack does.
func TestUnpackStats(t *testing.T) {
	img := rawArchive(t, cpio.Newc, reg("a", "1234"), reg("b", bigData(3<<20)), sym("s", "a"), rootEnt)
	var sts []Stats
	for _, w := range []int{1, 2} {
		st, err := Unpack(bytes.NewReader(img), t.TempDir(), UnpackOptions{Workers: w, NoChown: true})
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, *st)
	}
	want := Stats{Entries: 4, Files: 2, Dirs: 1, Symlinks: 1, Bytes: 3<<20 + 4}
	if sts[0] != want || sts[1] != want {
		t.Errorf("stats %+v and %+v; want %+v", sts[0], sts[1], want)
	}
}
