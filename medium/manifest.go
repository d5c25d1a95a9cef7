package medium

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ManifestFormat is the first line of a version 1 manifest.
const ManifestFormat = "clonecd-manifest 1"

// MaxManifest bounds a manifest's size (a reader never takes more).
const MaxManifest = 1 << 20

// Manifest is a version's manifest: what the master signs.
type Manifest struct {
	Version string
	Date    time.Time // UTC, whole seconds
	Files   []File    // sorted by Name, names unique
	// BTIH maps a listed file's name to its BitTorrent v1 infohash (40
	// lower case hex digits).
	BTIH map[string]string
}

// File is one file of a version.
type File struct {
	Name   string
	Size   int64
	SHA256 string // 64 lower case hex digits
}

// LineError is a manifest parse error at a line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s: line %d: %v", ManifestFile, e.Line, e.Err)
}
func (e *LineError) Unwrap() error { return e.Err }

// Lookup returns the record of name.
func (m *Manifest) Lookup(name string) (File, bool) {
	i := sort.Search(len(m.Files), func(i int) bool { return m.Files[i].Name >= name })
	if i < len(m.Files) && m.Files[i].Name == name {
		return m.Files[i], true
	}
	return File{}, false
}

// Image returns the record of the image the manifest lists (the first
// of Images it has).
func (m *Manifest) Image() (File, bool) {
	for _, n := range Images {
		if f, ok := m.Lookup(n); ok {
			return f, true
		}
	}
	return File{}, false
}

// Add records a file (replacing a record of the same name) and keeps the
// list sorted.
func (m *Manifest) Add(f File) {
	if i := sort.Search(len(m.Files), func(i int) bool { return m.Files[i].Name >= f.Name }); i < len(m.Files) && m.Files[i].Name == f.Name {
		m.Files[i] = f
		return
	}
	m.Files = append(m.Files, f)
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
}

// Marshal returns the manifest's text. It fails on a manifest Parse
// would refuse.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nversion %s\ndate %s\n", ManifestFormat, m.Version, m.Date.UTC().Format(time.RFC3339))
	for _, f := range m.Files {
		fmt.Fprintf(&b, "file %s %d %s\n", f.SHA256, f.Size, f.Name)
	}
	names := make([]string, 0, len(m.BTIH))
	for n := range m.BTIH {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "btih %s %s\n", m.BTIH[n], n)
	}
	return b.Bytes(), nil
}

func (m *Manifest) validate() error {
	if err := ValidVersion(m.Version); err != nil {
		return err
	}
	if m.Date.IsZero() {
		return errors.New("manifest has no date")
	}
	for i, f := range m.Files {
		if err := ValidName(f.Name); err != nil {
			return err
		}
		if i > 0 && m.Files[i-1].Name >= f.Name {
			return fmt.Errorf("file %s: names not sorted or not unique", f.Name)
		}
		if f.Size < 0 {
			return fmt.Errorf("file %s: negative size", f.Name)
		}
		if err := checkHex(f.SHA256, 64); err != nil {
			return fmt.Errorf("file %s: sha256: %v", f.Name, err)
		}
	}
	for n, h := range m.BTIH {
		if _, ok := m.Lookup(n); !ok {
			return fmt.Errorf("btih for %s, which is not a file of the manifest", n)
		}
		if err := checkHex(h, 40); err != nil {
			return fmt.Errorf("btih %s: %v", n, err)
		}
	}
	return nil
}

// ValidVersion accepts MAJOR.MINOR, decimal, no leading zeros, at most 9
// digits each: the one spelling of a version (package versions parses
// the same and also reads Medusa's CLONE_1_19 tags).
func ValidVersion(v string) error {
	maj, min, ok := strings.Cut(v, ".")
	if !ok {
		return fmt.Errorf("version %q: want MAJOR.MINOR", v)
	}
	for _, p := range []string{maj, min} {
		if p == "" || len(p) > 9 || len(p) > 1 && p[0] == '0' || strings.Trim(p, "0123456789") != "" {
			return fmt.Errorf("version %q: want MAJOR.MINOR", v)
		}
	}
	return nil
}

// ParseManifest reads a manifest. Every deviation from the format in the
// package documentation is a *LineError.
func ParseManifest(r io.Reader) (*Manifest, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if len(b) > MaxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", ManifestFile, MaxManifest)
	}
	if len(b) == 0 {
		return nil, &LineError{1, errors.New("empty")}
	}
	if b[len(b)-1] != '\n' {
		return nil, &LineError{bytes.Count(b, []byte{'\n'}) + 1, errors.New("no newline at the end")}
	}
	m := &Manifest{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), MaxManifest)
	n := 0
	bad := func(format string, a ...any) error { return &LineError{n, fmt.Errorf(format, a...)} }
	for sc.Scan() {
		n++
		line := sc.Text()
		f := strings.Split(line, " ")
		if n == 1 {
			if line != ManifestFormat {
				return nil, bad("want %q, got %.60q", ManifestFormat, line)
			}
			continue
		}
		switch f[0] {
		case "version":
			if len(f) != 2 || n != 2 {
				return nil, bad("want \"version MAJOR.MINOR\" as the second line")
			}
			if err := ValidVersion(f[1]); err != nil {
				return nil, bad("%v", err)
			}
			m.Version = f[1]
		case "date":
			if len(f) != 2 || n != 3 {
				return nil, bad("want \"date RFC3339\" as the third line")
			}
			t, err := time.Parse(time.RFC3339, f[1])
			if err != nil {
				return nil, bad("date: %v", err)
			}
			m.Date = t.UTC()
		case "file":
			if n < 4 || m.BTIH != nil {
				return nil, bad("file records come after date and before btih records")
			}
			if len(f) != 4 {
				return nil, bad("want \"file SHA256 SIZE NAME\"")
			}
			if err := checkHex(f[1], 64); err != nil {
				return nil, bad("sha256 %.70q: %v", f[1], err)
			}
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || size < 0 || f[2] != strconv.FormatInt(size, 10) {
				return nil, bad("size %.30q is not a byte count", f[2])
			}
			if err := ValidName(f[3]); err != nil {
				return nil, bad("%v", err)
			}
			if k := len(m.Files); k > 0 && m.Files[k-1].Name >= f[3] {
				return nil, bad("file %s: names must be sorted and unique (after %s)", f[3], m.Files[k-1].Name)
			}
			m.Files = append(m.Files, File{Name: f[3], Size: size, SHA256: f[1]})
		case "btih":
			if n < 4 {
				return nil, bad("btih records come after date")
			}
			if len(f) != 3 {
				return nil, bad("want \"btih INFOHASH NAME\"")
			}
			if err := checkHex(f[1], 40); err != nil {
				return nil, bad("infohash %.50q: %v", f[1], err)
			}
			if _, ok := m.Lookup(f[2]); !ok {
				return nil, bad("btih for %.60q, which has no file record", f[2])
			}
			if m.BTIH == nil {
				m.BTIH = map[string]string{}
			}
			if _, dup := m.BTIH[f[2]]; dup {
				return nil, bad("second btih for %s", f[2])
			}
			m.BTIH[f[2]] = f[1]
		default:
			return nil, bad("unknown record %.30q", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &LineError{n + 1, err}
	}
	if m.Version == "" || m.Date.IsZero() {
		return nil, &LineError{n, errors.New("no version or date line")}
	}
	return m, nil
}
