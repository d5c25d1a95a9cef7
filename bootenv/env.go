package bootenv

import "io"

// Env is what setup found; the clone steps read it.
type Env struct {
	Cmdline  map[string]string // every key=value (and bare key → "") of /proc/cmdline
	Log      io.Writer         // console and /tmp/clone.log
	MediaDev string            // block device holding the clone media ("" for network mode)
	MediaDir string            // where the media is mounted read-only
	Modules  []string          // modules loaded by coldplug, in load order
}
