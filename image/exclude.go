package image

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// DefaultExcludes are the runtime trees, per-node identity and package
// caches that pack leaves out unless told otherwise (--no-default-excludes,
// --include). The directories themselves stay in the image.
var DefaultExcludes = []string{
	"/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/var/tmp/*",
	"lost+found/*",
	"/etc/ssh/ssh_host_*",
	"/var/lib/dbus/machine-id",
	"/etc/hostname",
	"/var/cache/apt/archives/*.deb", "/var/cache/apt/archives/partial/*",
	"/var/cache/apt/*.bin",
	"/var/cache/yum/*", "/var/cache/dnf/*",
	"/var/lib/apt/lists/*_*",
}

// DefaultEmptied are files kept as empty files: their content is per node.
// systemd fills an empty /etc/machine-id on first boot.
var DefaultEmptied = []string{"/etc/machine-id"}

// Pattern is one rsync-style pattern, matched against paths relative to
// the packed root written with a leading slash ("/etc/passwd"):
//   - a leading "/" anchors it at ROOT, otherwise it matches the end of the
//     path at a component boundary ("*.pyc", "cache/*.bin");
//   - a trailing "/" matches directories only;
//   - "*" and "?" match within a component, "**" across components,
//     "[...]" a character class; "dir/***" matches dir and all below it.
type Pattern struct {
	Text    string
	dirOnly bool
	re      *regexp.Regexp
}

// ParsePattern compiles an rsync-style pattern.
func ParsePattern(p string) (*Pattern, error) {
	text := p
	if strings.TrimSpace(p) == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	pat := &Pattern{Text: text}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		pat.dirOnly = true
		p = strings.TrimSuffix(p, "/")
	}
	var b strings.Builder
	if strings.HasPrefix(p, "/") {
		b.WriteString("^")
	} else {
		b.WriteString("^(?:.*/)?") // paths always start with "/"
	}
	suffix := "$"
	if strings.HasSuffix(p, "/***") {
		p = strings.TrimSuffix(p, "/***")
		suffix = "(?:/.*)?$"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				b.WriteString(".*")
				for i+1 < len(p) && p[i+1] == '*' {
					i++
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(p[i+1:], ']')
			if j < 0 {
				return nil, fmt.Errorf("pattern %q: unterminated [", text)
			}
			class := p[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(string(p[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(suffix)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", text, err)
	}
	pat.re = re
	return pat, nil
}

// Match reports whether the path (leading "/") matches.
func (p *Pattern) Match(path string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	return p.re.MatchString(path)
}

// Filter decides which paths pack leaves out.
type Filter struct {
	Excludes []*Pattern
	Includes []*Pattern // override Excludes
	Emptied  []*Pattern // kept, but as empty files
}

// NewFilter builds a filter from the defaults (unless noDefaults), extra
// exclude patterns and include patterns.
func NewFilter(noDefaults bool, excludes, includes []string) (*Filter, error) {
	f := &Filter{}
	var ex, em []string
	if !noDefaults {
		ex = append(ex, DefaultExcludes...)
		em = append(em, DefaultEmptied...)
	}
	ex = append(ex, excludes...)
	for _, list := range []struct {
		src []string
		dst *[]*Pattern
	}{{ex, &f.Excludes}, {includes, &f.Includes}, {em, &f.Emptied}} {
		for _, s := range list.src {
			p, err := ParsePattern(s)
			if err != nil {
				return nil, err
			}
			*list.dst = append(*list.dst, p)
		}
	}
	return f, nil
}

func anyMatch(ps []*Pattern, path string, isDir bool) bool {
	for _, p := range ps {
		if p.Match(path, isDir) {
			return true
		}
	}
	return false
}

// Excluded reports whether path (leading "/") is left out.
func (f *Filter) Excluded(path string, isDir bool) bool {
	if f == nil || !anyMatch(f.Excludes, path, isDir) {
		return false
	}
	return !anyMatch(f.Includes, path, isDir)
}

// IsEmptied reports whether path is kept as an empty file.
func (f *Filter) IsEmptied(path string) bool {
	return f != nil && anyMatch(f.Emptied, path, false) && !anyMatch(f.Includes, path, false)
}

// ReadPatterns reads an --exclude-from file: one pattern a line; blank
// lines and lines starting with # or ; are ignored.
func ReadPatterns(file string) ([]string, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if _, err := ParsePattern(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}
