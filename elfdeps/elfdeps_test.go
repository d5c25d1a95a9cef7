package elfdeps

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

// TestChrootRun copies each program with exactly what Needs names into an
// empty directory and runs it there with chroot: a missing library or
// interpreter makes it fail. Done for the build host and the golden root.
func TestChrootRun(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "chroot")
	roots := map[string]string{"host": "/", "golden": testenv.GoldenRoot(t)}
	progs := map[string][]string{
		"mke2fs":    {"-V"},
		"e2fsck":    {"-V"},
		"tune2fs":   {"-l", "/nonexistent"},
		"mkfs.xfs":  {"-V"},
		"mkfs.vfat": {"--help"},
		"sfdisk":    {"--version"},
	}
	for rname, root := range roots {
		r, err := New(root)
		if err != nil {
			t.Fatal(err)
		}
		for prog, args := range progs {
			p, err := r.Lookup(prog)
			if err != nil {
				if rname == "host" {
					t.Errorf("%s: %v", rname, err)
				}
				continue
			}
			files, err := r.Needs(p)
			if err != nil {
				t.Errorf("%s %s: %v", rname, prog, err)
				continue
			}
			if len(files) < 2 {
				t.Errorf("%s %s: only %v (want the interpreter and libc at least)", rname, prog, files)
			}
			dir := t.TempDir()
			real, _ := r.Real(p)
			copyFile(t, real, filepath.Join(dir, "prog"))
			for _, f := range files {
				copyFile(t, f.Src, filepath.Join(dir, f.Dest))
			}
			out, err := exec.Command("chroot", append([]string{dir, "/prog"}, args...)...).CombinedOutput()
			if strings.Contains(string(out), "error while loading shared libraries") || strings.Contains(string(out), "failed to run command") {
				t.Errorf("%s %s in chroot with %v: %v\n%s", rname, prog, files, err, out)
			}
			if len(out) == 0 {
				t.Errorf("%s %s printed nothing in chroot (%v)", rname, prog, err)
			}
		}
	}
}

// TestAgainstLdd compares the host's ldd (the real loader) with Needs for
// the build host's programs: the same library names.
func TestAgainstLdd(t *testing.T) {
	testenv.NeedTools(t, "ldd", "mke2fs")
	r, err := New("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"mke2fs", "mkfs.xfs", "sfdisk", "xorriso"} {
		p, err := r.Lookup(prog)
		if err != nil {
			t.Fatal(err)
		}
		out := testenv.Run(t, "ldd", p)
		var want []string
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || strings.HasPrefix(f[0], "linux-vdso") {
				continue
			}
			want = append(want, filepath.Base(f[0]))
		}
		files, err := r.Needs(p)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, filepath.Base(f.Dest))
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: Needs %v, ldd %v", prog, got, want)
		}
	}
}

func TestRealStaysInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1.2"), []byte("x"), 0o644)
	os.Symlink("libz.so.1.2", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1"))
	os.Symlink("/etc/../../../../etc/passwd", filepath.Join(root, "escape"))
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	r := &Resolver{Root: root}
	for _, c := range []struct{ in, want, err string }{
		{"/lib/x86_64-linux-gnu/libz.so.1", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1.2"), ""},
		{"/escape", "", "no such file"},
		{"/loop1", "", "too many symlinks"},
	} {
		got, err := r.Real(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Real(%s) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Real(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
