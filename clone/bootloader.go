package clone

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/builder"
	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/partition"
)

// binds bind-mounts the cloner's /dev, /proc and /sys onto the new
// root's (once), resolved inside it: an image whose dev, proc or sys is a
// symlink is refused (rootfs.go).
func (r *run) binds() error {
	for _, d := range []string{"dev", "proc", "sys"} {
		if contains(r.mounts, filepath.Join(r.root, d)) {
			continue
		}
		if err := r.mountIn("/"+d, d, "", unix.MS_BIND|unix.MS_REC); err != nil {
			return err
		}
		// keep submounts from propagating back on unmount
		unix.Mount("", filepath.Join(r.root, d), "", unix.MS_SLAVE|unix.MS_REC, "")
	}
	return nil
}

// chroot runs a command inside the new root (with /dev, /proc and /sys
// bound) and logs its output. No chroot program is needed.
func (r *run) chroot(env []string, args ...string) error {
	if err := r.binds(); err != nil {
		return err
	}
	prog := args[0]
	if !strings.HasPrefix(prog, "/") {
		prog = ""
		for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			if st, err := statIn(r.newRoot, d[1:]+"/"+args[0]); err == nil && !st.IsDir() {
				prog = d + "/" + args[0]
				break
			}
		}
		if prog == "" {
			return fmt.Errorf("%s: not found in the new root", args[0])
		}
	}
	cmd := exec.CommandContext(r.ctx, prog, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.root}
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "TERM=dumb"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(r.log, "  %s\n", l)
		}
	}
	if err != nil {
		return fmt.Errorf("chroot %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// exists reports whether rel is in the new root (as the node sees it).
func (r *run) exists(rel string) bool {
	_, err := statIn(r.newRoot, rel)
	return err == nil
}

// espPart returns the layout's EFI system partition mounted in the root.
func (r *run) espPart() *partition.Part {
	for i, p := range r.fitted.Parts {
		t := strings.ToLower(p.Type)
		if p.Mount == "/boot/efi" || t == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" || (r.fitted.Label == "dos" && t == "ef") {
			if p.Mount != "" {
				return &r.fitted.Parts[i]
			}
		}
	}
	return nil
}

// bootloader installs the network cloner entry and the image's bootloader
// inside the new root: GRUB for BIOS and/or UEFI (removable path), else
// extlinux.
func (r *run) bootloader() error {
	if r.safe != nil {
		// the image's own boot/grub files, held in RAM during the unpack
		if err := r.mergeImageGrub(); err != nil {
			return fmt.Errorf("copying the image's /boot/grub: %w", err)
		}
	}
	if err := r.installRamclone(); err != nil {
		return err
	}
	hasGrub := r.exists("usr/sbin/grub-install")
	efiFW := fileExists(sysPath(r.cfg.SysRoot, "firmware", "efi"))
	esp := r.espPart()
	switch {
	case hasGrub:
		did := false
		if r.exists("usr/lib/grub/i386-pc") {
			if err := r.chroot(nil, "grub-install", "--target=i386-pc", "--recheck", r.disk); err != nil {
				if !efiFW || esp == nil {
					return err
				}
				r.logf("bootloader: warning: BIOS GRUB failed, UEFI GRUB only: %v", err)
			} else {
				did = true
				r.logf("bootloader: GRUB for BIOS installed on %s", r.disk)
			}
		}
		if esp != nil && r.exists("usr/lib/grub/x86_64-efi") {
			if err := r.chroot(nil, "grub-install", "--target=x86_64-efi", "--removable", "--efi-directory="+esp.Mount, "--no-nvram"); err != nil {
				return err
			}
			did = true
			r.logf("bootloader: GRUB for UEFI installed in %s/EFI/BOOT/BOOTX64.EFI", esp.Mount)
		} else if efiFW {
			r.logf("bootloader: warning: UEFI firmware but no EFI system partition (or no grub-efi-amd64-bin) in the layout")
		}
		if !did {
			return fmt.Errorf("GRUB is in the image but neither i386-pc nor x86_64-efi modules are")
		}
		// grub-mkconfig boots root=UUID= only when /dev/disk/by-uuid has
		// the link, which udev makes; there is no udev here.
		undo := r.uuidLinks()
		defer undo()
		mk := []string{"grub-mkconfig", "-o", "/boot/grub/grub.cfg"}
		if r.exists("usr/sbin/update-grub") {
			mk = []string{"update-grub"}
		}
		if err := r.chroot(nil, mk...); err != nil {
			return err
		}
		cfg, err := readIn(r.newRoot, "boot/grub/grub.cfg")
		if err != nil {
			return fmt.Errorf("grub.cfg: %w", err)
		}
		if u := r.uuids[r.rootPart().Number]; u != "" && !bytes.Contains(cfg, []byte("root=UUID="+u)) {
			return fmt.Errorf("boot/grub/grub.cfg does not boot root=UUID=%s", u)
		}
		if err := settle(r.newRoot, "boot"); err != nil { // grub.cfg as GRUB will read it
			return err
		}
		r.logf("bootloader: grub.cfg boots root=UUID=%s", r.uuids[r.rootPart().Number])
		if err := r.signedChain(esp); err != nil {
			return err
		}
		if r.safe != nil {
			// The clone succeeded: only now the default leaves the cloner
			// (what grub-set-default 0 does; GRUB_DEFAULT=saved).
			if err := setGrubenv(r.newRoot, "boot/grub/grubenv", map[string]string{"saved_entry": "0", "next_entry": ""}); err != nil {
				return err
			}
			if err := settle(r.newRoot, "boot"); err != nil {
				return err
			}
			r.logf("bootloader: grubenv saved_entry=0: the node boots the new system from now on")
		}
	case r.exists("usr/bin/extlinux") || r.exists("sbin/extlinux") || r.exists("usr/sbin/extlinux"):
		return r.extlinux()
	default:
		return fmt.Errorf("the image has neither GRUB (grub-install) nor extlinux: cannot make the disk bootable")
	}
	return nil
}

// uuidLinks creates the missing /dev/disk/by-uuid links of the new
// filesystems and returns a function removing the ones it created.
func (r *run) uuidLinks() func() {
	var made []string
	dir := "/dev/disk/by-uuid"
	for _, p := range r.fitted.Parts {
		u := r.uuids[p.Number]
		if u == "" {
			continue
		}
		link := filepath.Join(dir, u)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			r.logf("bootloader: warning: %v", err)
			break
		}
		if err := os.Symlink(partition.PartDevice(r.disk, p.Number), link); err != nil {
			r.logf("bootloader: warning: %v", err)
			continue
		}
		made = append(made, link)
	}
	return func() {
		for _, l := range made {
			os.Remove(l)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (r *run) rootPart() partition.Part {
	for _, p := range r.fitted.Parts {
		if p.Mount == "/" {
			return p
		}
	}
	return partition.Part{}
}

// bootPart returns the partition holding /boot and the path of /boot on it.
func (r *run) bootPart() (partition.Part, string) {
	for _, p := range r.fitted.Parts {
		if p.Mount == "/boot" {
			return p, ""
		}
	}
	return r.rootPart(), "/boot"
}

// extlinux installs syslinux's extlinux in /boot/extlinux and its MBR.
func (r *run) extlinux() error {
	bp, prefix := r.bootPart()
	bootDir, err := resolveIn(r.newRoot, "boot", true)
	if err != nil {
		return err
	}
	kernels, _ := fs.Glob(r.newRoot.FS(), path.Join(bootDir, "vmlinuz-*"))
	if len(kernels) == 0 {
		return fmt.Errorf("no /boot/vmlinuz-* in the image")
	}
	k := filepath.Base(kernels[len(kernels)-1])
	ver := strings.TrimPrefix(k, "vmlinuz-")
	conf := fmt.Sprintf("DEFAULT linux\nPROMPT 0\nTIMEOUT 10\nSERIAL 0 115200\nLABEL linux\n  LINUX %s/%s\n  INITRD %s/initrd.img-%s\n  APPEND root=UUID=%s ro console=tty0 console=ttyS0,115200n8\n",
		prefix, k, prefix, ver, r.uuids[r.rootPart().Number])
	if err := writeIn(r.newRoot, "boot/extlinux/extlinux.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	if err := r.chroot(nil, "extlinux", "--install", "/boot/extlinux"); err != nil {
		return err
	}
	var mbr []byte
	for _, m := range []string{"usr/lib/syslinux/mbr/mbr.bin", "usr/lib/EXTLINUX/mbr.bin", "usr/share/syslinux/mbr.bin"} {
		if b, err := readIn(r.newRoot, m); err == nil && len(b) <= 440 {
			mbr = b
			break
		}
	}
	if mbr == nil {
		return fmt.Errorf("no syslinux mbr.bin in the image")
	}
	f, err := os.OpenFile(r.disk, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("writing the MBR of %s: %w", r.disk, err)
	}
	r.logf("bootloader: extlinux installed (partition %d%s)", bp.Number, prefix)
	return nil
}

const grubDefaultSaved = `# written by clonecd: grub-reboot ramclone (clonecd reclone) needs a saved default
GRUB_DEFAULT=saved
`

// installRamclone puts the network cloner on the node: /boot/clonecd's
// kernel and initramfs from the media, clonecd in /usr/local/sbin, a
// `ramclone` GRUB entry and GRUB_DEFAULT=saved for grub-reboot (the
// image.Cloner* paths). Media without isolinux/vmlinuz make no entry; a
// media error (a server's 5xx) fails the step.
func (r *run) installRamclone() error {
	kernel, ok, err := optional(r.media, medium.Kernel)
	if err != nil {
		return err
	}
	if !ok {
		r.logf("bootloader: the media has no %s: no ramclone entry (this node cannot be recloned over the network)", medium.Kernel)
		return nil
	}
	if err := writeIn(r.newRoot, "boot/clonecd/vmlinuz", kernel, 0o644); err != nil {
		return err
	}
	initrd, err := r.media.Open(medium.Initrd)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	// written beside, fsynced and renamed: in network mode the cloner's
	// initrd on the disk is what a cut before the end of the bootloader
	// step boots (safety.go)
	err = copyIn(r.newRoot, "boot/clonecd/initrd.img", initrd, 0o644)
	initrd.Close()
	if err != nil {
		return err
	}
	self := r.cfg.Self
	if self == "" {
		self, _ = os.Executable()
	}
	if self != "" {
		f, err := os.Open(self)
		if err != nil {
			return err
		}
		err = copyIn(r.newRoot, image.ClonerBinary, f, 0o755)
		f.Close()
		if err != nil {
			return err
		}
	}
	bp, prefix := r.bootPart()
	info := r.fsinfo[bp.Number]
	uuid := ""
	if info != nil {
		uuid = info.UUID
	}
	script := `#!/bin/sh
# written by clonecd: boots the network cloner (grub-reboot ramclone)
exec tail -n +4 "$0"
` + ramcloneEntry(uuid, prefix, r.ramcloneArgs())
	if err := writeIn(r.newRoot, image.ClonerGrubScript, []byte(script), 0o755); err != nil {
		return err
	}
	// a drop-in (grub-mkconfig reads it after /etc/default/grub), so the
	// image's own GRUB settings stay as they are and a sync can bring new
	// ones
	if err := writeIn(r.newRoot, image.ClonerGrubDefault, []byte(grubDefaultSaved), 0o644); err != nil {
		return err
	}
	// what GRUB reads after a cut from here on: on the disk, not only in
	// the journal
	if err := settle(r.newRoot, "boot"); err != nil {
		return err
	}
	r.logf("bootloader: ramclone entry (server %s, node %s) and /%s installed", orNone(r.server()), r.hostname, image.ClonerBinary)
	return nil
}

// server is the image server for the ramclone entry.
func (r *run) server() string {
	if r.cfg.Server != "" {
		return r.cfg.Server
	}
	return r.conf["server"]
}

// tlsPin is the server's certificate pin for the ramclone entry: the
// cloner's own (network mode), else the CD's clonecd.conf.
func (r *run) tlsPin() string {
	if r.cfg.TLSPin != "" {
		return r.cfg.TLSPin
	}
	return r.conf["tls-pin"]
}

// ramcloneArgs is the kernel command line of the ramclone entry: network
// mode, the server and its pin, and the node's name, so that a node recloned over the
// network keeps it whatever the nodes table or DHCP say.
func (r *run) ramcloneArgs() string {
	args := "clonecd.mode=net"
	if s := r.server(); s != "" {
		args += " clonecd.server=" + s
	}
	if p := r.tlsPin(); p != "" {
		args += " clonecd.tls-pin=" + p
	}
	if r.hostname != "" {
		args += " clonecd.hostname=" + r.hostname
	}
	return args + " console=tty0 console=ttyS0,115200"
}

// signedChain puts the root's Debian-signed shim and GRUB on the ESP
// (builder.InstallSignedChain) when the root has shim-signed and
// grub-efi-amd64-signed, so the clone boots with Secure Boot on; grub-install's
// unsigned BOOTX64.EFI is replaced. Nothing to do without an ESP or the
// packages.
func (r *run) signedChain(esp *partition.Part) error {
	if esp == nil || !builder.HasSignedChain(r.newRoot) {
		return nil
	}
	espRoot, err := r.newRoot.OpenRoot(strings.TrimPrefix(path.Clean(esp.Mount), "/"))
	if err != nil {
		return fmt.Errorf("secure boot chain: the ESP %s: %w", esp.Mount, err)
	}
	defer espRoot.Close()
	wrote, err := builder.InstallSignedChain(r.newRoot, espRoot, r.uuids[r.rootPart().Number])
	if err != nil {
		return err
	}
	r.logf("bootloader: Secure Boot chain (shim-signed, grub-efi-amd64-signed) installed in %s: %s", esp.Mount, strings.Join(wrote, " "))
	return nil
}

// ramcloneEntry is GRUB's menu entry booting the network cloner from the
// boot filesystem with the given UUID: its kernel and initrd in
// PREFIX/clonecd/, and the node's credential (netclone.CredentialInitrd,
// written by `clonecd ramclone --credential`) as a second initrd when the
// node has one.
func ramcloneEntry(uuid, prefix, args string) string {
	return fmt.Sprintf(`menuentry 'ramclone' --id ramclone {
	search --no-floppy --fs-uuid --set=root %[1]s
	linux %[2]s/clonecd/vmlinuz %[3]s
	if [ -f %[2]s/clonecd/credential.img ]; then
		initrd %[2]s/clonecd/initrd.img %[2]s/clonecd/credential.img
	else
		initrd %[2]s/clonecd/initrd.img
	fi
}
`, uuid, prefix, args)
}
