package clone

// The network cloner's safety net. A node recloned over the network boots
// GRUB from its own disk: core.img (in the MBR gap or the BIOS boot
// partition, or BOOTX64.EFI on the ESP) finds its prefix by the UUID of the
// filesystem holding /boot/grub, and that filesystem is the one the clone
// formats. Without care, a power cut between mkfs and the bootloader step
// leaves a node that boots nothing, not even the cloner. So in network mode
// (Config.Net), until the clone has succeeded, the next boot is the cloner:
//
//  1. before the table is written (step partition), /boot/grub and
//     /boot/clonecd of the old filesystem, and its UUID, are copied to RAM
//     (the initramfs's tmpfs); a missing /boot/clonecd is taken from the
//     media's isolinux/vmlinuz and initrd.img; a grub.cfg without a ramclone
//     entry is replaced by one that boots only the cloner;
//  2. mkfs makes the filesystem with the SAME UUID (mke2fs -U, mkfs.xfs -m
//     uuid=), then at once /boot/grub and /boot/clonecd are written back
//     with grubenv saved_entry=ramclone (next_entry cleared), and synced:
//     core.img finds the same prefix and boots the cloner;
//  3. during unpack, the image's boot/grub and boot/clonecd go to RAM
//     instead (a tmpfs directory bind-mounted over each), so the stream can
//     never half-overwrite grub.cfg, grubenv, the modules core.img loads or
//     the cloner's kernel. A cut anywhere in unpack or identity (including
//     a sha256 mismatch found only at the end) still boots the cloner;
//  4. the bootloader step, after a complete unpack with a matching sha256,
//     copies the image's boot/grub files in (but not grub.cfg, grubenv or
//     the platform module directories, which grub-install and update-grub
//     write themselves, matching the new core.img), installs the new
//     cloner, runs grub-install and update-grub (grub.cfg is renamed into
//     place whole; it still defaults to saved_entry=ramclone), and only
//     then writes grubenv saved_entry=0: the normal system. That last write
//     is a rename too.
//
// What is left: the seconds between mkfs and the write-back in step 2, and
// grub-install's own rewrite of core.img and its modules in step 4. If the
// old filesystem cannot be read (or has no GRUB), the safety net is skipped
// with a logged warning and the clone goes on as from a CD.

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/partition"
)

// saved is the old boot filesystem's GRUB and cloner, kept in RAM.
type saved struct {
	part   int    // partition number holding /boot/grub
	prefix string // /boot/grub's directory on it: "/boot" or ""
	uuid   string
	dir    string // RAM: grub/, clonecd/, and image/ (the image's, staged during unpack)
	binds  []string
}

// grubPlatformDirs hold modules that must match core.img: grub-install
// writes them, never the image.
var grubPlatformDirs = map[string]bool{"i386-pc": true, "x86_64-efi": true, "i386-efi": true, "arm64-efi": true, "i386-coreboot": true, "x86_64-xen": true}

// saveBoot copies the old boot filesystem's /boot/grub and /boot/clonecd
// into RAM (step partition, before the table is written). It never fails
// the run: without what it needs it logs why and leaves r.safe nil.
func (r *run) saveBoot() {
	bp, prefix := r.bootPart()
	if bp.Number == 0 {
		return
	}
	skip := func(format string, a ...any) {
		r.logf("safety: warning: "+format+"; a power cut before the clone ends may leave the node unbootable", a...)
	}
	if r.keep[bp.Number] {
		return // the boot filesystem is preserved: nothing to protect
	}
	if fam(bp.FS) == "" {
		skip("%s on partition %d: only ext2/3/4 and xfs keep their UUID", bp.FS, bp.Number)
		return
	}
	dev := partition.PartDevice(r.disk, bp.Number)
	for i := 0; i < 30 && !fileExists(dev); i++ {
		if i == 0 { // no udev; a loop device's scan may not show them
			exec.Command("partx", "-a", r.disk).Run()
		}
		time.Sleep(100 * time.Millisecond)
	}
	info, err := partition.ProbeFS(dev)
	if err != nil || info == nil || info.UUID == "" {
		skip("cannot read the old filesystem on %s (%v)", dev, err)
		return
	}
	if fam(info.Type) != fam(bp.FS) {
		skip("%s holds %s, the layout makes %s: GRUB may not read it", dev, info.Type, bp.FS)
		return
	}
	mnt, err := os.MkdirTemp("", "clonecd-oldboot-")
	if err != nil {
		skip("%v", err)
		return
	}
	defer os.Remove(mnt)
	if err := unix.Mount(dev, mnt, mountType(info.Type), unix.MS_RDONLY, ""); err != nil {
		skip("mounting the old %s on %s: %v", info.Type, dev, err)
		return
	}
	defer unix.Unmount(mnt, 0)
	old := filepath.Join(mnt, prefix)
	cfg, err := os.ReadFile(filepath.Join(old, "grub/grub.cfg"))
	if err != nil {
		skip("the old filesystem on %s has no GRUB (%v)", dev, err)
		return
	}
	ram, err := os.MkdirTemp("", "clonecd-safety-")
	if err != nil {
		skip("%v", err)
		return
	}
	s := &saved{part: bp.Number, prefix: prefix, uuid: info.UUID, dir: ram}
	fail := func(format string, a ...any) {
		os.RemoveAll(ram)
		skip(format, a...)
	}
	if err := copyTree(filepath.Join(old, "grub"), filepath.Join(ram, "grub"), nil); err != nil {
		fail("saving %s/grub: %v", prefix, err)
		return
	}
	if err := copyTree(filepath.Join(old, "clonecd"), filepath.Join(ram, "clonecd"), nil); err != nil && !os.IsNotExist(err) {
		fail("saving %s/clonecd: %v", prefix, err)
		return
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if fileExists(filepath.Join(ram, "clonecd", f)) {
			continue
		}
		in, err := r.media.Open("isolinux/" + f)
		if err != nil {
			fail("no %s/clonecd/%s on %s and none from the media: %v", prefix, f, dev, err)
			return
		}
		err = copyTo(in, filepath.Join(ram, "clonecd", f), 0o644)
		in.Close()
		if err != nil {
			fail("%v", err)
			return
		}
		r.logf("safety: %s/clonecd/%s taken from the media", prefix, f)
	}
	if !grubEntryRE.Match(cfg) {
		r.logf("safety: the old grub.cfg has no ramclone entry: writing one that boots only the cloner")
		if err := os.WriteFile(filepath.Join(ram, "grub/grub.cfg"), []byte(r.clonerOnlyCfg(s)), 0o644); err != nil {
			fail("%v", err)
			return
		}
	}
	r.safe = s
	r.logf("safety: %s/grub and %s/clonecd of %s (UUID %s) kept in RAM: until the clone succeeds the node boots the cloner", prefix, prefix, dev, s.uuid)
}

var grubEntryRE = regexp.MustCompile(`(?m)^\s*menuentry\s.*--id[ =]'?"?ramclone\b`)

// clonerOnlyCfg is a grub.cfg booting the network cloner only.
func (r *run) clonerOnlyCfg(s *saved) string {
	return fmt.Sprintf(`# written by clonecd while the node is recloned: boots the network cloner
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=ramclone
set timeout=2
menuentry 'ramclone' --id ramclone {
	search --no-floppy --fs-uuid --set=root %s
	linux %s/clonecd/vmlinuz %s
	initrd %s/clonecd/initrd.img
}
`, s.uuid, s.prefix, r.ramcloneArgs(), s.prefix)
}

// withUUID adds the option giving the new filesystem the saved UUID.
func withUUID(args []string, fsType, uuid string) []string {
	var opt []string
	switch fam(fsType) {
	case "ext":
		opt = []string{"-U", uuid}
	case "xfs":
		opt = []string{"-m", "uuid=" + uuid}
	default:
		return args
	}
	n := len(args) - 1 // the device stays last
	return append(append(append([]string{}, args[:n]...), opt...), args[n])
}

// restoreBoot writes the saved /boot/grub and /boot/clonecd onto the fresh
// filesystem on dev with grubenv saved_entry=ramclone, and syncs it.
func (r *run) restoreBoot(dev, fsType string) error {
	s := r.safe
	mnt, err := os.MkdirTemp("", "clonecd-newboot-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(dev, mnt, mountFS(fsType), 0, ""); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev, fsType, mnt, err)
	}
	err = func() error {
		dst := filepath.Join(mnt, s.prefix)
		for _, d := range []string{"grub", "clonecd"} {
			if err := copyTree(filepath.Join(s.dir, d), filepath.Join(dst, d), nil); err != nil {
				return err
			}
		}
		if err := SetGrubenv(filepath.Join(dst, "grub/grubenv"), map[string]string{"saved_entry": "ramclone", "next_entry": ""}); err != nil {
			return err
		}
		fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Syncfs(fd)
	}()
	if uerr := unix.Unmount(mnt, 0); err == nil && uerr != nil {
		err = fmt.Errorf("unmounting %s: %w", mnt, uerr)
	}
	if err != nil {
		return fmt.Errorf("restoring the cloner's boot files on %s: %w", dev, err)
	}
	r.logf("safety: %s/grub and %s/clonecd written back on %s (UUID %s), grubenv saved_entry=ramclone: a cut from here on boots the cloner", s.prefix, s.prefix, dev, s.uuid)
	return nil
}

// stageImageBoot bind-mounts RAM directories over the new root's
// boot/grub and boot/clonecd for the unpack: the image's files there go to
// RAM, the disk keeps the cloner's.
func (r *run) stageImageBoot() error {
	for _, d := range []string{"grub", "clonecd"} {
		stage := filepath.Join(r.safe.dir, "image", d)
		if err := os.MkdirAll(stage, 0o755); err != nil {
			return err
		}
		on := filepath.Join(r.root, "boot", d)
		if err := os.MkdirAll(on, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(stage, on, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s over %s: %w", stage, on, err)
		}
		r.mounts = append(r.mounts, on)
		r.safe.binds = append(r.safe.binds, on)
	}
	r.logf("safety: the image's /boot/grub and /boot/clonecd go to RAM until the unpack is complete")
	return nil
}

// unstageImageBoot removes the bind mounts of stageImageBoot.
func (r *run) unstageImageBoot() error {
	for i := len(r.safe.binds) - 1; i >= 0; i-- {
		on := r.safe.binds[i]
		if err := unix.Unmount(on, 0); err != nil {
			return fmt.Errorf("unmounting %s: %w", on, err)
		}
		for j, m := range r.mounts {
			if m == on {
				r.mounts = append(r.mounts[:j], r.mounts[j+1:]...)
				break
			}
		}
	}
	r.safe.binds = nil
	return nil
}

// mergeImageGrub copies the image's boot/grub files (staged in RAM) into
// the new root, but not grub.cfg, grubenv or the platform module
// directories: update-grub and grub-install write those after a
// successful unpack.
func (r *run) mergeImageGrub() error {
	src := filepath.Join(r.safe.dir, "image", "grub")
	return copyTree(src, filepath.Join(r.root, "boot/grub"), func(rel string) bool {
		top := strings.SplitN(rel, "/", 2)[0]
		return rel == "grub.cfg" || rel == "grubenv" || grubPlatformDirs[top]
	})
}

// dropSaved frees the RAM copy.
func (r *run) dropSaved() {
	if r.safe != nil {
		os.RemoveAll(r.safe.dir)
	}
}

func fam(fsType string) string {
	switch fsType {
	case "ext2", "ext3", "ext4":
		return "ext"
	case "xfs":
		return "xfs"
	}
	return ""
}

func mountType(probed string) string {
	if fam(probed) == "ext" {
		return "ext4" // the ext4 driver mounts ext2 and ext3 too
	}
	return probed
}

// copyTree copies directories, regular files and symlinks from src to dst
// (merging into what is there), skipping paths (relative to src) for which
// skip returns true. Modes and owners are kept.
func copyTree(src, dst string, skip func(rel string) bool) error {
	if _, err := os.Lstat(src); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip != nil && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*unix.Stat_t)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(out, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(out)
			if err := os.Symlink(target, out); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			err = copyAtomic(in, out, fi.Mode().Perm())
			in.Close()
			if err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			os.Lchown(out, int(st.Uid), int(st.Gid))
		}
		return nil
	})
}

// copyAtomic writes in to dst through a temporary file renamed into place,
// so a cut leaves either the old or the new file.
func copyAtomic(in io.Reader, dst string, mode os.FileMode) error {
	tmp := dst + ".clonecd-new"
	if err := copyTo(in, tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// SetGrubenv sets keys in a GRUB environment block file (an empty value
// removes the key), keeping the others, and writes it as GRUB wants it:
// "# GRUB Environment Block\n", key=value lines, '#' padding to 1024
// bytes. The file is replaced by a rename, so a cut leaves the old or the
// new block.
func SetGrubenv(path string, set map[string]string) error {
	vars := map[string]string{}
	var order []string
	if b, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l == "" || l[0] == '#' {
				continue
			}
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			if _, dup := vars[k]; !dup {
				order = append(order, k)
			}
			vars[k] = v
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("grubenv: %w", err)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(k, "=\n") || strings.Contains(set[k], "\n") {
			return fmt.Errorf("grubenv %s: bad variable %q=%q", path, k, set[k])
		}
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = set[k]
	}
	var buf bytes.Buffer
	buf.WriteString("# GRUB Environment Block\n")
	for _, k := range order {
		if v := vars[k]; v != "" {
			fmt.Fprintf(&buf, "%s=%s\n", k, v)
		}
	}
	if buf.Len() > 1024 {
		return fmt.Errorf("grubenv %s: %d bytes of variables do not fit its 1024-byte block", path, buf.Len())
	}
	buf.Write(bytes.Repeat([]byte("#"), 1024-buf.Len()))
	if err := copyAtomic(&buf, path, 0o644); err != nil {
		return err
	}
	return nil
}
