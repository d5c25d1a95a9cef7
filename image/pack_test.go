package image

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

var defaultDropped = map[string]bool{
	"tmp/junk": true, "proc/cpuinfo": true, "etc/hostname": true,
	"etc/ssh/ssh_host_ed25519_key": true, "var/lib/dbus/machine-id": true,
}
var defaultEmptied = map[string]bool{"etc/machine-id": true}

// TestRoundTrip: a tree with every kind of entry goes through pack,
// unpack and verify, and an independent walk finds it equal.
func TestRoundTrip(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sha256sum")
	src := makeTree(t)
	want := walkTree(t, src, false)
	if want["usr/bin/su"].Mode&0o4000 == 0 || want["tmp"].Mode&0o1000 == 0 || want["usr/bin/wall"].Mode&0o2000 == 0 ||
		!strings.Contains(want["usr/bin/ping"].Xattrs, "security.capability") || want["usr/lib/b"].Group != "usr/lib/a" {
		t.Fatalf("test tree lacks setuid/sticky/setgid/capability/hardlinks: %+v", want)
	}
	for _, tc := range []struct {
		format cpio.Format
		c      Compression
	}{{cpio.Newc, Gzip}, {cpio.CRC, Gzip}, {cpio.Newc, Zstd}, {cpio.CRC, Zstd}} {
		format := tc.format
		t.Run(format.String()+"/"+tc.c.String(), func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, tc.c.ImageName())
			var warnings []string
			st, sum, err := PackFile(src, img, PackOptions{Format: format, Compress: tc.c, Warn: func(s string) { warnings = append(warnings, s) }})
			if err != nil {
				t.Fatal(err)
			}
			if st.Hardlinks != 3 || st.Devices != 4 || st.Xattrs != 2 || st.Excluded != 5 {
				t.Errorf("pack stats %+v", *st)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			// sha256sum -c accepts the .sha256 file
			cmd := exec.Command("sha256sum", "-c", tc.c.ImageName()+".sha256")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), tc.c.ImageName()+": OK") {
				t.Fatalf("sha256sum -c: %v\n%s", err, out)
			}
			if len(sum) != 64 {
				t.Errorf("sum %q", sum)
			}
			out := filepath.Join(dir, "out")
			os.Mkdir(out, 0o755)
			ust, err := UnpackFile(img, out, UnpackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ust.Files != st.Files || ust.Hardlinks != st.Hardlinks || ust.Bytes != st.Bytes || ust.Xattrs != st.Xattrs {
				t.Errorf("unpack stats %+v, pack stats %+v", *ust, *st)
			}
			compareTrees(t, want, walkTree(t, out, false), defaultDropped, defaultEmptied)
			f, _ := os.Open(img)
			defer f.Close()
			rep, err := Verify(f, out, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || len(rep.Identity) > 0 {
				t.Errorf("verify: %v, identity %v", rep.Differences, rep.Identity)
			}
		})
	}
}

// TestVerifyFindsDifferences changes an unpacked tree in every way verify
// checks and expects each change to be listed.
func TestVerifyFindsDifferences(t *testing.T) {
	testenv.NeedRoot(t)
	src := makeTree(t)
	var img bytes.Buffer
	if _, err := Pack(src, &img, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Unpack(bytes.NewReader(img.Bytes()), out, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	p := func(s string) string { return filepath.Join(out, s) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("etc/passwd"), []byte("root:x:0:0:root:/root:/bin/zz\n"), 0o644)) // same size, other content
	must(os.Chmod(p("usr/bin/su"), 0o755))
	must(os.Chown(p("etc/shadow"), 0, 0))
	must(os.WriteFile(p("usr/lib/empty"), []byte("x"), 0o644))
	must(os.Remove(p("bin")))
	must(os.Symlink("usr/sbin", p("bin")))
	must(os.Remove(p("usr/lib/b")))
	must(os.WriteFile(p("usr/lib/b"), []byte("shared"), 0o600))
	must(os.Remove(p("devs/null")))
	must(os.WriteFile(p("devs/null"), nil, 0o666))
	must(os.Remove(p("usr/bin/wall")))
	must(os.WriteFile(p("usr/bin/new-tool"), []byte("x"), 0o755))
	must(os.WriteFile(p("etc/hostname"), []byte("node7\n"), 0o644))
	must(os.WriteFile(p("etc/machine-id"), []byte("feed\n"), 0o444))
	must(os.WriteFile(p("tmp/runtime"), []byte("ignored\n"), 0o644))
	must(os.Remove(p("usr/bin/ping")))
	must(os.WriteFile(p("usr/bin/ping"), []byte("\x7fELF ping"), 0o755))
	rep, err := Verify(bytes.NewReader(img.Bytes()), out, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range rep.Differences {
		got[d.Path] += d.What + ";"
	}
	for path, want := range map[string]string{
		"/etc/passwd":       "content differs",
		"/usr/bin/su":       "mode 0755, image has 4755",
		"/etc/shadow":       "owner 0:0, image has 0:42",
		"/usr/lib/empty":    "size 1, image has 0",
		"/bin":              `link to "usr/sbin", image has "usr/bin"`,
		"/usr/lib/b":        "not a hardlink of /usr/lib/a",
		"/devs/null":        "is a regular file, image has a char device",
		"/usr/bin/wall":     "missing",
		"/usr/bin/new-tool": "extra regular file",
		"/usr/bin/ping":     "xattr security.capability missing",
	} {
		if !strings.Contains(got[path], want) {
			t.Errorf("%s: differences %q lack %q", path, got[path], want)
		}
		delete(got, path)
	}
	for path, what := range got {
		t.Errorf("unexpected difference %s: %s", path, what)
	}
	var ids []string
	for _, d := range rep.Identity {
		ids = append(ids, d.Path)
	}
	if strings.Join(ids, " ") != "/etc/hostname /etc/machine-id" {
		t.Errorf("identity differences %q", ids)
	}
}

func TestTooLarge(t *testing.T) {
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(4 << 30)
	f.Close()
	_, err = Pack(src, &bytes.Buffer{}, PackOptions{})
	if !errors.Is(err, cpio.ErrTooLarge) || !strings.Contains(err.Error(), "disk.img") || !strings.Contains(err.Error(), "--exclude /disk.img") {
		t.Fatalf("4 GiB file: %v", err)
	}
	filter, _ := NewFilter(false, []string{"/disk.img"}, nil)
	if _, err := Pack(src, &bytes.Buffer{}, PackOptions{Filter: filter}); err != nil {
		t.Fatalf("with --exclude: %v", err)
	}
}

// TestPackFileOutput: outputs pack cannot or must not write are refused
// before packing (the root does not even exist here), naming the path
// (P05, P06, P19).
func TestPackFileOutput(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "outdir"), 0o755)
	os.Mkdir(filepath.Join(dir, "sumdir.cpio.gz.sha256"), 0o755)
	unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600)
	for _, tt := range []struct {
		out  string
		c    Compression
		want string
	}{
		{"outdir", Gzip, "outdir is a directory: give the image's file name (DIR/outdir/node.cpio.gz)"},
		{"outdir", Zstd, "(DIR/outdir/node.cpio.zst)"},
		{"nodir/p.cpio.gz", Gzip, "DIR/nodir/p.cpio.gz: directory DIR/nodir does not exist"},
		{"sumdir.cpio.gz", Gzip, "DIR/sumdir.cpio.gz.sha256 is a directory: the image's sha256 file goes there; move it away"},
		{"fifo", Gzip, "DIR/fifo is not a regular file (p---------): refusing to replace it"},
		{"node.cpio.gz", Zstd, "DIR/node.cpio.gz: a .gz name for a zstd image: name it DIR/node.cpio.zst"},
		{"node.cpio.zst", Gzip, "a .zst name for a gzip image: name it DIR/node.cpio.gz"},
	} {
		_, _, err := PackFile(filepath.Join(dir, "no-such-root"), filepath.Join(dir, tt.out), PackOptions{Compress: tt.c})
		want := strings.ReplaceAll(tt.want, "DIR", dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PackFile(-o %s, %s) = %v; want %q", tt.out, tt.c, err, want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("refused packs left files: %v", ents)
	}
}

// TestPackFilePair: the image is 0600 and its sum 0644; when the old sum
// cannot be replaced both old files stay; when the old image cannot be,
// it stays without a sum; never a new image beside the old sum (P19b).
func TestPackFilePair(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "chattr")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "shadow"), []byte("root:$y$secret"), 0o640)
	dir := t.TempDir()
	img := filepath.Join(dir, "node.cpio.zst")
	if _, _, err := PackFile(src, img, PackOptions{Compress: Zstd}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{img: 0o600, img + ".sha256": 0o644} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v; want mode %v", p, fi.Mode(), err, want)
		}
	}
	oldImg, _ := os.ReadFile(img)
	oldSum, _ := os.ReadFile(img + ".sha256")
	os.WriteFile(filepath.Join(src, "new"), []byte("changes the image"), 0o644)
	for _, tt := range []struct {
		immutable string
		want      string
		sumKept   bool
	}{
		{img + ".sha256", "cannot replace " + img + ".sha256", true},
		{img, "was removed", false},
	} {
		testenv.Run(t, "chattr", "+i", tt.immutable)
		_, _, err := PackFile(src, img, PackOptions{Compress: Zstd})
		testenv.Run(t, "chattr", "-i", tt.immutable)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PackFile with %s immutable = %v; want %q", tt.immutable, err, tt.want)
		}
		if b, _ := os.ReadFile(img); !bytes.Equal(b, oldImg) {
			t.Errorf("with %s immutable the image was replaced", tt.immutable)
		}
		sum, err := os.ReadFile(img + ".sha256")
		if tt.sumKept && !bytes.Equal(sum, oldSum) || !tt.sumKept && err == nil {
			t.Errorf("with %s immutable the sum is %q, %v", tt.immutable, sum, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 2 {
			t.Errorf("temporary files left: %v", ents)
		}
	}
}

// TestPackRefusesTerminal: like gzip(1), pack does not write compressed
// data to a terminal (P20).
func TestPackRefusesTerminal(t *testing.T) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if _, err := Pack(t.TempDir(), tty, PackOptions{}); !errors.Is(err, ErrTerminal) {
		t.Errorf("Pack to a terminal = %v; want ErrTerminal", err)
	}
}
