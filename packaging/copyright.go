package packaging

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

// isLicenseFile says whether a file in a module's top directory holds a
// license: LICENSE, license, LICENSE.md, COPYING, LICENSE-MIT, GO_LICENSE
// (pgzip's copy of Go's), ... in any case.
func isLicenseFile(name string) bool {
	n := strings.ToUpper(name)
	base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, ".MD"), ".TXT"), ".RST")
	for _, w := range []string{"LICENSE", "LICENCE", "COPYING"} {
		if base == w || strings.HasPrefix(base, w+"-") || strings.HasSuffix(base, "_"+w) {
			return true
		}
	}
	return false
}

// commonLicenses are license texts Debian ships in /usr/share/common-licenses:
// a copyright file names them instead of repeating them (lintian's
// copyright-file-contains-full-apache-2-license).
var commonLicenses = []struct{ marker, name string }{
	{"Apache License\n", "Apache-2.0"},
	{"                       Version 2.0, January 2004", "Apache-2.0"},
	{"Mozilla Public License Version 2.0", "MPL-2.0"},
}

// module is one Go module linked into the binary.
type module struct{ path, version, dir string }

// linkedModules reads the modules linked into bin from its build
// information, with their directories in the module cache.
func linkedModules(bin, modCache string) ([]module, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its Go build information: %w", bin, err)
	}
	var mods []module
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		p, err := escapeModulePath(d.Path)
		if err != nil {
			return nil, err
		}
		mods = append(mods, module{d.Path, d.Version, filepath.Join(modCache, p+"@"+d.Version)})
	}
	return mods, nil
}

// escapeModulePath is the module cache's case encoding: an upper-case
// letter is written '!' and its lower case.
func escapeModulePath(p string) (string, error) {
	var b strings.Builder
	for _, r := range p {
		switch {
		case r == '!' || r > unicode.MaxASCII:
			return "", fmt.Errorf("module path %q: not a valid module path", p)
		case unicode.IsUpper(r):
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// licenseTexts returns the license files of a module directory, by name.
func licenseTexts(dir string) ([]string, map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is the module in the cache? go mod download)", err)
	}
	var names []string
	texts := map[string][]byte{}
	for _, e := range ents {
		if e.Type().IsRegular() && isLicenseFile(e.Name()) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, nil, err
			}
			names = append(names, e.Name())
			texts[e.Name()] = b
		}
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("%s: no license file (LICENSE, COPYING, ...)", dir)
	}
	return names, texts, nil
}

// Copyright writes the package's copyright file: clonecd's own notice,
// then, as the binary is static, the Go standard library's license and
// that of every module linked into bin (from its build information and
// the module cache), each text once, naming the modules that share it.
func Copyright(bin, goroot, modCache string) ([]byte, error) {
	mods, err := linkedModules(bin, modCache)
	if err != nil {
		return nil, err
	}
	mods = append([]module{{"the Go standard library and runtime", "", goroot}}, mods...)
	type group struct {
		names []string
		text  []byte
	}
	groups := map[[32]byte]*group{}
	var order [][32]byte
	for _, m := range mods {
		files, texts, err := licenseTexts(m.dir)
		if err != nil {
			return nil, fmt.Errorf("license of %s %s: %w", m.path, m.version, err)
		}
		for _, file := range files {
			// one block per text, and one per common license (Apache-2.0
			// texts differ in white space only)
			k := sha256.Sum256(bytes.TrimSpace(texts[file]))
			if name := commonLicense(texts[file]); name != "" {
				k = sha256.Sum256([]byte("common-licenses/" + name))
			}
			g, ok := groups[k]
			if !ok {
				g = &group{text: texts[file]}
				groups[k] = g
				order = append(order, k)
			}
			name := strings.TrimSpace(m.path + " " + m.version)
			g.names = append(g.names, name+" ("+file+")")
		}
	}
	var b bytes.Buffer
	b.WriteString(copyrightHead)
	for _, k := range order {
		g := groups[k]
		sort.Strings(g.names)
		b.WriteString("\n-------------------------------------------------------------------------------\n")
		fmt.Fprintf(&b, "%s:\n\n", strings.Join(g.names, ",\n"))
		if name := commonLicense(g.text); name != "" {
			fmt.Fprintf(&b, "  On Debian systems, the complete text of the %s license is in\n  /usr/share/common-licenses/%s.\n", name, name)
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(string(g.text), "\n"), "\n") {
			line = strings.TrimRight(line, " \t\r")
			if line == "" {
				b.WriteString("\n")
			} else {
				b.WriteString("  " + line + "\n")
			}
		}
	}
	return b.Bytes(), nil
}

func commonLicense(text []byte) string {
	for _, c := range commonLicenses {
		if bytes.Contains(text, []byte(c.marker)) {
			return c.name
		}
	}
	return ""
}

const copyrightHead = `clonecd: clone CDs and network recloning for cluster nodes

Copyright: the clonecd authors.
License: not named yet: clonecd's repository has no license file. The
  authors decide it; this file is generated by the packager (package
  packaging) and changes with it.

clonecd is one static Go binary: it contains the Go standard library and
runtime and the Go modules below, each under its own license, quoted as
its module ships it.
`
