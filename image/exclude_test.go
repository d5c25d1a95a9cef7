package image

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

func TestPatterns(t *testing.T) {
	tests := []struct {
		pat   string
		path  string
		isDir bool
		want  bool
	}{
		{"/proc/*", "/proc/cpuinfo", false, true},
		{"/proc/*", "/proc", true, false},
		{"/proc/*", "/proc/1/status", false, false}, // its directory 1 is excluded already
		{"/proc/*", "/x/proc/cpuinfo", false, false},
		{"lost+found/*", "/lost+found/#123", false, true},
		{"lost+found/*", "/data/lost+found/#1", false, true},
		{"lost+found/*", "/lost+found", true, false},
		{"/etc/ssh/ssh_host_*", "/etc/ssh/ssh_host_ed25519_key.pub", false, true},
		{"/etc/ssh/ssh_host_*", "/etc/ssh/sshd_config", false, false},
		{"*.pyc", "/usr/lib/python3/x.pyc", false, true},
		{"*.pyc", "/x.pyc", false, true},
		{"*.pyc", "/usr/lib/x.pyc.txt", false, false},
		{"cache/*.bin", "/var/cache/apt/pkgcache.bin", false, false},
		{"apt/*.bin", "/var/cache/apt/pkgcache.bin", false, true},
		{"/var/**/*.log", "/var/log/apt/term.log", false, true},
		{"/var/**/*.log", "/var/x.log", false, false},
		{"/home/***", "/home", true, true},
		{"/home/***", "/home/u/.bashrc", false, true},
		{"/home/***", "/homeland", true, false},
		{"build/", "/src/build", true, true},
		{"build/", "/src/build", false, false},
		{"file?.[ch]", "/src/file1.c", false, true},
		{"file?.[!ch]", "/src/file1.c", false, false},
		{"/var/lib/apt/lists/*_*", "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", false, true},
		{"/var/lib/apt/lists/*_*", "/var/lib/apt/lists/lock", false, false},
		{`a\*b`, "/a*b", false, true},
		{`a\*b`, "/axb", false, false},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pat)
		if err != nil {
			t.Fatalf("%q: %v", tt.pat, err)
		}
		if got := p.Match(tt.path, tt.isDir); got != tt.want {
			t.Errorf("%q matching %q (dir %v) = %v, want %v", tt.pat, tt.path, tt.isDir, got, tt.want)
		}
	}
	for _, bad := range []string{"", "x[ab"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad"), []byte("# ok\n\nfine/*\n[oops\n"), 0o644)
	if _, err := ReadPatterns(filepath.Join(dir, "bad")); err == nil || !strings.Contains(err.Error(), "bad:4:") {
		t.Errorf("ReadPatterns: %v, want an error at line 4", err)
	}
	if !IsIdentity("/etc/ssh/ssh_host_rsa_key") || !IsIdentity("/boot/grub/grub.cfg") || IsIdentity("/etc/passwd") {
		t.Error("IsIdentity")
	}
}

func names(t *testing.T, img []byte) []string {
	t.Helper()
	rc, err := Decompress(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	r := cpio.NewReader(rc)
	var out []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !isXattrRecord(h) {
			out = append(out, h.Name)
		}
	}
	return out
}

// TestPackFilters: default excludes, --include overriding them,
// --no-default-excludes, extra excludes, sockets skipped with a warning,
// other filesystems not entered, and a stable order.
func TestPackFilters(t *testing.T) {
	testenv.NeedRoot(t)
	src := makeTree(t)
	l, err := net.Listen("unix", filepath.Join(src, "tmp", "sock")) // excluded with /tmp/*
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l2, err := net.Listen("unix", filepath.Join(src, "usr/lib/agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	mnt := filepath.Join(src, "data")
	os.WriteFile(filepath.Join(src, "data", "hidden-under-mount"), []byte("x"), 0o644)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	os.WriteFile(filepath.Join(mnt, "on-other-fs"), []byte("x"), 0o644)

	pack := func(o PackOptions) ([]string, []string) {
		var warns []string
		o.Warn = func(s string) { warns = append(warns, s) }
		var buf bytes.Buffer
		if _, err := Pack(src, &buf, o); err != nil {
			t.Fatal(err)
		}
		return names(t, buf.Bytes()), warns
	}
	def, warns := pack(PackOptions{})
	if len(warns) != 1 || !strings.Contains(warns[0], "agent.sock: socket skipped") {
		t.Errorf("warnings %q", warns)
	}
	has := func(list []string, n string) bool { return contains(list, n) }
	for _, n := range []string{"tmp", "proc", "data", "etc/machine-id", "usr/bin/ping", "."} {
		if !has(def, n) {
			t.Errorf("default pack lacks %s", n)
		}
	}
	for _, n := range []string{"tmp/junk", "proc/cpuinfo", "etc/hostname", "etc/ssh/ssh_host_ed25519_key", "data/on-other-fs", "usr/lib/agent.sock"} {
		if has(def, n) {
			t.Errorf("default pack holds %s", n)
		}
	}
	// stable: the same order twice, each directory after its contents
	again, _ := pack(PackOptions{})
	if strings.Join(again, "\n") != strings.Join(def, "\n") {
		t.Error("two packs of one tree differ in order")
	}
	if def[len(def)-1] != "." {
		t.Errorf("root is not last: %q", def[len(def)-1])
	}
	pos := map[string]int{}
	for i, n := range def {
		pos[n] = i
	}
	if pos["usr/bin/su"] > pos["usr/bin"] || pos["usr/bin"] > pos["usr"] {
		t.Error("a directory comes before its contents")
	}
	siblings := []string{}
	for _, n := range def {
		if strings.HasPrefix(n, "etc/") && !strings.Contains(n[4:], "/") {
			siblings = append(siblings, n)
		}
	}
	if !sort.StringsAreSorted(siblings) {
		t.Errorf("not sorted: %q", siblings)
	}

	f, _ := NewFilter(false, []string{"*.so", "/usr/bin/perl*"}, []string{"/etc/hostname", "/tmp/junk"})
	inc, _ := pack(PackOptions{Filter: f})
	for n, want := range map[string]bool{"etc/hostname": true, "tmp/junk": true, "usr/lib/big.so": false,
		"usr/bin/perl": false, "usr/bin/perl5.36": false, "usr/lib/perl-alias": true, "proc/cpuinfo": false} {
		if has(inc, n) != want {
			t.Errorf("with excludes and includes: %s present = %v", n, !want)
		}
	}
	f, _ = NewFilter(true, nil, nil)
	all, _ := pack(PackOptions{Filter: f})
	for _, n := range []string{"tmp/junk", "proc/cpuinfo", "etc/hostname", "etc/ssh/ssh_host_ed25519_key", "var/lib/dbus/machine-id"} {
		if !has(all, n) {
			t.Errorf("--no-default-excludes lacks %s", n)
		}
	}
}

// TestPackFileInsideRoot: the image written inside ROOT (and the one it
// replaces) is not packed into itself.
func TestPackFileInsideRoot(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "keep"), []byte("data"), 0o644)
	img := filepath.Join(root, "node.cpio.gz")
	os.WriteFile(img, []byte("old image"), 0o644)
	if _, _, err := PackFile(root, img, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(t, raw), " "); got != "keep ." {
		t.Errorf("image holds %q, want just keep and .", got)
	}
}

func TestMeasure(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.WriteFile(filepath.Join(root, "a/b/f"), make([]byte, 1000), 0o644)
	os.WriteFile(filepath.Join(root, "a/g"), make([]byte, 24), 0o644)
	for _, r := range []string{root, root + "/"} {
		if n, e := Measure(r, nil); n != 1024 || e != 5 {
			t.Errorf("Measure(%s) = %d bytes, %d entries; want 1024, 5", r, n, e)
		}
	}
	onlyEtc, _ := NewFilter(true, []string{"/*"}, []string{"/etc/"})
	if n, e := Measure("/", onlyEtc); n == 0 || e < 10 {
		t.Errorf("Measure(/) of /etc: %d bytes, %d entries", n, e)
	}
}
