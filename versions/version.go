package versions

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
)

// Version is a clone image version, MAJOR.MINOR as in CLONE_CD_VERSION
// ("1.19"). Bumping increments MINOR: 1.9 → 1.10, 1.19 → 1.20.
type Version struct {
	Major, Minor int
}

// ParseVersion parses "MAJOR.MINOR". Surrounding white space is ignored;
// leading zeros ("1.05") are refused so that a version has one spelling.
// The Medusa CVS tag form "CLONE_1_19" is accepted too.
func ParseVersion(s string) (Version, error) {
	t := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(t, "CLONE_"); ok {
		t = strings.Replace(rest, "_", ".", 1)
	}
	maj, min, ok := strings.Cut(t, ".")
	if !ok {
		return Version{}, fmt.Errorf("version %q: want MAJOR.MINOR, e.g. 1.19", s)
	}
	a, err := number(maj)
	if err != nil {
		return Version{}, fmt.Errorf("version %q: major: %w", s, err)
	}
	b, err := number(min)
	if err != nil {
		return Version{}, fmt.Errorf("version %q: minor: %w", s, err)
	}
	return Version{a, b}, nil
}

func number(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero (write %s)", s, strings.TrimLeft(s[:len(s)-1], "0")+s[len(s)-1:])
	}
	if len(s) > 9 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return strconv.Atoi(s)
}

// String returns "MAJOR.MINOR".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Tag returns the Medusa-style configuration tag, e.g. "CLONE_1_19".
func (v Version) Tag() string { return fmt.Sprintf("CLONE_%d_%d", v.Major, v.Minor) }

// Next returns the version with MINOR incremented.
func (v Version) Next() Version { return Version{v.Major, v.Minor + 1} }

// Compare returns -1, 0 or +1 as v sorts before, equal to or after o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Major != o.Major:
		return cmpInt(v.Major, o.Major)
	default:
		return cmpInt(v.Minor, o.Minor)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CompareStrings orders two version strings numerically; strings that do
// not parse sort first, by byte order.
func CompareStrings(a, b string) int {
	va, ea := ParseVersion(a)
	vb, eb := ParseVersion(b)
	switch {
	case ea == nil && eb == nil:
		return va.Compare(vb)
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	}
	return 1
}

// FileName is the name of the version file on clone media and in the
// store (medium.Version).
const FileName = medium.Version

// ReadFile reads a CLONE_CD_VERSION file.
func ReadFile(path string) (Version, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Version{}, err
	}
	v, err := ParseVersion(string(firstLine(b)))
	if err != nil {
		return Version{}, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// WriteFile writes v to a CLONE_CD_VERSION file as "MAJOR.MINOR\n":
// temporary file, fsync, rename, fsync of the directory.
func WriteFile(path string, v Version) error {
	return atomicfile.WriteFile(path, []byte(v.String()+"\n"), 0o644)
}
