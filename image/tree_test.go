package image

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// makeTree builds a tree with every kind of entry a root filesystem has.
// Device nodes need root.
func makeTree(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc/ssh", "usr/bin", "usr/lib", "var/lib/dbus", "devs", "tmp", "empty dir", "data", "proc"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	write := func(name, data string, mode os.FileMode) {
		p := filepath.Join(root, name)
		must(os.WriteFile(p, []byte(data), 0o600))
		must(unix.Chmod(p, uint32(mode))) // raw bits: 0o4755 is setuid
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	write("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640)
	must(os.Chown(filepath.Join(root, "etc/shadow"), 0, 42))
	write("etc/hostname", "golden\n", 0o644)
	write("etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	write("etc/ssh/ssh_host_ed25519_key", "secret\n", 0o600)
	write("var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	write("usr/bin/su", "\x7fELF setuid", 0o4755)
	write("usr/bin/wall", "\x7fELF setgid", 0o2755)
	write("usr/bin/ping", "\x7fELF ping", 0o755)
	write("usr/bin/odd name\twith tab", "x", 0o644)
	write("usr/lib/empty", "", 0o644)
	big := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB
	must(os.WriteFile(filepath.Join(root, "usr/lib/big.so"), big, 0o644))
	write("tmp/junk", "runtime", 0o644)
	must(os.MkdirAll(filepath.Join(root, "home/user/.ssh"), 0o755))
	write("home/user/.ssh/authorized_keys", "ssh-ed25519 AAAA user\n", 0o600)
	for _, d := range []string{"home/user/.ssh", "home/user"} {
		must(os.Chown(filepath.Join(root, d), 1000, 1000))
		must(unix.Chmod(filepath.Join(root, d), 0o700))
	}
	must(os.Chown(filepath.Join(root, "home/user/.ssh/authorized_keys"), 1000, 1000))
	write("proc/cpuinfo", "not really", 0o444)
	must(unix.Chmod(filepath.Join(root, "tmp"), 0o1777))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "etc/abs-link")))
	must(os.Symlink("../../nowhere", filepath.Join(root, "usr/lib/dangling")))
	// hardlink groups: three names, and two names
	write("usr/bin/perl", "perl binary data", 0o755)
	must(os.Link(filepath.Join(root, "usr/bin/perl"), filepath.Join(root, "usr/bin/perl5.36")))
	must(os.Link(filepath.Join(root, "usr/bin/perl"), filepath.Join(root, "usr/lib/perl-alias")))
	write("usr/lib/a", "shared", 0o600)
	must(os.Link(filepath.Join(root, "usr/lib/a"), filepath.Join(root, "usr/lib/b")))
	must(unix.Mkfifo(filepath.Join(root, "devs/initctl"), 0o600))
	must(unix.Mknod(filepath.Join(root, "devs/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(root, "devs/sda1"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 1))))
	must(unix.Mknod(filepath.Join(root, "devs/big"), unix.S_IFCHR|0o600, int(unix.Mkdev(259, 300000))))
	must(os.Chown(filepath.Join(root, "devs/sda1"), 0, 6))
	must(os.Lchown(filepath.Join(root, "etc/abs-link"), 1000, 1000))
	must(os.Chown(filepath.Join(root, "data"), 1000, 100))
	must(os.Chown(filepath.Join(root, "usr/bin/wall"), 0, 5))
	must(unix.Chmod(filepath.Join(root, "usr/bin/wall"), 0o2755)) // chown cleared it
	// file capability, as on Debian's ping (cap_net_raw+ep, v2)
	capv := []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Setxattr(filepath.Join(root, "usr/bin/ping"), "security.capability", capv, 0))
	must(unix.Setxattr(filepath.Join(root, "etc"), "trusted.clonecd-test", []byte("dir xattr"), 0))
	// distinct mtimes, directories last
	i := int64(0)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		i++
		ts := []unix.Timespec{{Sec: 1600000000 + i}, {Sec: 1600000000 + i*7}}
		unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	})
	return root
}

type node struct {
	Mode         uint32
	Uid, Gid     uint32
	Size         int64
	Mtime        int64
	Rdev         uint64
	Link, Digest string
	Xattrs       string
	Group        string // first name of its hardlink group
}

// walkTree describes a tree independently of the package under test.
func walkTree(t testing.TB, root string, skipXattrs bool) map[string]node {
	t.Helper()
	out := map[string]node{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		n := node{Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Mtime: st.Mtim.Sec}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			n.Size = st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Digest = fmt.Sprintf("%x", sha256.Sum256(b))
			if first, ok := inodes[st.Ino]; ok {
				n.Group = first
			} else {
				inodes[st.Ino] = rel
				n.Group = rel
			}
		case syscall.S_IFLNK:
			n.Link, _ = os.Readlink(p)
			n.Mtime = 0 // GNU cpio does not restore symlink times
		case syscall.S_IFCHR, syscall.S_IFBLK:
			n.Rdev = st.Rdev
		case syscall.S_IFDIR:
			if rel == "." {
				n.Mtime = 0
			}
		}
		if !skipXattrs && st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			xs, err := listXattrs(p)
			if err != nil {
				return err
			}
			var s []string
			for _, x := range xs {
				s = append(s, fmt.Sprintf("%s=%x", x.Name, x.Value))
			}
			n.Xattrs = strings.Join(s, ",")
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees reports every difference between two walks; drop lists
// paths expected to be missing from got, emptied those expected empty.
func compareTrees(t testing.TB, want, got map[string]node, drop map[string]bool, emptied map[string]bool) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	bad := 0
	for _, n := range names {
		w := want[n]
		g, ok := got[n]
		if drop[n] {
			if ok {
				t.Errorf("%s: should have been left out", n)
				bad++
			}
			continue
		}
		if emptied[n] {
			w.Size, w.Digest = 0, fmt.Sprintf("%x", sha256.Sum256(nil))
		}
		if !ok {
			t.Errorf("%s: missing", n)
			bad++
		} else if g != w {
			t.Errorf("%s:\n got %+v\nwant %+v", n, g, w)
			bad++
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: extra", n)
		}
	}
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
