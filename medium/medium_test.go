package medium

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const (
	h1 = "5f0c0b4a2f1e3d7c9b8a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
	h2 = "9a41000000000000000000000000000000000000000000000000000000000001"
	bt = "1d3b000000000000000000000000000000000001"
)

var goodManifest = "clonecd-manifest 1\nversion 1.20\ndate 2026-12-01T19:11:02Z\n" +
	"file " + h1 + " 262914567 node.cpio.gz\nfile " + h2 + " 345 node.sfdisk\n" +
	"btih " + bt + " node.cpio.gz\n"

func TestManifestRoundTrip(t *testing.T) {
	m, err := ParseManifest(strings.NewReader(goodManifest))
	if err != nil {
		t.Fatalf("ParseManifest(good) = %v", err)
	}
	if m.Version != "1.20" || len(m.Files) != 2 || m.BTIH["node.cpio.gz"] != bt || m.Date != time.Date(2026, 12, 1, 19, 11, 2, 0, time.UTC) {
		t.Errorf("ParseManifest(good) = %+v", m)
	}
	if f, ok := m.Lookup("node.sfdisk"); !ok || f.Size != 345 || f.SHA256 != h2 {
		t.Errorf("Lookup(node.sfdisk) = %+v, %v", f, ok)
	}
	b, err := m.Marshal()
	if err != nil || string(b) != goodManifest {
		t.Errorf("Marshal = %q, %v; want the input back", b, err)
	}
}

// TestParseManifestErrors: each malformed manifest is refused at its line.
func TestParseManifestErrors(t *testing.T) {
	lines := strings.SplitAfter(goodManifest, "\n")
	with := func(i int, s string) string {
		l := append([]string(nil), lines...)
		l[i] = s
		return strings.Join(l, "")
	}
	for _, c := range []struct {
		name string
		in   string
		line int
	}{
		{"empty", "", 1},
		{"other format", with(0, "clonecd-manifest 2\n"), 1},
		{"bad version", with(1, "version 1.x\n"), 2},
		{"version with leading zero", with(1, "version 01.2\n"), 2},
		{"bad date", with(2, "date yesterday\n"), 3},
		{"short sha", with(3, "file abc 1 node.cpio.gz\n"), 4},
		{"upper case sha", with(3, "file "+strings.ToUpper(h1)+" 1 node.cpio.gz\n"), 4},
		{"negative size", with(3, "file "+h1+" -1 node.cpio.gz\n"), 4},
		{"size with plus", with(3, "file "+h1+" +1 node.cpio.gz\n"), 4},
		{"dotdot", with(3, "file "+h1+" 1 ../etc/shadow\n"), 4},
		{"absolute", with(3, "file "+h1+" 1 /etc/shadow\n"), 4},
		{"space in name", with(3, "file "+h1+" 1 node cpio\n"), 4},
		{"unsorted", with(4, "file "+h2+" 1 a.sfdisk\n"), 5},
		{"duplicate", with(4, "file "+h2+" 1 node.cpio.gz\n"), 5},
		{"btih of unknown file", with(5, "btih "+bt+" other\n"), 6},
		{"btih short", with(5, "btih abc node.cpio.gz\n"), 6},
		{"unknown record", with(5, "signature xyz\n"), 6},
		{"no final newline", strings.TrimSuffix(goodManifest, "\n"), 6},
		{"no date", lines[0] + lines[1], 2},
		{"double space", with(3, "file  "+h1+" 1 node.cpio.gz\n"), 4},
	} {
		_, err := ParseManifest(strings.NewReader(c.in))
		var le *LineError
		if !errors.As(err, &le) || le.Line != c.line {
			t.Errorf("ParseManifest(%s) = %v; want an error at line %d", c.name, err, c.line)
		}
	}
	if _, err := ParseManifest(strings.NewReader(goodManifest + strings.Repeat("x", MaxManifest))); err == nil {
		t.Errorf("ParseManifest of more than MaxManifest bytes succeeded")
	}
}

func TestCheck(t *testing.T) {
	content := []byte("label: dos\n")
	m := &Manifest{Version: "1.0", Date: time.Unix(0, 0)}
	m.Add(File{Name: Layout, Size: int64(len(content)), SHA256: "2c6f9d3cb1ad5ab8b51a4c5bb5e4f3e8e0ab6e1b2e0c2c6a8d1b5e4c3a2b1f0e"})
	if err := m.CheckBytes(Layout, content[:4]); err == nil {
		t.Errorf("CheckBytes(short content) succeeded")
	}
	m.Add(File{Name: Layout, Size: int64(len(content)), SHA256: sha(content)})
	if err := m.CheckBytes(Layout, content); err != nil {
		t.Errorf("CheckBytes(right content) = %v", err)
	}
	m.Add(File{Name: Layout, Size: int64(len(content)), SHA256: sha([]byte("other"))})
	var me *MismatchError
	if err := m.CheckBytes(Layout, content); !errors.As(err, &me) || !strings.Contains(err.Error(), Layout) {
		t.Errorf("CheckBytes(wrong sum) = %v; want a MismatchError naming %s", err, Layout)
	}
	if err := m.CheckBytes(Kickstart, content); !errors.Is(err, ErrNotListed) {
		t.Errorf("CheckBytes(unlisted) = %v; want ErrNotListed", err)
	}
}

func TestNewReader(t *testing.T) {
	data := bytes.Repeat([]byte("image "), 50000)
	m := &Manifest{Version: "1.0", Date: time.Unix(0, 0)}
	m.Add(File{Name: ImageGzip, Size: int64(len(data)), SHA256: sha(data)})
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"same", data, true},
		{"flipped", flip(data), false},
		{"short", data[:len(data)-1], false},
		{"long", append(append([]byte(nil), data...), 'x'), false},
	} {
		r, err := m.NewReader(ImageGzip, bytes.NewReader(c.in))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, r)
		if c.ok != (err == nil) {
			t.Errorf("reading %s through NewReader: %v; want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestSums(t *testing.T) {
	fsys := fstest.MapFS{
		"node.cpio.gz.sha256": {Data: []byte("# made by clonecd\n" + strings.ToUpper(h1) + " *node.cpio.gz\n")},
		"bad.sha256":          {Data: []byte("xyz  bad\n")},
		"node.cpio.zst":       {Data: []byte("z")},
	}
	if s, err := ReadSum(fsys, ImageGzip); err != nil || s != h1 {
		t.Errorf("ReadSum(%s) = %q, %v", ImageGzip, s, err)
	}
	if _, err := ReadSum(fsys, "bad"); err == nil || !strings.Contains(err.Error(), "bad.sha256: line 1") {
		t.Errorf("ReadSum(bad) = %v; want an error naming bad.sha256 line 1", err)
	}
	if got := string(FormatSum(h1, "out/node.cpio.gz")); got != h1+"  node.cpio.gz\n" {
		t.Errorf("FormatSum = %q", got)
	}
	if n, err := FindImage(fsys); err != nil || n != ImageZstd {
		t.Errorf("FindImage = %q, %v; want %s", n, err, ImageZstd)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte("clonecd-manifest 1\nversion 1.0\ndate 2026-01-01T00:00:00Z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(bytes.NewReader(b))
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed manifest: %v", err)
		}
		m2, err := ParseManifest(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("parse of Marshal output: %v\n%s", err, out)
		}
		out2, _ := m2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable:\n%s\n%s", out, out2)
		}
	})
}

func sha(b []byte) string { return hexSum(b) }

func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/3] ^= 1
	return c
}

func TestIsFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{Version, true}, {ImageGzip, true}, {SumName(ImageGzip), true}, {ImageZstd, true}, {Layout, true},
		{Kernel, true}, {Initrd, true}, {ManifestFile, true}, {SignatureFile, true}, {Nodes, true},
		{"meta.json", false}, {"vmlinuz", false}, {"nodes/s001/state.json", false}, {"", false}, {"../" + Layout, false},
	} {
		if got := IsFile(tt.name); got != tt.want {
			t.Errorf("IsFile(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

// TestCheckImageName: a .gz, .zst or .zstd name must match the image's
// compression; other names pass.
func TestCheckImageName(t *testing.T) {
	for _, tt := range []struct {
		file, image string
		want        string // "": accepted; else the name the error proposes
	}{
		{"node.cpio.gz", ImageGzip, ""},
		{"/data/old.cpio.zst", ImageZstd, ""},
		{"x.zstd", ImageZstd, ""},
		{"node.img", ImageZstd, ""},
		{"/dev/null", ImageGzip, ""},
		{"/data/node.cpio.gz", ImageZstd, "/data/node.cpio.zst"},
		{"node.cpio.zst", ImageGzip, "node.cpio.gz"},
		{"x.zstd", ImageGzip, "x.gz"},
	} {
		err := CheckImageName(tt.file, tt.image)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), "name it "+tt.want)) {
			t.Errorf("CheckImageName(%q, %q) = %v; want %q", tt.file, tt.image, err, tt.want)
		}
	}
}

// TestManifestImage: Image is the record of whichever image the
// manifest lists.
func TestManifestImage(t *testing.T) {
	for _, names := range [][]string{{ImageGzip}, {ImageZstd, Layout}, {Layout}} {
		m := &Manifest{}
		for _, n := range names {
			m.Add(File{Name: n, Size: 1, SHA256: h1})
		}
		f, ok := m.Image()
		if want := names[0]; IsImage(want) != ok || ok && f.Name != want {
			t.Errorf("Manifest of %v: Image() = %q, %v", names, f.Name, ok)
		}
	}
}
