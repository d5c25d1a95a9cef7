package elfdeps

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// File is one file a program needs: Dest is its absolute path as the
// program's loader will look for it (inside the root's namespace), Src the
// real file on this machine (symlinks followed inside the root).
type File struct {
	Dest string
	Src  string
}

// Resolver resolves programs and libraries inside Root.
type Resolver struct {
	Root string
	// Dirs are the library directories searched after RPATH/RUNPATH, in
	// order: the root's ld.so.conf entries, then the standard ones.
	Dirs []string
}

// StandardDirs are the loader's built-in directories (Debian multiarch
// first), searched after ld.so.conf.
var StandardDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// New returns a resolver for root ("/" for the build host), reading its
// /etc/ld.so.conf (with include lines).
func New(root string) (*Resolver, error) {
	if root == "" {
		root = "/"
	}
	r := &Resolver{Root: root}
	conf, err := r.ldSoConf("/etc/ld.so.conf", 0)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range append(conf, StandardDirs...) {
		if !seen[d] {
			seen[d] = true
			r.Dirs = append(r.Dirs, d)
		}
	}
	return r, nil
}

func (r *Resolver) ldSoConf(name string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, nil
	}
	real, err := r.Real(name)
	if err != nil {
		return nil, nil // no ld.so.conf: standard dirs only
	}
	f, err := os.Open(real)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("elfdeps: %w", err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "include" {
			for _, pat := range fields[1:] {
				if !path.IsAbs(pat) {
					pat = path.Join(path.Dir(name), pat)
				}
				dir, err := r.Real(path.Dir(pat))
				if err != nil {
					continue
				}
				matches, _ := filepath.Glob(filepath.Join(dir, path.Base(pat)))
				sort.Strings(matches)
				for _, m := range matches {
					sub, err := r.ldSoConf(path.Join(path.Dir(pat), filepath.Base(m)), depth+1)
					if err != nil {
						return nil, err
					}
					dirs = append(dirs, sub...)
				}
			}
			continue
		}
		for _, d := range fields {
			if path.IsAbs(d) {
				dirs = append(dirs, path.Clean(d))
			}
		}
	}
	return dirs, sc.Err()
}

// Real returns the host path of p (absolute inside Root) with every
// symlink followed inside Root: an absolute link target is taken relative
// to Root, never the host's /.
func (r *Resolver) Real(p string) (string, error) {
	rest := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		host := filepath.Join(r.Root, next)
		st, err := os.Lstat(host)
		if err != nil {
			return "", fmt.Errorf("elfdeps: %s in %s: %w", p, r.Root, err)
		}
		if st.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("elfdeps: %s in %s: too many symlinks", p, r.Root)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", fmt.Errorf("elfdeps: %w", err)
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return filepath.Join(r.Root, cur), nil
}

// Lookup finds a program by name in the root's sbin and bin directories
// (or takes an absolute path as is) and returns its path inside the root.
func (r *Resolver) Lookup(prog string) (string, error) {
	if path.IsAbs(prog) {
		if _, err := r.Real(prog); err != nil {
			return "", err
		}
		return prog, nil
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := path.Join(d, prog)
		if real, err := r.Real(p); err == nil {
			if st, err := os.Stat(real); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("elfdeps: program %s not found in %s", prog, r.Root)
}

type elfInfo struct {
	class    elf.Class
	machine  elf.Machine
	interp   string
	needed   []string
	rpath    []string
	runpath  []string
	isStatic bool
}

func readELF(real string) (*elfInfo, error) {
	f, err := elf.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := &elfInfo{class: f.Class, machine: f.Machine}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("PT_INTERP: %w", err)
			}
			info.interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if f.Section(".dynamic") == nil && info.interp == "" {
		info.isStatic = true
		return info, nil
	}
	if info.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("DT_NEEDED: %w", err)
	}
	rp, _ := f.DynString(elf.DT_RPATH)
	rn, _ := f.DynString(elf.DT_RUNPATH)
	for _, s := range rp {
		info.rpath = append(info.rpath, strings.Split(s, ":")...)
	}
	for _, s := range rn {
		info.runpath = append(info.runpath, strings.Split(s, ":")...)
	}
	return info, nil
}

// Static reports whether the program at p (inside the root) has no ELF
// interpreter and no dynamic section.
func (r *Resolver) Static(p string) (bool, error) {
	real, err := r.Real(p)
	if err != nil {
		return false, err
	}
	info, err := readELF(real)
	if err != nil {
		return false, fmt.Errorf("elfdeps: %s: %w", real, err)
	}
	return info.isStatic, nil
}

// Needs returns everything the program at p (absolute inside the root)
// needs to run: its interpreter and the transitive DT_NEEDED libraries,
// each once, in a stable order. The program itself is not included.
func (r *Resolver) Needs(p string) ([]File, error) {
	real, err := r.Real(p)
	if err != nil {
		return nil, err
	}
	top, err := readELF(real)
	if err != nil {
		return nil, fmt.Errorf("elfdeps: %s: %w", real, err)
	}
	var out []File
	seen := map[string]bool{}
	add := func(f File) bool {
		if seen[f.Dest] {
			return false
		}
		seen[f.Dest] = true
		out = append(out, f)
		return true
	}
	if top.interp != "" {
		src, err := r.Real(top.interp)
		if err != nil {
			return nil, fmt.Errorf("elfdeps: %s: interpreter: %w", p, err)
		}
		add(File{Dest: top.interp, Src: src})
	}
	type item struct {
		obj  string // path inside root of the object needing it
		info *elfInfo
	}
	queue := []item{{p, top}}
	byName := map[string]bool{}
	if top.interp != "" {
		// libc names the loader by its soname; it is the interpreter.
		byName[path.Base(top.interp)] = true
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		for _, lib := range it.info.needed {
			if byName[lib] {
				continue
			}
			dest, src, info, err := r.find(lib, it.obj, it.info, top)
			if err != nil {
				return nil, fmt.Errorf("elfdeps: %s (needed by %s): %w", lib, it.obj, err)
			}
			byName[lib] = true
			if add(File{Dest: dest, Src: src}) {
				queue = append(queue, item{dest, info})
			}
		}
	}
	return out, nil
}

var errNotFound = errors.New("not found")

func (r *Resolver) find(lib, obj string, info, top *elfInfo) (dest, src string, li *elfInfo, err error) {
	origin := path.Dir(obj)
	expand := func(d string) string {
		d = strings.ReplaceAll(d, "${ORIGIN}", origin)
		d = strings.ReplaceAll(d, "$ORIGIN", origin)
		d = strings.ReplaceAll(d, "$LIB", "lib64")
		return d
	}
	try := func(cand string) bool {
		real, err := r.Real(cand)
		if err != nil {
			return false
		}
		ci, err := readELF(real)
		if err != nil || ci.class != top.class || ci.machine != top.machine {
			return false
		}
		dest, src, li = cand, real, ci
		return true
	}
	if strings.Contains(lib, "/") {
		if try(lib) {
			return
		}
		return "", "", nil, errNotFound
	}
	var dirs []string
	if len(info.runpath) == 0 {
		dirs = append(dirs, info.rpath...)
	}
	dirs = append(dirs, info.runpath...)
	for _, d := range dirs {
		if d != "" && try(path.Join(expand(d), lib)) {
			return
		}
	}
	for _, d := range r.Dirs {
		if try(path.Join(d, lib)) {
			if !standard(d) {
				// Without ld.so.cache the loader only searches its
				// built-in directories: file it under the first one.
				dest = path.Join(StandardDirs[0], lib)
				if top.machine == elf.EM_AARCH64 {
					dest = path.Join(StandardDirs[2], lib)
				}
			}
			return
		}
	}
	return "", "", nil, errNotFound
}

func standard(d string) bool {
	for _, s := range StandardDirs {
		if s == d {
			return true
		}
	}
	return false
}
