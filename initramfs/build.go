package initramfs

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/elfdeps"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// Build writes the clone initramfs (gzip'd newc) to w.
func Build(w io.Writer, o Options) (*Summary, error) {
	s := &Summary{}
	t := newTree()
	if err := checkLevel(o.Level); err != nil {
		return nil, err
	}
	if err := o.defaults(s); err != nil {
		return nil, err
	}
	if err := base(t, o.Clonecd); err != nil {
		return nil, err
	}
	r, err := elfdeps.New(o.Root)
	if err != nil {
		return nil, err
	}
	if err := addPrograms(t, r, o, s); err != nil {
		return nil, err
	}
	if err := addBusybox(t, o, s); err != nil {
		return nil, err
	}
	if !o.NoModules {
		if err := addModules(t, o, s); err != nil {
			return nil, err
		}
	}
	// busybox's ash runs its own applets before PATH (standalone shell):
	// make the rescue shell's mke2fs the real one.
	var aliases strings.Builder
	for _, p := range s.Programs {
		fmt.Fprintf(&aliases, "alias %s=/sbin/%s\n", p, p)
	}
	t.bytes("/etc/profile", 0o644, []byte(profile+aliases.String()))
	t.bytes("/etc/clonecd-initramfs", 0o644, []byte(fmt.Sprintf(
		"kernel=%s\nmodules=%d\nfirmware=%d\nprograms=%s\nbusybox=%s\n",
		s.KernelVersion, s.Modules, s.Firmware, strings.Join(s.Programs, " "), s.Busybox)))
	if err := addExtra(t, o.ExtraFiles); err != nil {
		return nil, err
	}
	return s, compress(w, t, o, s)
}

// BuildDir packs the directory dir as an initramfs (gzip'd newc), as it
// is: `make rd` after editing an unpacked one.
func BuildDir(w io.Writer, dir string, o Options) (*Summary, error) {
	if err := checkLevel(o.Level); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("directory %s: %w", dir, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	st, err := os.Stat(filepath.Join(dir, "init"))
	if err != nil {
		return nil, fmt.Errorf("%s has no /init: %w", dir, err)
	}
	if st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s/init is not executable", dir)
	}
	t := newTree()
	if err := t.copyTree("/", dir); err != nil {
		return nil, err
	}
	s := &Summary{}
	for p := range t.m {
		if strings.HasPrefix(p, "/lib/modules/") && strings.Contains(p, ".ko") {
			s.Modules++
		}
		if strings.HasPrefix(p, "/lib/firmware/") && t.m[p].hdr.Type() == cpio.TypeReg {
			s.Firmware++
		}
	}
	if !t.has("/dev/console") {
		t.node("/dev/console", cpio.TypeChar, 0o600, 5, 1)
	}
	return s, compress(w, t, o, s)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// MinLevel and MaxLevel bound Options.Level (0 is the default, 6).
const MinLevel, MaxLevel = 1, 9

func checkLevel(l int) error {
	if l != 0 && (l < MinLevel || l > MaxLevel) {
		return fmt.Errorf("gzip level %d: want %d (fastest) to %d (smallest)", l, MinLevel, MaxLevel)
	}
	return nil
}

func compress(w io.Writer, t *tree, o Options, s *Summary) error {
	level := o.Level
	if level == 0 {
		level = 6
	}
	out := &countWriter{w: w}
	zw, err := pgzip.NewWriterLevel(out, level)
	if err != nil {
		return err
	}
	raw := &countWriter{w: zw}
	n, err := t.write(raw, o.Progress)
	if err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	o.Progress.Done()
	s.Files, s.Uncompressed, s.Compressed = n, raw.n, out.n
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func (o *Options) defaults(s *Summary) error {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Clonecd == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding clonecd itself: %w", err)
		}
		o.Clonecd = exe
	}
	if o.NoModules {
		return nil
	}
	if o.Modules != "" && o.KernelVersion == "" {
		o.KernelVersion = filepath.Base(o.Modules)
	}
	if o.KernelVersion == "" {
		o.KernelVersion = newestKernel(o.Golden)
		if o.KernelVersion == "" {
			o.KernelVersion = newestKernel("/")
		}
		if o.KernelVersion == "" {
			return fmt.Errorf("no module tree under %s/lib/modules or /lib/modules: give the kernel version or --no-modules", o.Golden)
		}
	}
	s.KernelVersion = o.KernelVersion
	modRoot := "/"
	if o.Modules == "" {
		o.Modules = filepath.Join("/lib/modules", o.KernelVersion)
		if o.Golden != "" && exists(filepath.Join(o.Golden, "lib/modules", o.KernelVersion, "modules.dep")) {
			o.Modules = filepath.Join(o.Golden, "lib/modules", o.KernelVersion)
			modRoot = o.Golden
		}
	} else {
		modRoot = filepath.Join(o.Modules, "../../..")
	}
	if !exists(filepath.Join(o.Modules, "modules.dep")) {
		return fmt.Errorf("no modules.dep in %s (kernel %s): run depmod there or give --modules", o.Modules, o.KernelVersion)
	}
	if o.Firmware == "" {
		o.Firmware = filepath.Join(modRoot, "lib/firmware")
	}
	s.ModulesDir = o.Modules
	return nil
}

// newestKernel is uname -r when root is / and its tree exists, else the
// newest /lib/modules/* with a modules.dep under root ("" for none).
func newestKernel(root string) string {
	if root == "" {
		return ""
	}
	if root == "/" {
		var u unix.Utsname
		if unix.Uname(&u) == nil {
			rel := unix.ByteSliceToString(u.Release[:])
			if exists(filepath.Join("/lib/modules", rel, "modules.dep")) {
				return rel
			}
		}
	}
	deps, _ := filepath.Glob(filepath.Join(root, "lib/modules/*/modules.dep"))
	if len(deps) == 0 {
		return ""
	}
	vs := make([]string, len(deps))
	for i, d := range deps {
		vs[i] = filepath.Base(filepath.Dir(d))
	}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	return vs[len(vs)-1]
}

// versionLess compares kernel releases numerically where they are numbers.
func versionLess(a, b string) bool {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' })
	}
	x, y := split(a), split(b)
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] == y[i] {
			continue
		}
		var nx, ny int
		_, ex := fmt.Sscanf(x[i], "%d", &nx)
		_, ey := fmt.Sscanf(y[i], "%d", &ny)
		if ex == nil && ey == nil && nx != ny {
			return nx < ny
		}
		return x[i] < y[i]
	}
	return len(x) < len(y)
}

// base lays out the skeleton: directories, console device, /init and its
// multicall links.
func base(t *tree, clonecd string) error {
	f, err := elf.Open(clonecd)
	if err != nil {
		return fmt.Errorf("clonecd binary %s: %w", clonecd, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			f.Close()
			return fmt.Errorf("%s is dynamically linked; /init must be static (build with CGO_ENABLED=0)", clonecd)
		}
	}
	f.Close()
	for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/lib", "/etc", "/proc", "/sys",
		"/dev", "/run", "/mnt", "/media", "/cdrom", "/target", "/var", "/root"} {
		t.dir(d, 0o755)
	}
	t.dir("/tmp", 0o1777)
	t.node("/dev/console", cpio.TypeChar, 0o600, 5, 1)
	t.node("/dev/null", cpio.TypeChar, 0o666, 1, 3)
	t.node("/dev/tty", cpio.TypeChar, 0o666, 5, 0)
	if err := t.file("/init", clonecd); err != nil {
		return err
	}
	t.m["/init"].hdr.Mode = cpio.TypeReg | 0o755
	t.symlink("/sbin/modprobe", "/init")
	t.symlink("/sbin/init", "/init")
	t.symlink("/bin/clonecd", "/init")
	t.symlink("/var/run", "/run")
	t.bytes("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	t.bytes("/etc/group", 0o644, []byte("root:x:0:\ndisk:x:6:\n"))
	t.bytes("/etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nhosts: files dns\n"))
	t.bytes("/etc/profile", 0o644, []byte(profile))
	t.symlink("/etc/mtab", "/proc/self/mounts")
	return nil
}

const profile = `export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PS1='clonecd rescue:\w# '
echo "clonecd rescue shell: the log is /tmp/clone.log; retry with: clonecd clone"
`

func isScript(real string) bool {
	f, err := os.Open(real)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 2)
	n, _ := f.Read(b)
	return n == 2 && string(b) == "#!"
}

// planned is one file a program brings: a file from src or a symlink.
type planned struct {
	dest, src, link string
	lib             bool
}

// planProgram lists what program name needs from r's root: the program
// (a symlink to a sibling, like mkfs.ext4 → mke2fs, stays a symlink so
// that argv[0] still tells it apart), its interpreter and libraries.
func planProgram(t *tree, r *elfdeps.Resolver, name string, depth int, plan []planned) ([]planned, error) {
	dest := path.Join("/sbin", path.Base(name))
	if t.has(dest) || depth > 8 {
		return plan, nil
	}
	for _, p := range plan {
		if p.dest == dest {
			return plan, nil
		}
	}
	p, err := r.Lookup(name)
	if err != nil {
		return nil, err
	}
	dirReal, err := r.Real(path.Dir(p))
	if err != nil {
		return nil, err
	}
	if target, err := os.Readlink(filepath.Join(dirReal, path.Base(p))); err == nil && !strings.Contains(target, "/") {
		plan, err = planProgram(t, r, path.Join(path.Dir(p), target), depth+1, plan)
		if err != nil {
			return nil, err
		}
		return append(plan, planned{dest: dest, link: target}), nil
	}
	real, err := r.Real(p)
	if err != nil {
		return nil, err
	}
	plan = append(plan, planned{dest: dest, src: real})
	if isScript(real) {
		return plan, nil
	}
	libs, err := r.Needs(p)
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		plan = append(plan, planned{dest: l.Dest, src: l.Src, lib: true})
	}
	return plan, nil
}

// sameFile reports whether two files have the same contents.
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// addPrograms copies the helper programs with their libraries from Root.
// Default programs Root lacks (a golden root without xfsprogs or
// dosfstools) come from the build host when every library they need is
// either new to the image or the very same file already in it; otherwise
// they are reported missing rather than mixing two C libraries.
func addPrograms(t *tree, r *elfdeps.Resolver, o Options, s *Summary) error {
	progs, explicit := o.Programs, true
	if progs == nil {
		progs, explicit = DefaultPrograms, false
	}
	commit := func(plan []planned) error {
		for _, p := range plan {
			switch {
			case t.has(p.dest):
			case p.link != "":
				t.symlink(p.dest, p.link)
			default:
				if err := t.file(p.dest, p.src); err != nil {
					return err
				}
				if p.lib {
					t.m[clean(p.dest)].hdr.Mode = cpio.TypeReg | 0o755
				}
			}
		}
		return nil
	}
	var missing []string
	for _, name := range progs {
		plan, err := planProgram(t, r, name, 0, nil)
		if err != nil {
			if explicit {
				return fmt.Errorf("program %s: %w", name, err)
			}
			missing = append(missing, name)
			continue
		}
		if err := commit(plan); err != nil {
			return err
		}
		s.Programs = append(s.Programs, path.Base(name))
	}
	if len(missing) > 0 && clean(o.Root) != "/" {
		host, err := elfdeps.New("/")
		if err != nil {
			return err
		}
	next:
		for _, name := range missing {
			plan, err := planProgram(t, host, name, 0, nil)
			if err != nil {
				s.Missing = append(s.Missing, name)
				continue
			}
			for _, p := range plan {
				if e, ok := t.m[clean(p.dest)]; ok && p.lib && (e.src == "" || !sameFile(e.src, p.src)) {
					s.Missing = append(s.Missing, name+" (library "+p.dest+" differs from --root's)")
					continue next
				}
			}
			if err := commit(plan); err != nil {
				return err
			}
			s.Programs = append(s.Programs, path.Base(name))
		}
	} else {
		s.Missing = append(s.Missing, missing...)
	}
	// mke2fs's defaults and the like.
	for _, conf := range []string{"/etc/mke2fs.conf"} {
		if real, err := r.Real(conf); err == nil {
			if err := t.file(conf, real); err != nil {
				return err
			}
		}
	}
	return nil
}

func staticELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// busyboxSkip are applets clonecd provides itself or that would fight it.
var busyboxSkip = map[string]bool{"init": true, "linuxrc": true, "modprobe": true, "insmod": true,
	"rmmod": true, "lsmod": true, "depmod": true, "modinfo": true}

func addBusybox(t *tree, o Options, s *Summary) error {
	bb := o.Busybox
	if bb == "none" {
		return nil
	}
	if bb == "" {
		for _, c := range []string{filepath.Join(o.Root, "bin/busybox"), "/bin/busybox", "/usr/bin/busybox"} {
			if exists(c) && staticELF(c) {
				bb = c
				break
			}
		}
		if bb == "" {
			return nil
		}
	} else if _, err := os.Stat(bb); err != nil {
		return fmt.Errorf("busybox: %w", err)
	} else if !staticELF(bb) {
		return fmt.Errorf("busybox %s is not a static ELF binary (install busybox-static)", bb)
	}
	if err := t.file("/bin/busybox", bb); err != nil {
		return err
	}
	s.Busybox = bb
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		// An applet list we cannot get: at least the shell; bootenv
		// runs `busybox --install -s` at boot.
		t.symlink("/bin/sh", "busybox")
		return nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		p := clean(strings.TrimSpace(line))
		if p == "/" || busyboxSkip[path.Base(p)] || t.has(p) || t.has(path.Join("/sbin", path.Base(p))) {
			continue
		}
		t.symlink(p, "/bin/busybox")
	}
	if !t.has("/bin/sh") {
		t.symlink("/bin/sh", "busybox")
	}
	return nil
}

func addExtra(t *tree, extra map[string]string) error {
	dests := make([]string, 0, len(extra))
	for d := range extra {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		src := extra[d]
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("extra file for %s: %w", d, err)
		}
		if st.IsDir() {
			err = t.copyTree(clean(d), src)
		} else {
			err = t.file(d, src)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
