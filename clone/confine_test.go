package clone

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// snapshot lists a tree: path, mode and content of every entry.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			b.WriteString(" " + string(c))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestCloneStaysInRoot clones images whose absolute symlinks point at a
// directory standing for the cloner's own tree (or the admin's host):
// etc -> OUT/etc, usr/local -> OUT/opt/local, dev -> OUT/dev. Nothing may
// be written or mounted there. The links mean what they mean on the node
// (inside the new root): hostname and clonecd land in the new root under
// OUT's path, and a dev symlink is refused rather than mounted on.
func TestCloneStaysInRoot(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "mke2fs", "mkswap", "losetup", "partx")
	out := t.TempDir() // "outside": the cloner's / or the admin's host
	for name, content := range map[string]string{"etc/fstab": "HOST FSTAB\n", "etc/hostname": "host\n", "opt/local/sbin/tool": "host tool\n", "dev/null-standin": ""} {
		p := filepath.Join(out, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, out)
	self := filepath.Join(t.TempDir(), "clonecd")
	os.WriteFile(self, []byte("#!/bin/sh\n"), 0o755)
	tests := []struct {
		name  string
		links map[string]string // in the image: name -> target
		ks    string            // ks.cfg ("": none)
		step  string            // the step that fails
		err   string
	}{
		{"etc and usr/local", map[string]string{"etc": out + "/etc", "usr/local": out + "/opt/local"}, "", "bootloader", "neither GRUB"},
		{"dev", map[string]string{"dev": out + "/dev"}, "%post\ntrue\n%end\n", "identity", "the image's /dev is a symlink (to " + out + "/dev): refusing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := t.TempDir()
			os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
			for name, target := range tc.links {
				os.MkdirAll(filepath.Dir(filepath.Join(tree, name)), 0o755)
				if err := os.Symlink(target, filepath.Join(tree, name)); err != nil {
					t.Fatal(err)
				}
			}
			media := t.TempDir()
			makeMedia(t, tree, media)
			os.Remove(filepath.Join(media, "ks.cfg")) // %post --nochroot runs in the cloner by design
			if tc.ks != "" {
				os.WriteFile(filepath.Join(media, "ks.cfg"), []byte(tc.ks), 0o644)
			}
			img := testenv.Sparse(t, "node.img", 3<<30)
			var log bytes.Buffer
			err := Run(context.Background(), Config{Media: os.DirFS(media), Target: img, Hostname: "n1", Self: self, Log: &log})
			t.Logf("clone log:\n%s", log.String())
			var se *StepError
			if !errors.As(err, &se) || se.Step != tc.step || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Run = %v; want a failure at %s with %q", err, tc.step, tc.err)
			}
			if after := snapshot(t, out); after != before {
				t.Errorf("the clone wrote outside the new root:\n%s\nwas\n%s", after, before)
			}
			if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(out)) {
				t.Errorf("something is mounted under %s", out)
			}
			if tc.step != "bootloader" {
				return
			}
			// inside the new root, where the node will look
			n := openNode(t, img)
			if h := n.read(filepath.Join(out, "etc/hostname")); h != "n1\n" {
				t.Errorf("hostname in the new root %q, want n1", h)
			}
			if c := n.read(filepath.Join(out, "opt/local/sbin/clonecd")); c != "#!/bin/sh\n" {
				t.Errorf("/usr/local/sbin/clonecd in the new root %q", c)
			}
		})
	}
}
