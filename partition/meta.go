package partition

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// parseMeta reads the text after "# clonecd:".
func (l *Layout) parseMeta(s string, n int) error {
	kv, err := splitKV(s)
	if err != nil {
		return l.lineErr(n, "clonecd: %v", err)
	}
	var p *Part
	for _, e := range kv {
		if e[0] == "part" {
			v, err := strconv.Atoi(e[1])
			if err != nil || v <= 0 {
				return l.lineErr(n, "clonecd: part=%q is not a partition number", e[1])
			}
			if p = l.Part(v); p == nil {
				return l.lineErr(n, "clonecd: part=%d: no such partition in the layout", v)
			}
		}
	}
	if p == nil {
		return l.lineErr(n, "clonecd: line needs part=N")
	}
	for _, e := range kv {
		k, v := e[0], e[1]
		switch k {
		case "part":
		case "fs":
			switch v {
			case "ext2", "ext3", "ext4", "xfs", "vfat", "swap", "none", "":
			default:
				return l.lineErr(n, "clonecd: fs=%q not supported (ext2, ext3, ext4, xfs, vfat, swap, none)", v)
			}
			if v == "none" {
				v = ""
			}
			p.FS = v
		case "mount":
			if err := checkMount(v); err != nil {
				return l.lineErr(n, "clonecd: mount=%q %v", v, err)
			}
			if v == "none" {
				v = ""
			}
			p.Mount = v
		case "label":
			p.FSLabel = v
		case "mkfs":
			p.Mkfs = v
		case "preserve", "grow":
			b, ok := ParseBool(v)
			if !ok {
				return l.lineErr(n, "clonecd: %s=%q is not yes or no", k, v)
			}
			if k == "grow" {
				p.Grow = b
			} else {
				p.Preserve, p.explicitPreserve = b, true
			}
		case "maxsize":
			sz, bytes, err := parseSize(v)
			if err != nil {
				return l.lineErr(n, "clonecd: maxsize: %v", err)
			}
			if bytes {
				sz /= uint64(l.SectorBytes())
			}
			p.MaxSize = sz
		default:
			return l.lineErr(n, "clonecd: unknown key %q (known: part, fs, mount, label, mkfs, preserve, grow, maxsize)", k)
		}
	}
	return nil
}

// ParseBool reads the yes/no words of "# clonecd:" lines and kickstart
// options: yes, y, true, 1, on and no, n, false, 0, off (any case); ok is
// false for anything else.
func ParseBool(v string) (b, ok bool) {
	switch strings.ToLower(v) {
	case "yes", "y", "true", "1", "on":
		return true, true
	case "no", "n", "false", "0", "off":
		return false, true
	}
	return false, false
}

// splitKV splits `a=b c="d e"` into pairs. Double-quoted values may use \"
// and \\.
func splitKV(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j >= len(s) || s[j] != '=' {
			return nil, fmt.Errorf("%q is not key=value", s[i:j])
		}
		key := s[i:j]
		if key == "" {
			return nil, fmt.Errorf("empty key")
		}
		j++
		var val strings.Builder
		if j < len(s) && s[j] == '"' {
			j++
			closed := false
			for j < len(s) {
				c := s[j]
				if c == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\') {
					val.WriteByte(s[j+1])
					j += 2
					continue
				}
				if c == '"' {
					closed = true
					j++
					break
				}
				val.WriteByte(c)
				j++
			}
			if !closed {
				return nil, fmt.Errorf("%s: unterminated quote", key)
			}
			if j < len(s) && s[j] != ' ' && s[j] != '\t' {
				return nil, fmt.Errorf("%s: text after closing quote", key)
			}
		} else {
			for j < len(s) && s[j] != ' ' && s[j] != '\t' {
				val.WriteByte(s[j])
				j++
			}
		}
		out = append(out, [2]string{key, val.String()})
		i = j
	}
}

func quoteMeta(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"\\") {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `"`, `\"`)
	return `"` + v + `"`
}

// checkMount accepts "", "none" and clean absolute paths: the clone
// mounts the partition at root+mount, so "/../x" would mount outside the
// new root.
func checkMount(v string) error {
	switch {
	case v == "" || v == "none":
		return nil
	case !strings.HasPrefix(v, "/"):
		return errors.New("is not an absolute path")
	case slices.Contains(strings.Split(v, "/"), ".."):
		return errors.New(`has a ".." component`)
	case path.Clean(v) != v:
		return fmt.Errorf("is not a clean path (write %s)", path.Clean(v))
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("has a control character")
	}
	return nil
}
