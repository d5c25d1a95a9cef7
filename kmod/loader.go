package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultDir is the running kernel's module tree, /lib/modules/$(uname -r).
func DefaultDir() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "/lib/modules"
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
}

// Loader loads modules into the running kernel from an Index.
type Loader struct {
	Index *Index
	// Sys is the sysfs mount ("/sys"), used to see what is loaded.
	Sys string
	// Log, if set, is told about every module loaded or failed.
	Log func(format string, a ...any)
	// DryRun resolves and reports without loading.
	DryRun bool

	mu     sync.Mutex
	done   map[string]error // modules tried: nil = loaded or already there
	loaded []string         // modules this loader inserted, in order
	seen   map[string]bool  // modaliases handled by coldplug
}

// NewLoader returns a loader for the module tree dir.
func NewLoader(dir string) (*Loader, error) {
	x, err := Load(dir)
	if err != nil {
		return nil, err
	}
	return &Loader{Index: x, Sys: "/sys"}, nil
}

// Loaded lists the modules this loader inserted, in load order.
func (l *Loader) Loaded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.loaded...)
}

func (l *Loader) logf(format string, a ...any) {
	if l.Log != nil {
		l.Log(format, a...)
	}
}

// IsLoaded reports whether module name is live in the kernel (or built in).
func (l *Loader) IsLoaded(name string) bool {
	if l.Index.Builtin[name] {
		return true
	}
	b, err := os.ReadFile(filepath.Join(l.Sys, "module", name, "initstate"))
	return err == nil && strings.TrimSpace(string(b)) == "live"
}

// Load loads the modules a name or alias resolves to, with their
// dependencies and softdeps, and returns the modules it inserted. params
// go to the named module only. Loading a module that is already there is
// not an error; an alias matching nothing is.
func (l *Loader) Load(nameOrAlias, params string) ([]string, error) {
	mods := l.Index.Lookup(nameOrAlias)
	if len(mods) == 0 {
		return nil, fmt.Errorf("kmod: no module for %q in %s", nameOrAlias, l.Index.Dir)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	before := len(l.loaded)
	var errs []error
	for _, m := range mods {
		if err := l.loadLocked(m, params, 0); err != nil {
			errs = append(errs, err)
		}
	}
	added := append([]string(nil), l.loaded[before:]...)
	if len(errs) == len(mods) {
		return added, errors.Join(errs...)
	}
	return added, nil
}

func (l *Loader) loadLocked(name, params string, depth int) error {
	if l.done == nil {
		l.done = map[string]error{}
	}
	if err, ok := l.done[name]; ok {
		return err
	}
	if depth > 64 {
		return fmt.Errorf("kmod: %s: dependency loop", name)
	}
	if l.IsLoaded(name) {
		l.done[name] = nil
		return nil
	}
	rel, ok := l.Index.Path[name]
	if !ok {
		err := fmt.Errorf("kmod: module %s not in %s/modules.dep", name, l.Index.Dir)
		l.done[name] = err
		return err
	}
	sd := l.Index.Softdeps[name]
	for _, p := range sd.Pre {
		for _, m := range l.Index.Lookup(p) {
			if err := l.loadLocked(m, "", depth+1); err != nil {
				l.logf("kmod: softdep %s of %s: %v", m, name, err)
			}
		}
	}
	deps := l.Index.Deps[name]
	for i := len(deps) - 1; i >= 0; i-- {
		if err := l.loadLocked(deps[i], "", depth+1); err != nil {
			err = fmt.Errorf("kmod: %s needs %s: %w", name, deps[i], err)
			l.done[name] = err
			return err
		}
	}
	err := l.insert(filepath.Join(l.Index.Dir, rel), params)
	l.done[name] = err
	if err != nil {
		l.logf("kmod: %s: %v", name, err)
		return fmt.Errorf("kmod: loading %s: %w", name, err)
	}
	l.loaded = append(l.loaded, name)
	l.logf("kmod: loaded %s", name)
	for _, p := range sd.Post {
		for _, m := range l.Index.Lookup(p) {
			if err := l.loadLocked(m, "", depth+1); err != nil {
				l.logf("kmod: softdep %s of %s: %v", m, name, err)
			}
		}
	}
	return nil
}

// insert puts one module file into the kernel: finit_module on the file,
// init_module on its decompressed bytes for compressed modules or kernels
// without finit_module. EEXIST (a race with another loader) is success.
func (l *Loader) insert(path, params string) error {
	if l.DryRun {
		return nil
	}
	var err error
	if !Compressed(path) {
		var f *os.File
		f, err = os.Open(path)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), params, 0)
		f.Close()
	}
	if Compressed(path) || errors.Is(err, unix.ENOSYS) {
		var data []byte
		data, err = ReadModule(path)
		if err != nil {
			return err
		}
		err = unix.InitModule(data, params)
	}
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
