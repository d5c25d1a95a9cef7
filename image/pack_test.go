package image

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	for _, format := range []cpio.Format{cpio.Newc, cpio.CRC} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "node.cpio.gz")
			var warnings []string
			st, sum, err := PackFile(src, img, PackOptions{Format: format, Warn: func(s string) { warnings = append(warnings, s) }})
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
			cmd := exec.Command("sha256sum", "-c", "node.cpio.gz.sha256")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "node.cpio.gz: OK") {
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
