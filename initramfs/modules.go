package initramfs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clonecd/clonecd/kmod"
)

// selector is one --add-module/--omit-module word.
type selector string

// matches reports whether module name (at rel in the tree) is selected:
// a path glob when the word has a '/', else a glob on the name.
func (s selector) matches(name, rel string) bool {
	w := string(s)
	if strings.Contains(w, "/") {
		if strings.HasSuffix(w, "/") {
			return strings.HasPrefix(rel, w)
		}
		return kmod.Glob(w, rel) || strings.HasPrefix(rel, w+"/")
	}
	return kmod.Glob(kmod.Name(w), name)
}

func selectModules(x *kmod.Index, o Options) (mods []string, err error) {
	want := map[string]bool{}
	for _, m := range x.Modules() {
		rel := x.Path[m]
		if hasPrefix(rel, DefaultModuleDirs) && !hasPrefix(rel, DefaultExclude) {
			want[m] = true
		}
	}
	forced := map[string]bool{} // added by name: wins over an omit
	for _, a := range o.AddModules {
		n := 0
		for _, m := range x.Modules() {
			if selector(a).matches(m, x.Path[m]) {
				want[m] = true
				forced[m] = !strings.ContainsAny(a, "*?[/")
				n++
			}
		}
		if n == 0 && !strings.Contains(a, "/") {
			for _, m := range x.Lookup(a) {
				if !x.Builtin[m] {
					want[m] = true
					forced[m] = true
				}
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("--add-module %s: no such module or alias in %s", a, x.Dir)
		}
	}
	omitted := func(m string) bool {
		if forced[m] {
			return false
		}
		for _, s := range o.OmitModules {
			if selector(s).matches(m, x.Path[m]) {
				return true
			}
		}
		return false
	}
	var names []string
	for m := range want {
		if !omitted(m) {
			names = append(names, m)
		}
	}
	sort.Strings(names)
	closure, missing := x.Closure(names)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: modules.dep names modules that are not there: %v", x.Dir, missing)
	}
	// Drop what needs an omitted module (it could not load anyway).
	bad := map[string]bool{}
	var needsBad func(m string, depth int) bool
	needsBad = func(m string, depth int) bool {
		if omitted(m) {
			return true
		}
		if depth > 64 {
			return false
		}
		for _, d := range x.Deps[m] {
			if needsBad(d, depth+1) {
				return true
			}
		}
		return false
	}
	for _, m := range closure {
		if needsBad(m, 0) {
			bad[m] = true
			continue
		}
		mods = append(mods, m)
	}
	return mods, nil
}

// addModules copies the selected modules, index files filtered to them and
// the firmware they name.
func addModules(t *tree, o Options, s *Summary) error {
	x, err := kmod.Load(o.Modules)
	if err != nil {
		return err
	}
	mods, err := selectModules(x, o)
	if err != nil {
		return err
	}
	dest := path.Join("/lib/modules", o.KernelVersion)
	in := map[string]bool{}
	var dep bytes.Buffer
	for _, m := range mods {
		in[m] = true
	}
	// modules.dep in the tree's own order, only modules we carry.
	for _, m := range x.Modules() {
		if !in[m] {
			continue
		}
		rel := x.Path[m]
		if err := t.file(path.Join(dest, rel), filepath.Join(o.Modules, rel)); err != nil {
			return err
		}
		fmt.Fprintf(&dep, "%s:", rel)
		for _, d := range x.Deps[m] {
			fmt.Fprintf(&dep, " %s", x.Path[d])
		}
		dep.WriteByte('\n')
	}
	t.bytes(path.Join(dest, "modules.dep"), 0o644, dep.Bytes())
	s.Modules = len(mods)
	keep := func(file string, ok func(fields []string) bool) error {
		b, err := os.ReadFile(filepath.Join(o.Modules, file))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if ok == nil {
			t.bytes(path.Join(dest, file), 0o644, b)
			return nil
		}
		var out bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 || strings.HasPrefix(f[0], "#") || ok(f) {
				out.Write(sc.Bytes())
				out.WriteByte('\n')
			}
		}
		t.bytes(path.Join(dest, file), 0o644, out.Bytes())
		return sc.Err()
	}
	for _, k := range []struct {
		file string
		ok   func([]string) bool
	}{
		{"modules.alias", func(f []string) bool { return len(f) == 3 && in[kmod.Name(f[2])] }},
		{"modules.softdep", func(f []string) bool { return len(f) >= 2 && in[kmod.Name(f[1])] }},
		{"modules.order", func(f []string) bool { return in[kmod.Name(f[0])] }},
		{"modules.builtin", nil},
		{"modules.builtin.modinfo", nil},
	} {
		if err := keep(k.file, k.ok); err != nil {
			return err
		}
	}
	if o.NoFirmware {
		return nil
	}
	seen := map[string]bool{}
	for _, m := range mods {
		fws, err := kmod.Firmware(filepath.Join(o.Modules, x.Path[m]))
		if err != nil {
			return err
		}
		for _, fw := range fws {
			if seen[fw] {
				continue
			}
			seen[fw] = true
			found := false
			for _, suffix := range []string{"", ".xz", ".zst"} {
				src := filepath.Join(o.Firmware, fw+suffix)
				if st, err := os.Stat(src); err == nil && st.Mode().IsRegular() {
					if err := t.file(path.Join("/lib/firmware", fw+suffix), src); err != nil {
						return err
					}
					s.Firmware++
					found = true
					break
				}
			}
			if !found {
				s.FirmwareMiss = append(s.FirmwareMiss, fw)
			}
		}
	}
	sort.Strings(s.FirmwareMiss)
	return nil
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
