package builder

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// KernelVersion reads the release ("6.1.0-50-amd64") from an x86 bzImage's
// setup header: "HdrS" at 0x202 and, at 0x20e, the offset (minus 0x200) of
// the version string ("6.1.0-50-amd64 (debian-kernel@...) #1 SMP ...").
func KernelVersion(r io.ReaderAt) (string, error) {
	hdr := make([]byte, 0x210)
	if n, err := r.ReadAt(hdr, 0); n < len(hdr) {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return "", fmt.Errorf("not an x86 Linux kernel (too short for a HdrS setup header)")
		}
		return "", fmt.Errorf("reading the kernel's setup header: %w", err)
	}
	return parseKernelVersion(hdr, r)
}

func parseKernelVersion(hdr []byte, r io.ReaderAt) (string, error) {
	if len(hdr) < 0x210 || string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("not an x86 Linux kernel (no HdrS setup header)")
	}
	off := binary.LittleEndian.Uint16(hdr[0x20e:0x210])
	if off == 0 {
		return "", fmt.Errorf("the kernel's setup header names no version string")
	}
	buf := make([]byte, 256)
	n, err := r.ReadAt(buf, int64(off)+0x200)
	if n == 0 {
		return "", fmt.Errorf("reading the kernel version string: %w", err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	f := strings.Fields(string(buf))
	if len(f) == 0 {
		return "", fmt.Errorf("empty kernel version string")
	}
	return f[0], nil
}

// KernelFileVersion is KernelVersion of the file at path.
func KernelFileVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	v, err := KernelVersion(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// DefaultKernel returns the newest /boot/vmlinuz-* under root ("/" for the
// build host), by version order.
func DefaultKernel(root string) (string, error) {
	if root == "" {
		root = "/"
	}
	m, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return "", err
	}
	var ks []string
	for _, p := range m {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			ks = append(ks, p)
		}
	}
	if len(ks) == 0 {
		return "", fmt.Errorf("no kernel %s/boot/vmlinuz-* (give --kernel FILE)", strings.TrimSuffix(root, "/"))
	}
	sort.Slice(ks, func(i, j int) bool {
		return versionLess(strings.TrimPrefix(filepath.Base(ks[i]), "vmlinuz-"), strings.TrimPrefix(filepath.Base(ks[j]), "vmlinuz-"))
	})
	return ks[len(ks)-1], nil
}

// versionLess compares versions such as 6.1.0-9-amd64 < 6.1.0-50-amd64:
// runs of digits compare as numbers, the rest as text.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ad, arest := splitRun(a)
		bd, brest := splitRun(b)
		if ad != bd {
			an, aerr := strconv.ParseUint(ad, 10, 64)
			bn, berr := strconv.ParseUint(bd, 10, 64)
			if aerr == nil && berr == nil {
				if an != bn {
					return an < bn
				}
			} else {
				return ad < bd
			}
		}
		a, b = arest, brest
	}
	return len(a) < len(b)
}

func splitRun(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}
