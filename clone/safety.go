package clone

// The network cloner's safety net. A node recloned over the network boots
// GRUB from its own disk: core.img (in the MBR gap or the BIOS boot
// partition) or EFI/BOOT/BOOTX64.EFI on the EFI system partition (ESP)
// finds its prefix by the UUID of the filesystem holding /boot/grub, and
// that filesystem is the one the clone formats. Without care, a power cut
// between mkfs and the bootloader step leaves a node that boots nothing,
// not even the cloner. So in network mode (Config.Net), until the clone
// has succeeded, the next boot is the cloner:
//
//  1. before the table is written (step partition), /boot/grub and
//     /boot/clonecd of the old filesystem, and its UUID, are copied to RAM
//     (the initramfs's tmpfs); a missing /boot/clonecd is taken from the
//     media's isolinux/vmlinuz and initrd.img; a grub.cfg without a ramclone
//     entry is replaced by one that boots only the cloner (with the node's
//     name, clonecd.hostname=). On a layout with an ESP, the old ESP's EFI/
//     is copied to RAM too. Then the old system's grubenv gets
//     saved_entry=ramclone (synced): `clonecd reclone`'s one-shot
//     next_entry is spent by now, and from here on, until the clone has
//     succeeded, every boot is the cloner (stickyCloner);
//  2. mkfs leaves the ESP alone when its table entry is unchanged (same
//     start and size) and it holds a FAT filesystem: the old
//     BOOTX64.EFI stays, and it looks for /boot/grub by the UUID kept in 3.
//     An ESP that moved is formatted and its EFI/ written back at once,
//     synced;
//  3. mkfs makes the boot filesystem with the SAME UUID (mke2fs -U,
//     mkfs.xfs -m uuid=), then at once /boot/grub and /boot/clonecd are
//     written back with grubenv saved_entry=ramclone (next_entry cleared),
//     and synced: core.img or BOOTX64.EFI finds the same prefix and boots
//     the cloner;
//  4. during unpack, the image's boot/grub and boot/clonecd go to RAM
//     instead (a tmpfs directory bind-mounted over each), so the stream can
//     never half-overwrite grub.cfg, grubenv, the modules GRUB loads or
//     the cloner's kernel. A cut anywhere in unpack or identity (including
//     a sha256 mismatch found only at the end) still boots the cloner;
//  5. the bootloader step, after a complete unpack with a matching sha256,
//     copies the image's boot/grub files in (but not grub.cfg, grubenv or
//     the platform module directories, which grub-install and update-grub
//     write themselves, matching the new core.img), installs the new
//     cloner (kernel and initrd written beside, fsynced, renamed), runs
//     grub-install and update-grub (grub.cfg is renamed into place whole;
//     it still defaults to saved_entry=ramclone), and only then writes
//     grubenv saved_entry=0: the normal system. That last write is a
//     fsynced rename too.
//
// A cut before step 1 (setup, disk, tune, check: nothing written) boots
// the old system once more; the master's reclone then times out.
//
// What is left: the seconds between the boot filesystem's mkfs and its
// write-back in step 3 (and between a moved ESP's mkfs and its write-back
// in step 2), and grub-install's own rewrite of core.img, BOOTX64.EFI and
// their modules in step 5. If the old filesystem cannot be read (or has
// no GRUB), the safety net is skipped with a logged warning and the clone
// goes on as from a CD. The node's ssh host keys and machine-id survive a
// cut on their own way (keep.go).
//
// A cut, step by step (the e2e power-cut matrix kills QEMU inside each of
// partition to bootloader, BIOS and UEFI, and expects the last column):
//
//	step           on the disk when the cut comes                   next boot
//	setup..check   nothing written                                  old system
//	partition      old system, grubenv saved_entry=ramclone         cloner
//	mkfs           boot fs made again, cloner's files written back  cloner (not in the
//	               (ESP kept, or made again and its EFI/ back)      second before that)
//	unpack         part of the new root; the image's /boot/grub     cloner
//	               and /boot/clonecd in RAM
//	identity       new root, name, keys, machine-id                 cloner
//	bootloader     new cloner, then grub-install, update-grub       cloner (torn core.img
//	                                                                during grub-install)
//	               grubenv saved_entry=0                            new system

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/partition"
)

// saved is the old boot filesystem's GRUB and cloner, and the old ESP's
// EFI/, kept in RAM.
type saved struct {
	part   int    // partition number holding /boot/grub
	prefix string // /boot/grub's directory on it as GRUB names it: "/boot" or ""
	uuid   string
	dir    string // RAM: grub/, clonecd/, esp/EFI/, and image/ (the image's, staged during unpack)
	binds  []string

	dev     string // the old boot filesystem's device and type
	fsType  string
	ramOnly bool // its grub.cfg has no ramclone entry (RAM holds a cloner-only one)

	esp      int    // the ESP's partition number when its EFI/ is saved (0: none)
	espStart uint64 // its old table entry
	espSize  uint64
}

// grubPlatformDirs hold modules that must match core.img: grub-install
// writes them, never the image.
var grubPlatformDirs = map[string]bool{"i386-pc": true, "x86_64-efi": true, "i386-efi": true, "arm64-efi": true, "i386-coreboot": true, "x86_64-xen": true}

// saveBoot copies the old boot filesystem's /boot/grub and /boot/clonecd,
// and the old ESP's EFI/, into RAM (step partition, before the table is
// written). Without what it needs it logs why and leaves r.safe nil: the
// clone goes on as from a CD. It fails only when the media cannot be read
// (a server error other than "no such file").
func (r *run) saveBoot() error {
	bp, prefix := r.bootPart()
	if bp.Number == 0 || r.keep[bp.Number] {
		return nil // preserved: nothing to protect
	}
	skip := func(format string, a ...any) {
		r.logf("safety: warning: "+format+"; a power cut before the clone ends may leave the node unbootable", a...)
	}
	if fam(bp.FS) == "" {
		skip("%s on partition %d: only ext2/3/4 and xfs keep their UUID", bp.FS, bp.Number)
		return nil
	}
	if r.oldTable == nil || r.oldTable.Part(bp.Number) == nil {
		skip("no partition %d (/boot/grub's) on %s yet", bp.Number, r.disk)
		return nil
	}
	dev := partition.PartDevice(r.disk, bp.Number)
	waitDevice(r.disk, dev)
	info, err := partition.ProbeFS(dev)
	if err != nil || info == nil || info.UUID == "" {
		skip("cannot read the old filesystem on %s (%v)", dev, err)
		return nil
	}
	if fam(info.Type) != fam(bp.FS) {
		skip("%s holds %s, the layout makes %s: GRUB may not read it", dev, info.Type, bp.FS)
		return nil
	}
	old, done, err := mountRO(dev, mountType(info.Type))
	if err != nil {
		skip("%v", err)
		return nil
	}
	defer done()
	grubDir := path.Join(strings.TrimPrefix(prefix, "/"), "grub")
	cfg, err := readIn(old, path.Join(grubDir, "grub.cfg"))
	if err != nil {
		skip("the old filesystem on %s has no GRUB (%v)", dev, err)
		return nil
	}
	ram, err := os.MkdirTemp("", "clonecd-safety-")
	if err != nil {
		skip("%v", err)
		return nil
	}
	s := &saved{part: bp.Number, prefix: prefix, uuid: info.UUID, dir: ram, dev: dev, fsType: mountType(info.Type)}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(ram)
		}
	}()
	mem, err := os.OpenRoot(ram)
	if err != nil {
		skip("%v", err)
		return nil
	}
	defer mem.Close()
	if err := copyTree(old.FS(), grubDir, mem, "grub", copyOptions{}); err != nil {
		skip("saving %s/grub: %v", prefix, err)
		return nil
	}
	clonecdDir := path.Join(strings.TrimPrefix(prefix, "/"), "clonecd")
	if err := copyTree(old.FS(), clonecdDir, mem, "clonecd", copyOptions{}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		skip("saving %s/clonecd: %v", prefix, err)
		return nil
	}
	for _, f := range []string{medium.Kernel, medium.Initrd} {
		name := path.Join("clonecd", path.Base(f))
		if _, err := mem.Stat(name); err == nil {
			continue
		}
		b, ok, err := optional(r.media, f)
		if err != nil {
			return err
		}
		if !ok {
			skip("no %s/%s on %s and no %s on the media", prefix, name, dev, f)
			return nil
		}
		if err := writeIn(mem, name, b, 0o644); err != nil {
			skip("%v", err)
			return nil
		}
		r.logf("safety: %s/%s taken from the media", prefix, name)
	}
	if !grubEntryRE.Match(cfg) {
		s.ramOnly = true
		r.logf("safety: the old grub.cfg has no ramclone entry: writing one that boots only the cloner")
		if err := writeIn(mem, "grub/grub.cfg", []byte(r.clonerOnlyCfg(s)), 0o644); err != nil {
			skip("%v", err)
			return nil
		}
	}
	r.saveESP(s, mem)
	keep = true
	r.safe = s
	r.logf("safety: %s/grub and %s/clonecd of %s (UUID %s) kept in RAM: until the clone succeeds the node boots the cloner", prefix, prefix, dev, s.uuid)
	return nil
}

// stickyCloner makes every boot of the old system the cloner (grubenv
// saved_entry=ramclone, next_entry cleared, synced) before anything is
// written: `clonecd reclone`'s one-shot next_entry is spent by now, and a
// cut before mkfs would bring the old system back instead of finishing
// the clone. The bootloader step sets saved_entry=0 once the clone has
// succeeded.
func (r *run) stickyCloner() {
	s := r.safe
	if s == nil || s.ramOnly {
		return
	}
	warn := func(err error) {
		r.logf("safety: warning: %v; a power cut before mkfs boots the old system, not the cloner", err)
	}
	mnt, err := os.MkdirTemp("", "clonecd-old-")
	if err != nil {
		warn(err)
		return
	}
	defer os.Remove(mnt)
	if err := unix.Mount(s.dev, mnt, s.fsType, 0, ""); err != nil {
		warn(fmt.Errorf("mounting %s read-write: %w", s.dev, err))
		return
	}
	defer unix.Unmount(mnt, 0)
	old, err := os.OpenRoot(mnt)
	if err != nil {
		warn(err)
		return
	}
	defer old.Close()
	env := path.Join(strings.TrimPrefix(s.prefix, "/"), "grub/grubenv")
	if err := setGrubenv(old, env, map[string]string{"saved_entry": "ramclone", "next_entry": ""}); err != nil {
		warn(err)
		return
	}
	if err := syncFS(mnt); err != nil {
		warn(err)
		return
	}
	r.logf("safety: grubenv saved_entry=ramclone on the old system (%s): every boot is the cloner until this clone succeeds", s.dev)
}

// saveESP copies the old ESP's EFI/ into RAM (esp/EFI) and notes the old
// table entry, so that mkfs keeps an unchanged ESP and writes a moved
// one's EFI/ back at once.
func (r *run) saveESP(s *saved, mem *os.Root) {
	esp := r.espPart()
	if esp == nil || mountFS(esp.FS) != "vfat" || r.keep[esp.Number] {
		return
	}
	dev := partition.PartDevice(r.disk, esp.Number)
	warn := func(format string, a ...any) {
		r.logf("safety: warning: "+format+"; a power cut between its mkfs and the bootloader step leaves a UEFI node unbootable", a...)
	}
	var old *partition.Part
	if r.oldTable != nil {
		old = r.oldTable.Part(esp.Number)
	}
	if old == nil {
		warn("no partition %d (the ESP) in the table of %s", esp.Number, r.disk)
		return
	}
	if info, err := partition.ProbeFS(dev); err != nil || info.Type != "vfat" {
		warn("no FAT filesystem on the old ESP %s (%v)", dev, err)
		return
	}
	espFS, done, err := mountRO(dev, "vfat")
	if err != nil {
		warn("%v", err)
		return
	}
	defer done()
	if err := copyTree(espFS.FS(), "EFI", mem, "esp/EFI", copyOptions{}); err != nil {
		warn("saving EFI/ of %s: %v", dev, err)
		return
	}
	s.esp, s.espStart, s.espSize = esp.Number, old.Start, old.Size
	r.logf("safety: EFI/ of the ESP %s kept in RAM", dev)
}

// espUnchanged reports whether the saved ESP's table entry is what the
// partition step left (same start and size): its filesystem and EFI/ are
// then kept as they are.
func (r *run) espUnchanged(p partition.Part) bool {
	return r.safe != nil && r.safe.esp == p.Number && (r.keepTable || p.Start == r.safe.espStart && p.Size == r.safe.espSize)
}

// mountRO mounts dev read-only on a temporary directory and opens it;
// done unmounts and removes it.
func mountRO(dev, fstype string) (*os.Root, func(), error) {
	mnt, err := os.MkdirTemp("", "clonecd-old-")
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Mount(dev, mnt, fstype, unix.MS_RDONLY, ""); err != nil {
		os.Remove(mnt)
		return nil, nil, fmt.Errorf("mounting the old %s on %s: %w", fstype, dev, err)
	}
	root, err := os.OpenRoot(mnt)
	if err != nil {
		unix.Unmount(mnt, 0)
		os.Remove(mnt)
		return nil, nil, err
	}
	return root, func() {
		root.Close()
		unix.Unmount(mnt, 0)
		os.Remove(mnt)
	}, nil
}

// waitDevice waits a few seconds for a partition's device node (there is
// no udev; a loop device's scan may not show them without partx).
func waitDevice(disk, dev string) {
	for i := 0; i < 30 && !fileExists(dev); i++ {
		if i == 0 {
			exec.Command("partx", "-a", disk).Run()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var grubEntryRE = regexp.MustCompile(`(?m)^\s*menuentry\s.*--id[ =]'?"?ramclone\b`)

// clonerOnlyCfg is a grub.cfg booting the network cloner only.
func (r *run) clonerOnlyCfg(s *saved) string {
	return `# written by clonecd while the node is recloned: boots the network cloner
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=ramclone
set timeout=2
` + ramcloneEntry(s.uuid, s.prefix, r.ramcloneArgs())
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
// boot filesystem (opened as fresh) with grubenv saved_entry=ramclone. The
// caller syncs the filesystem.
func (r *run) restoreBoot(fresh *os.Root) error {
	s := r.safe
	dst := strings.TrimPrefix(s.prefix, "/")
	mem := os.DirFS(s.dir)
	for _, d := range []string{"grub", "clonecd"} {
		if err := copyTree(mem, d, fresh, path.Join(dst, d), copyOptions{}); err != nil {
			return err
		}
	}
	return setGrubenv(fresh, path.Join(dst, "grub/grubenv"), map[string]string{"saved_entry": "ramclone", "next_entry": ""})
}

// restoreESP writes the saved EFI/ onto the freshly made ESP.
func (r *run) restoreESP(fresh *os.Root) error {
	return copyTree(os.DirFS(r.safe.dir), "esp/EFI", fresh, "EFI", copyOptions{})
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
		if err := r.mountIn(stage, "boot/"+d, "", unix.MS_BIND); err != nil {
			return err
		}
		r.safe.binds = append(r.safe.binds, filepath.Join(r.root, "boot", d))
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
	return copyTree(os.DirFS(r.safe.dir), "image/grub", r.newRoot, "boot/grub", copyOptions{durable: true, skip: func(rel string) bool {
		top := strings.SplitN(rel, "/", 2)[0]
		return rel == "grub.cfg" || rel == "grubenv" || grubPlatformDirs[top]
	}})
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

// SetGrubenv sets keys in the GRUB environment block file at path (an
// empty value removes the key), keeping the others; see setGrubenv.
func SetGrubenv(path string, set map[string]string) error {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("grubenv: %w", err)
	}
	defer root.Close()
	return setGrubenv(root, filepath.Base(path), set)
}

// setGrubenv sets keys in the GRUB environment block name inside root and
// writes it as GRUB wants it: "# GRUB Environment Block\n", key=value
// lines, '#' padding to 1024 bytes. The file is written beside, fsynced
// and renamed, so a cut leaves the old or the new block, never an empty
// one (GRUB would then ignore saved_entry=ramclone).
func setGrubenv(root *os.Root, name string, set map[string]string) error {
	vars := map[string]string{}
	var order []string
	if b, err := readIn(root, name); err == nil {
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
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("grubenv: %w", err)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(k, "=\n") || strings.Contains(set[k], "\n") {
			return fmt.Errorf("grubenv %s: bad variable %q=%q", name, k, set[k])
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
		return fmt.Errorf("grubenv %s: %d bytes of variables do not fit its 1024-byte block", name, buf.Len())
	}
	buf.Write(bytes.Repeat([]byte("#"), 1024-buf.Len()))
	return writeIn(root, name, buf.Bytes(), 0o644)
}
