package nodesync

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/clonecd/clonecd/cpio"
)

// clonecd keeps extended attributes in records of the image that GNU
// cpio reads as the root directory again (image/xattr.go writes them):
// the header's Ext holds xattrMagic, then one line per attribute,
// "path"<TAB>"name"<TAB>hexvalue, path and name Go-quoted. This decoder
// reads that format; image keeps its own (unexported) for unpack.
const xattrMagic = "clonecd-xattrs-v1\n"

type xattrLine struct {
	rel string // archive name of the file
	x   Xattr
}

func isXattrRecord(h *cpio.Header) bool { return bytes.HasPrefix(h.Ext, []byte(xattrMagic)) }

// parseXattrRecord decodes one record; errors name its offset and line.
func parseXattrRecord(h *cpio.Header) ([]xattrLine, error) {
	var out []xattrLine
	text := strings.TrimSuffix(string(h.Ext[len(xattrMagic):]), "\n")
	for i, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		fail := func(err error) error {
			return fmt.Errorf("xattr record at offset %d, line %d: %w", h.Offset, i+2, err)
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fail(errors.New("want 3 tab-separated fields"))
		}
		rel, err1 := strconv.Unquote(f[0])
		name, err2 := strconv.Unquote(f[1])
		val, err3 := hex.DecodeString(f[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fail(err)
		}
		out = append(out, xattrLine{rel, Xattr{name, val}})
	}
	return out, nil
}
