package kmod

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ReadModule returns the contents of a module file, decompressing
// .ko.xz, .ko.zst and .ko.gz.
func ReadModule(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(path, ".xz"):
		r, err = xz.NewReader(bytes.NewReader(data))
	case strings.HasSuffix(path, ".zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data))
		if err == nil {
			defer d.Close()
			r = d
		}
	case strings.HasSuffix(path, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(data))
	default:
		return data, nil
	}
	if err == nil {
		data, err = io.ReadAll(r)
	}
	if err != nil {
		return nil, fmt.Errorf("kmod: decompressing %s: %w", path, err)
	}
	return data, nil
}

// Compressed reports whether a module path names a compressed module.
func Compressed(path string) bool {
	return strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz")
}

// ModInfo returns the key=value pairs of a module's .modinfo section
// (firmware=, softdep=, alias=, depends=, ...), in order.
func ModInfo(path string) ([][2]string, error) {
	data, err := ReadModule(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("kmod: %s: %w", path, err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("kmod: %s: no .modinfo section", path)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("kmod: %s: .modinfo: %w", path, err)
	}
	var out [][2]string
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out, nil
}

// Firmware lists the firmware files a module names (modinfo firmware=).
func Firmware(path string) ([]string, error) {
	info, err := ModInfo(path)
	if err != nil {
		return nil, err
	}
	var fw []string
	for _, kv := range info {
		if kv[0] == "firmware" && kv[1] != "" {
			fw = append(fw, kv[1])
		}
	}
	return fw, nil
}
