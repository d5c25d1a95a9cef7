package medium

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strings"
)

// ParseSum reads the first checksum of a sha256sum file ("HEX  NAME" or
// "HEX *NAME"; blank lines and # comments skipped). It returns the lower
// case hex digest. file names the sum file in errors.
func ParseSum(b []byte, file string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum := strings.ToLower(strings.Fields(line)[0])
		if err := checkHex(sum, 64); err != nil {
			return "", fmt.Errorf("%s: line %d: %q is not a sha256 checksum", file, n, strings.Fields(line)[0])
		}
		return sum, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return "", fmt.Errorf("%s: no checksum in it", file)
}

// ReadSum reads name's sha256 file (name.sha256) from fsys and returns the
// digest.
func ReadSum(fsys fs.FS, name string) (string, error) {
	sn := SumName(name)
	b, err := fs.ReadFile(fsys, sn)
	if err != nil {
		return "", err
	}
	return ParseSum(b, sn)
}

// FormatSum is the sha256sum line for a file: "HEX  NAME\n" (the base
// name, so that `sha256sum -c` works beside it).
func FormatSum(sum, name string) []byte {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return []byte(sum + "  " + name + "\n")
}

func checkHex(s string, n int) error {
	if len(s) != n {
		return fmt.Errorf("want %d hex digits, got %d", n, len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return err
	}
	if strings.ToLower(s) != s {
		return fmt.Errorf("upper case hex")
	}
	return nil
}
