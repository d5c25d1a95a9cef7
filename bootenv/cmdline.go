package bootenv

import (
	"os"
	"strings"
)

// ParseCmdline splits a kernel command line into key → value (bare words
// map to ""), honouring double quotes as the kernel does (key="a b").
// Words after a lone "--" belong to init and are left out. Later keys win,
// except console=, whose values are joined with spaces in order.
func ParseCmdline(s string) map[string]string {
	m := map[string]string{}
	for _, w := range splitCmdline(s) {
		if w == "--" {
			break
		}
		k, v, _ := strings.Cut(w, "=")
		if k == "console" {
			if old, ok := m[k]; ok && old != "" {
				v = old + " " + v
			}
		}
		m[k] = v
	}
	return m
}

func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inq, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inq = !inq
			have = true
		case !inq && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// ReadCmdline parses /proc/cmdline.
func ReadCmdline() (map[string]string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	return ParseCmdline(string(b)), nil
}

// ConsoleDevices turns the console= values into device paths:
// "tty0 ttyS0,115200" → /dev/tty0, /dev/ttyS0. None gives /dev/console.
func ConsoleDevices(console string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range strings.Fields(console) {
		name, _, _ := strings.Cut(c, ",")
		if name == "" || strings.ContainsAny(name, "/.") || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, "/dev/"+name)
	}
	if len(out) == 0 {
		out = []string{"/dev/console"}
	}
	return out
}
