package kmod

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Modprobe is clonecd's /sbin/modprobe: `modprobe [-q] [-v] [-n] [-a]
// [-d DIR] [--] NAME [PARAMS...]`, as the kernel's usermode helper calls
// it (`modprobe -q -- fs-ext4`). It loads the named module or every module
// an alias matches, dependencies and softdeps first, and returns an exit
// status. Messages go to w and, when the kernel called (no terminal),
// /dev/kmsg.
func Modprobe(args []string, w io.Writer) int {
	quiet, verbose, all, dry := false, false, false, false
	dir := ""
	var names []string
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		switch a {
		case "-q", "--quiet":
			quiet = true
		case "-v", "--verbose":
			verbose = true
		case "-a", "--all":
			all = true
		case "-n", "--dry-run", "--show":
			dry = true
		case "-b", "--use-blacklist", "-s", "--syslog":
		case "-d", "--dirname":
			if i+1 < len(args) {
				i++
				dir = args[i]
			}
		case "-h", "--help":
			fmt.Fprintln(w, "usage: modprobe [-q] [-v] [-n] [-a] [-d DIR] [--] NAME [PARAM=VALUE...]")
			return 0
		case "-r", "--remove":
			fmt.Fprintln(w, "modprobe: removing modules is not supported")
			return 1
		default:
			fmt.Fprintf(w, "modprobe: unknown option %s\n", a)
			return 2
		}
	}
	rest := args[i:]
	if len(rest) == 0 {
		fmt.Fprintln(w, "modprobe: no module named")
		return 2
	}
	params := ""
	if all {
		names = rest
	} else {
		names = rest[:1]
		params = strings.Join(rest[1:], " ")
	}
	switch {
	case dir == "":
		dir = DefaultDir()
	case !exists(filepath.Join(dir, "modules.dep")):
		dir = filepath.Join(dir, DefaultDir()) // -d ROOT: ROOT/lib/modules/VER
	}
	l, err := NewLoader(dir)
	if err != nil {
		if !quiet {
			fmt.Fprintf(w, "modprobe: %v\n", err)
		}
		return 1
	}
	l.DryRun = dry
	kmsg, _ := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if kmsg != nil {
		defer kmsg.Close()
	}
	l.Log = func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if verbose || dry {
			fmt.Fprintln(w, msg)
		}
		if kmsg != nil {
			fmt.Fprintf(kmsg, "clonecd modprobe: %s\n", msg)
		}
	}
	status := 0
	for _, n := range names {
		if _, err := l.Load(n, params); err != nil {
			if !quiet {
				fmt.Fprintf(w, "modprobe: %v\n", err)
			}
			status = 1
		}
	}
	return status
}
