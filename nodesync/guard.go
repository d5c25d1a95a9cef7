package nodesync

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/image"
)

// NodeState are trees whose contents belong to the running node, not to
// the image (si_updateclient leaves the same alone): sync never changes,
// adds or removes anything in them.
var NodeState = []string{
	"/data/***",
	"/var/log/*",
	"/var/spool/*",
	"/var/lib/dhcp/*",
	"/etc/lvm/backup/*", "/etc/lvm/archive/*", "/etc/lvm/cache/*",
	"/etc/mtab",
	LocalExcludes,
}

// LocalExcludes is the node's own list of patterns sync leaves alone,
// one rsync-style pattern a line (# comments), inside its root.
const LocalExcludes = "/etc/clonecd/sync.exclude"

// versionFile is the identity file sync sets to the version it brought.
const versionFile = "/etc/clonecd-version"

// Why an entry is left alone.
const (
	free     = ""
	identity = "identity file"
	excluded = "excluded"
	mounted  = "another filesystem"
)

// rule is a pattern with the literal prefix every path it matches
// starts with ("" when unanchored): most paths are ruled out by a
// string compare before the regular expression runs.
type rule struct {
	p      *image.Pattern
	prefix string
	any    bool // match files and directories alike (image.IsIdentity does)
}

func newRules(patterns []string, any bool) ([]rule, error) {
	var out []rule
	for _, s := range patterns {
		p, err := image.ParsePattern(s)
		if err != nil {
			return nil, err
		}
		r := rule{p: p, any: any}
		if strings.HasPrefix(s, "/") {
			lit := strings.TrimSuffix(strings.TrimSuffix(s, "/"), "/***")
			if i := strings.IndexAny(lit, `*?[\`); i >= 0 {
				lit = lit[:i]
			}
			r.prefix = lit
		}
		out = append(out, r)
	}
	return out, nil
}

func matchAny(rules []rule, path string, isDir bool) bool {
	for i := range rules {
		r := &rules[i]
		if r.prefix != "" && !strings.HasPrefix(path, r.prefix) {
			continue
		}
		if r.p.Match(path, isDir) || r.any && r.p.Match(path, !isDir) {
			return true
		}
	}
	return false
}

// guard decides what sync leaves alone.
type guard struct {
	identity []rule
	excluded []rule
	mounts   map[string]bool // mount points below the root that sync does not enter
	cross    map[string]bool // mount points below the root that it enters
}

// newGuard reads the node's mount table and its local excludes.
func newGuard(root *os.Root, dir string, o *Options) (*guard, error) {
	g := &guard{mounts: map[string]bool{}, cross: map[string]bool{}}
	var err error
	if g.identity, err = newRules(image.IdentityFiles, true); err != nil {
		return nil, err
	}
	pats := append(append(append([]string{}, image.DefaultExcludes...), NodeState...), o.Exclude...)
	if running, err := runningKernel(dir); err != nil {
		return nil, err
	} else if running != "" {
		pats = append(pats, runningKernelFiles(running)...)
	}
	local, err := readLocalExcludes(root)
	if err != nil {
		return nil, err
	}
	if g.excluded, err = newRules(append(pats, local...), false); err != nil {
		return nil, err
	}
	cross := o.CrossMounts
	if cross == nil {
		cross = []string{"/boot"}
	}
	for _, c := range cross {
		g.cross[filepath.Clean("/"+c)] = true
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer mi.Close()
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, err
	}
	points, err := mountsBelow(mi, abs)
	if err != nil {
		return nil, err
	}
	for _, p := range points {
		if !g.cross[p] {
			g.mounts[p] = true
		}
	}
	return g, nil
}

// check says why path (a child of a directory sync walks) is left alone,
// or free.
func (g *guard) check(path string, isDir bool) string {
	switch {
	case g.mounts[path]:
		return mounted
	case matchAny(g.identity, path, isDir):
		return identity
	case matchAny(g.excluded, path, isDir):
		return excluded
	}
	return free
}

// readLocalExcludes reads LocalExcludes through root; a missing file is
// no patterns.
func readLocalExcludes(root *os.Root) ([]string, error) {
	name := strings.TrimPrefix(LocalExcludes, "/")
	b, err := root.ReadFile(name)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if _, err := image.ParsePattern(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", LocalExcludes, n+1, err)
		}
		out = append(out, line)
	}
	return out, nil
}

// mountsBelow returns the mount points of a mountinfo table strictly
// inside root (an absolute, resolved path), as paths inside root
// ("/data").
func mountsBelow(r io.Reader, root string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 5 {
			return nil, fmt.Errorf("/proc/self/mountinfo: line %d: too few fields", n)
		}
		mp := unescapeOctal(string(f[4]))
		var rel string
		switch {
		case root == "/":
			rel = mp
		case strings.HasPrefix(mp, root+"/"):
			rel = mp[len(root):]
		default:
			continue
		}
		if rel != "/" {
			out = append(out, rel)
		}
	}
	return out, sc.Err()
}

// unescapeOctal undoes the kernel's \040-style escapes of mountinfo.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return len(s) == 3
}

// runningKernel returns the release of the running kernel when dir is
// the running system's root, else "".
func runningKernel(dir string) (string, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(dir, &a); err != nil {
		return "", err
	}
	if err := unix.Stat("/", &b); err != nil {
		return "", err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return "", nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// runningKernelFiles are what sync keeps of the kernel the node runs,
// even when the image no longer has it: its modules (it loads them until
// the reboot) and its files in /boot (GRUB's fallback entry). A sync
// after the node booted another kernel removes them.
func runningKernelFiles(release string) []string {
	var out []string
	for _, p := range []string{"/lib/modules/%s/***", "/usr/lib/modules/%s/***", "/boot/vmlinuz-%s",
		"/boot/initrd.img-%s", "/boot/config-%s", "/boot/System.map-%s"} {
		out = append(out, fmt.Sprintf(p, escapePattern(release)))
	}
	return out
}

// escapePattern makes s match itself in an rsync-style pattern.
func escapePattern(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
