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

	"github.com/clonecd/clonecd/partition"
)

// mkfs makes swap and filesystems on every partition the layout gives one,
// but never on a preserved partition.
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
		if err := r.ctx.Err(); err != nil {
			return err
		}
		args, err := MkfsCommand(p, dev)
		if err != nil {
			return err
		}
		if args == nil { // swap without mkswap
			if err := WriteSwapHeader(dev, p.FSLabel); err != nil {
				return err
			}
			r.logf("mkfs: swap header written on %s (no mkswap)", dev)
			continue
		}
		r.logf("mkfs: %s", strings.Join(args, " "))
		cmd := exec.CommandContext(r.ctx, args[0], args[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s on %s: %v: %s", filepath.Base(args[0]), dev, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// MkfsCommand returns the command line making p's filesystem on dev, or nil
// for swap when mkswap is missing (write the header with WriteSwapHeader).
func MkfsCommand(p partition.Part, dev string) ([]string, error) {
	opts, err := splitWords(p.Mkfs)
	if err != nil {
		return nil, fmt.Errorf("partition %d mkfs=%q: %w", p.Number, p.Mkfs, err)
	}
	var args []string
	switch p.FS {
	case "swap":
		tool := lookTool("mkswap")
		if tool == "" {
			return nil, nil
		}
		args = []string{tool}
		if p.FSLabel != "" {
			args = append(args, "-L", p.FSLabel)
		}
	case "ext2", "ext3", "ext4":
		tool := lookTool("mke2fs")
		if tool == "" {
			return nil, fmt.Errorf("partition %d: mke2fs not found", p.Number)
		}
		args = []string{tool, "-t", p.FS, "-F", "-q"}
		if p.FSLabel != "" {
			args = append(args, "-L", p.FSLabel)
		}
	case "xfs":
		tool := lookTool("mkfs.xfs")
		if tool == "" {
			return nil, fmt.Errorf("partition %d: mkfs.xfs not found", p.Number)
		}
		args = []string{tool, "-f", "-q"}
		if p.FSLabel != "" {
			args = append(args, "-L", p.FSLabel)
		}
	case "vfat", "fat", "fat32", "fat16", "msdos":
		tool := lookTool("mkfs.vfat")
		if tool == "" {
			tool = lookTool("mkfs.fat")
		}
		if tool == "" {
			return nil, fmt.Errorf("partition %d: mkfs.vfat not found", p.Number)
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

// lookTool finds a program on PATH or in the sbin directories.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
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
