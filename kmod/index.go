package kmod

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Alias is one line of modules.alias: a glob pattern and the module it names.
type Alias struct {
	Pattern string
	Module  string
}

// Softdep is one module's modules.softdep entry: modules (or aliases) to
// load before and after it.
type Softdep struct {
	Pre, Post []string
}

// Index is a module tree's metadata: modules.dep, modules.alias,
// modules.softdep and modules.builtin. Module names are normalised (dashes
// become underscores) as the kernel does.
type Index struct {
	Dir      string              // the tree, e.g. /lib/modules/6.1.0-50-amd64
	Path     map[string]string   // module name → path relative to Dir
	Deps     map[string][]string // module name → dependency names, as modules.dep lists them
	Aliases  []Alias
	Softdeps map[string]Softdep
	Builtin  map[string]bool
	order    []string // modules.dep order
}

// Name turns a module path or name (kernel/fs/ext4/ext4.ko.xz, crc32c-intel)
// into the kernel's module name (ext4, crc32c_intel).
func Name(s string) string {
	s = filepath.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// Load reads the index files of the module tree dir. modules.dep is
// required; the others are optional.
func Load(dir string) (*Index, error) {
	x := &Index{Dir: dir, Path: map[string]string{}, Deps: map[string][]string{},
		Softdeps: map[string]Softdep{}, Builtin: map[string]bool{}}
	type part struct {
		file     string
		required bool
		parse    func(io.Reader) error
	}
	for _, p := range []part{
		{"modules.dep", true, x.parseDep},
		{"modules.alias", false, x.parseAlias},
		{"modules.softdep", false, x.parseSoftdep},
		{"modules.builtin", false, x.parseBuiltin},
	} {
		path := filepath.Join(dir, p.file)
		f, err := os.Open(path)
		if err != nil {
			if !p.required && os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("kmod: %w", err)
		}
		err = p.parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("kmod: %s: %w", path, err)
		}
	}
	return x, nil
}

// ParseDep, ParseAlias, ParseSoftdep and ParseBuiltin read one index file
// each into a fresh Index (for tests and tools).
func ParseDep(r io.Reader) (*Index, error)     { x := newIndex(); return x, x.parseDep(r) }
func ParseAlias(r io.Reader) (*Index, error)   { x := newIndex(); return x, x.parseAlias(r) }
func ParseSoftdep(r io.Reader) (*Index, error) { x := newIndex(); return x, x.parseSoftdep(r) }
func ParseBuiltin(r io.Reader) (*Index, error) { x := newIndex(); return x, x.parseBuiltin(r) }

func newIndex() *Index {
	return &Index{Path: map[string]string{}, Deps: map[string][]string{},
		Softdeps: map[string]Softdep{}, Builtin: map[string]bool{}}
}

func lines(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (x *Index) parseDep(r io.Reader) error {
	return lines(r, func(n int, line string) error {
		mod, deps, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" || strings.ContainsAny(mod, " \t") || !strings.Contains(mod, ".ko") {
			return fmt.Errorf("line %d: want \"path.ko: deps...\", got %q", n, line)
		}
		name := Name(mod)
		x.Path[name] = mod
		var dn []string
		for _, d := range strings.Fields(deps) {
			if !strings.Contains(d, ".ko") {
				return fmt.Errorf("line %d: dependency %q is not a module path", n, d)
			}
			x.Path[Name(d)] = d
			dn = append(dn, Name(d))
		}
		if _, dup := x.Deps[name]; !dup {
			x.order = append(x.order, name)
		}
		x.Deps[name] = dn
		return nil
	})
}

func (x *Index) parseAlias(r io.Reader) error {
	return lines(r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return fmt.Errorf("line %d: want \"alias PATTERN MODULE\", got %q", n, line)
		}
		x.Aliases = append(x.Aliases, Alias{Pattern: f[1], Module: Name(f[2])})
		return nil
	})
}

func (x *Index) parseSoftdep(r io.Reader) error {
	return lines(r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "softdep" {
			return fmt.Errorf("line %d: want \"softdep MODULE pre: ... post: ...\", got %q", n, line)
		}
		name := Name(f[1])
		sd := x.Softdeps[name]
		var cur *[]string
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				cur = &sd.Pre
			case "post:":
				cur = &sd.Post
			default:
				if cur == nil {
					// "softdep cifs gcm" (no pre:/post:) as depmod writes
					// for MODULE_SOFTDEP("gcm"): treat as pre.
					cur = &sd.Pre
				}
				*cur = append(*cur, w)
			}
		}
		x.Softdeps[name] = sd
		return nil
	})
}

func (x *Index) parseBuiltin(r io.Reader) error {
	return lines(r, func(n int, line string) error {
		if strings.ContainsAny(line, " \t") {
			return fmt.Errorf("line %d: want a module path, got %q", n, line)
		}
		x.Builtin[Name(line)] = true
		return nil
	})
}

// Modules lists the loadable modules in modules.dep order.
func (x *Index) Modules() []string { return append([]string(nil), x.order...) }

// Lookup resolves a module name or alias (fs-ext4, crypto-crc32c, a
// modalias) to module names. Builtin modules are returned too; callers
// skip them when loading.
func (x *Index) Lookup(nameOrAlias string) []string {
	n := Name(nameOrAlias)
	if _, ok := x.Path[n]; ok || x.Builtin[n] {
		return []string{n}
	}
	return x.Match(nameOrAlias)
}

// Match returns the modules whose modules.alias pattern matches s, sorted
// and without duplicates.
func (x *Index) Match(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range x.Aliases {
		if !seen[a.Module] && Glob(a.Pattern, s) {
			seen[a.Module] = true
			out = append(out, a.Module)
		}
	}
	sort.Strings(out)
	return out
}

// Closure returns names and everything they need (modules.dep
// dependencies, softdeps resolved through aliases), dependencies first.
// Unknown names are returned in missing.
func (x *Index) Closure(names []string) (mods []string, missing []string) {
	done := map[string]bool{}
	var visit func(n string, depth int)
	visit = func(n string, depth int) {
		if done[n] || depth > 64 {
			return
		}
		done[n] = true
		if x.Builtin[n] {
			return
		}
		if _, ok := x.Path[n]; !ok {
			missing = append(missing, n)
			return
		}
		sd := x.Softdeps[n]
		for _, p := range sd.Pre {
			for _, m := range x.Lookup(p) {
				visit(m, depth+1)
			}
		}
		deps := x.Deps[n]
		for i := len(deps) - 1; i >= 0; i-- {
			visit(deps[i], depth+1)
		}
		mods = append(mods, n)
		for _, p := range sd.Post {
			for _, m := range x.Lookup(p) {
				visit(m, depth+1)
			}
		}
	}
	for _, n := range names {
		visit(Name(n), 0)
	}
	return mods, missing
}
