package bootenv

import (
	"fmt"
	"io"
	"os"

	"github.com/clonecd/clonecd/kmod"
)

// Env is what setup found; the clone steps read it.
type Env struct {
	Cmdline  map[string]string // every key=value (and bare key → "") of /proc/cmdline
	Log      io.Writer         // console and /tmp/clone.log
	MediaDev string            // block device holding the clone media ("" for network mode)
	MediaDir string            // where the media is mounted read-only
	Modules  []string          // modules loaded by coldplug, in load order

	MediaFS  string       // filesystem type of the media (iso9660, vfat)
	Version  string       // the media's CLONE_CD_VERSION
	Consoles []string     // console devices (/dev/ttyS0, /dev/tty0) from console= or /dev/console
	Loader   *kmod.Loader // module loader (nil when the kernel has no module tree)
	LogFile  *os.File     // /tmp/clone.log (nil if it could not be created)
	FileLog  io.Writer    // the log file only (details kept off the console)
}

// Logf writes a line to Log.
func (e *Env) Logf(format string, a ...any) {
	w := e.Log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, format+"\n", a...)
}

// LoadModule loads a module or alias (with dependencies and softdeps).
func (e *Env) LoadModule(nameOrAlias string) error {
	if e.Loader == nil {
		return fmt.Errorf("bootenv: no module tree, cannot load %s", nameOrAlias)
	}
	added, err := e.Loader.Load(nameOrAlias, "")
	e.Modules = append(e.Modules, added...)
	return err
}

// teeWriter writes to every writer and ignores the ones that fail (a
// console that went away must not stop the log).
type teeWriter []io.Writer

func (t teeWriter) Write(p []byte) (int, error) {
	for _, w := range t {
		w.Write(p)
	}
	return len(p), nil
}
