package clone

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/internal/tools"
	"github.com/clonecd/clonecd/partition"
	"github.com/clonecd/clonecd/progress"
)

// mkfs makes swap and filesystems on every partition the layout gives one,
// but never on a preserved partition, nor (network mode) on an unchanged
// ESP. Right after a filesystem is made, what must not wait for the end
// of the clone is written onto it and synced (writeBack).
func (r *run) mkfs() error {
	for _, p := range r.fitted.Parts {
		if p.FS == "" {
			continue
		}
		dev := partition.PartDevice(r.disk, p.Number)
		if r.keep[p.Number] {
			r.logf("mkfs: %s (%s) preserved, not formatted", dev, p.Mount)
			continue
		}
		if r.espUnchanged(p) {
			r.logf("mkfs: %s (%s): the EFI system partition is unchanged: kept, not formatted (its EFI/ boots the cloner until grub-install replaces BOOTX64.EFI)", dev, p.Mount)
			continue
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.format(p, dev); err != nil {
			return err
		}
		if err := r.writeBack(p, dev); err != nil {
			return err
		}
	}
	return nil
}

// format makes p's filesystem or swap on dev.
func (r *run) format(p partition.Part, dev string) error {
	args, err := MkfsCommand(p, dev)
	if err != nil {
		return err
	}
	if args == nil && p.FS == "swap" { // no mkswap in the cloner
		if err := WriteSwapHeader(dev, p.FSLabel); err != nil {
			return err
		}
		r.logf("mkfs: swap header written on %s (no mkswap)", dev)
		return nil
	}
	if args == nil { // no mkfs.vfat in the cloner
		if err := MakeFAT16(dev, p.FSLabel); err != nil {
			return err
		}
		r.logf("mkfs: FAT16 made on %s in Go (no mkfs.vfat)", dev)
		return nil
	}
	if r.safe != nil && r.safe.part == p.Number {
		args = withUUID(args, p.FS, r.safe.uuid) // core.img finds /boot/grub by this UUID
	}
	r.logf("mkfs: %s", strings.Join(args, " "))
	cmd := exec.CommandContext(r.ctx, args[0], args[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s on %s: %v: %s", filepath.Base(args[0]), dev, err, bytes.TrimSpace(out))
	}
	return nil
}

// writeBack writes onto the filesystem just made on dev what a power cut
// before the end of the clone must find there, and syncs it: in network
// mode the cloner's boot files (the boot filesystem) and the old ESP's
// EFI/ (safety.go), and the node's previous identity (the root, keep.go).
func (r *run) writeBack(p partition.Part, dev string) error {
	boot := r.safe != nil && r.safe.part == p.Number
	esp := r.safe != nil && r.safe.esp == p.Number
	ident := r.previous != nil && p.Number == r.rootNumber()
	if !boot && !esp && !ident {
		return nil
	}
	mnt, err := os.MkdirTemp("", "clonecd-new-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(dev, mnt, mountFS(p.FS), 0, ""); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev, p.FS, mnt, err)
	}
	err = func() error {
		fresh, err := os.OpenRoot(mnt)
		if err != nil {
			return err
		}
		defer fresh.Close()
		if boot {
			if err := r.restoreBoot(fresh); err != nil {
				return fmt.Errorf("restoring the cloner's boot files: %w", err)
			}
		}
		if esp {
			if err := r.restoreESP(fresh); err != nil {
				return fmt.Errorf("restoring the ESP's EFI/: %w", err)
			}
		}
		if ident {
			if err := r.carryPrevious(fresh); err != nil {
				return err
			}
		}
		return syncFS(mnt)
	}()
	if uerr := unix.Unmount(mnt, 0); err == nil && uerr != nil {
		err = fmt.Errorf("unmounting %s: %w", mnt, uerr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	if boot {
		r.logf("safety: %s/grub and %s/clonecd written back on %s (UUID %s), grubenv saved_entry=ramclone: a cut from here on boots the cloner", r.safe.prefix, r.safe.prefix, dev, r.safe.uuid)
	}
	if esp {
		r.logf("safety: EFI/ written back on the new ESP %s: a cut from here on boots the cloner", dev)
	}
	if ident {
		r.logf("mkfs: the node's identity (%s) kept on %s in /%s until the identity step", r.previous.hostname, dev, carryDir)
	}
	return nil
}

// MkfsCommand returns the command line making p's filesystem on dev, or nil
// for swap when mkswap is missing (write the header with WriteSwapHeader)
// and for vfat when mkfs.vfat is missing (MakeFAT16).
func MkfsCommand(p partition.Part, dev string) ([]string, error) {
	opts, err := splitWords(p.Mkfs)
	if err != nil {
		return nil, fmt.Errorf("partition %d mkfs=%q: %w", p.Number, p.Mkfs, err)
	}
	var args []string
	switch p.FS {
	case "swap":
		tool := tools.Find("mkswap")
		if tool == "" {
			return nil, nil
		}
		args = []string{tool}
		if p.FSLabel != "" {
			args = append(args, "-L", p.FSLabel)
		}
	case "ext2", "ext3", "ext4":
		tool := tools.Find("mke2fs")
		if tool == "" {
			return nil, fmt.Errorf("partition %d: mke2fs not found", p.Number)
		}
		args = []string{tool, "-t", p.FS, "-F", "-q"}
		if p.FSLabel != "" {
			args = append(args, "-L", p.FSLabel)
		}
	case "xfs":
		tool := tools.Find("mkfs.xfs")
		if tool == "" {
			return nil, fmt.Errorf("partition %d: mkfs.xfs not found", p.Number)
		}
		args = []string{tool, "-f", "-q"}
		if p.FSLabel != "" {
			args = append(args, "-L", p.FSLabel)
		}
	case "vfat", "fat", "fat32", "fat16", "msdos":
		tool := tools.Find("mkfs.vfat")
		if tool == "" {
			tool = tools.Find("mkfs.fat")
		}
		if tool == "" {
			return nil, nil
		}
		args = []string{tool}
		if p.FSLabel != "" {
			args = append(args, "-n", p.FSLabel)
		}
	default:
		return nil, fmt.Errorf("partition %d: filesystem %q is not supported (swap, ext2/3/4, xfs, vfat)", p.Number, p.FS)
	}
	args = append(args, opts...)
	return append(args, dev), nil
}

// splitWords splits mkfs options as a shell would, honouring single and
// double quotes and backslashes (no expansion).
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote, esc := false, byte(0), false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			cur.WriteByte(c)
			esc = false
		case c == '\\' && quote != '\'':
			esc, in = true, true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 || esc {
		return nil, fmt.Errorf("unterminated quote or escape")
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// WriteSwapHeader makes dev a Linux swap area (version 1, 4 KiB pages, a
// new UUID), as mkswap does.
func WriteSwapHeader(dev, label string) error {
	const page = 4096
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("swap %s: %w", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("swap %s: %w", dev, err)
	}
	pages := size / page
	if pages < 10 {
		return fmt.Errorf("swap %s: %d bytes is too small for swap", dev, size)
	}
	h := make([]byte, page)
	binary.LittleEndian.PutUint32(h[1024:], 1)
	binary.LittleEndian.PutUint32(h[1028:], uint32(pages-1))
	uuid := make([]byte, 16)
	if _, err := rand.Read(uuid); err != nil {
		return err
	}
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	copy(h[1036:1052], uuid)
	if len(label) > 16 {
		label = label[:16]
	}
	copy(h[1052:1068], label)
	copy(h[page-10:], "SWAPSPACE2")
	if _, err := f.WriteAt(h, 0); err != nil {
		return fmt.Errorf("swap %s: %w", dev, err)
	}
	return f.Sync()
}

// MakeFAT16 makes a FAT16 filesystem on dev (16 MiB to 2 GiB: an EFI
// system partition) for a cloner without mkfs.vfat: 512-byte sectors, one
// reserved sector, two FATs, 512 root entries, a random volume serial.
func MakeFAT16(dev, label string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("vfat %s: %w", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("vfat %s: %w", dev, err)
	}
	total := size / 512
	const reserved, rootSecs = 1, 32 // 512 entries of 32 bytes
	var spc, fatSecs, clusters int64
	for spc = 1; spc <= 64; spc *= 2 {
		fatSecs = 1
		for {
			clusters = (total - reserved - 2*fatSecs - rootSecs) / spc
			need := ((clusters+2)*2 + 511) / 512
			if need <= fatSecs {
				break
			}
			fatSecs = need
		}
		if clusters < 65525 {
			break
		}
	}
	if clusters < 4085 || clusters >= 65525 || total > 0xffffffff {
		return fmt.Errorf("vfat %s: %s does not suit FAT16 and mkfs.vfat is not in the cloner", dev, progress.Bytes(size))
	}
	lbl := []byte(strings.ToUpper(label) + "           ")[:11]
	if label == "" {
		lbl = []byte("NO NAME    ")
	}
	bs := make([]byte, 512)
	copy(bs, []byte{0xeb, 0x3c, 0x90})
	copy(bs[3:], "MSWIN4.1")
	le := binary.LittleEndian
	le.PutUint16(bs[11:], 512)
	bs[13] = byte(spc)
	le.PutUint16(bs[14:], reserved)
	bs[16] = 2
	le.PutUint16(bs[17:], rootSecs*16)
	if total < 65536 {
		le.PutUint16(bs[19:], uint16(total))
	} else {
		le.PutUint32(bs[32:], uint32(total))
	}
	bs[21] = 0xf8
	le.PutUint16(bs[22:], uint16(fatSecs))
	le.PutUint16(bs[24:], 63)
	le.PutUint16(bs[26:], 255)
	bs[36] = 0x80
	bs[38] = 0x29
	serial := make([]byte, 4)
	if _, err := rand.Read(serial); err != nil {
		return err
	}
	copy(bs[39:], serial)
	copy(bs[43:], lbl)
	copy(bs[54:], "FAT16   ")
	bs[510], bs[511] = 0x55, 0xaa
	// zero the FATs and the root directory, then write the metadata
	zero := make([]byte, 64*1024)
	end := (reserved + 2*fatSecs + rootSecs) * 512
	for off := int64(0); off < end; off += int64(len(zero)) {
		n := min(int64(len(zero)), end-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("vfat %s: %w", dev, err)
		}
	}
	if _, err := f.WriteAt(bs, 0); err != nil {
		return fmt.Errorf("vfat %s: %w", dev, err)
	}
	for i := int64(0); i < 2; i++ {
		if _, err := f.WriteAt([]byte{0xf8, 0xff, 0xff, 0xff}, (reserved+i*fatSecs)*512); err != nil {
			return fmt.Errorf("vfat %s: %w", dev, err)
		}
	}
	ent := make([]byte, 32)
	copy(ent, lbl)
	ent[11] = 0x08 // volume label
	if _, err := f.WriteAt(ent, (reserved+2*fatSecs)*512); err != nil {
		return fmt.Errorf("vfat %s: %w", dev, err)
	}
	return f.Sync()
}
