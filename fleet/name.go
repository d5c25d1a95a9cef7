package fleet

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxName is the longest node name: one DNS label.
const MaxName = 63

// AdminName is reserved: it is the user name of the admin's credential
// (package trust), so no node may have it, in any case.
const AdminName = "admin"

// ValidName checks a node name with the rules of a host name label
// (RFC 1123): 1 to 63 letters, digits and hyphens, neither first nor last
// a hyphen, and not AdminName. So a name is never an option to ssh, never
// a path outside the node store, prints as it is, and never passes for
// the admin's credential.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("empty node name")
	}
	if strings.EqualFold(name, AdminName) {
		return fmt.Errorf("node name %q is reserved for the admin's credential", name)
	}
	if len(name) > MaxName {
		return fmt.Errorf("node name %.20q...: longer than %d characters", name, MaxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		case c == '-':
			return fmt.Errorf("node name %q: starts or ends with '-'", name)
		default:
			return fmt.Errorf("node name %q: %q is not a letter, digit or '-'", name, rune(c))
		}
	}
	return nil
}

// Clean makes s safe to store and to print on a terminal: invalid UTF-8
// becomes U+FFFD, line and tab breaks become spaces, and control
// characters (ESC, C1, DEL) and bidirectional overrides are dropped. At
// most max bytes are kept (max <= 0: no cap), cut at a rune boundary.
func Clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r == '\n' || r == '\t' || r == '\r':
				b.WriteByte(' ')
			case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			default:
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// NodeLess orders node names naturally: s2 before s10.
func NodeLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if da != db {
				return da < db
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
