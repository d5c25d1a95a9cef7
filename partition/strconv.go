package partition

import (
	"fmt"
	"strconv"
	"strings"
)

// unhexmangle decodes \xNN sequences as sfdisk does for names.
func unhexmangle(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]) {
			v, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
			b.WriteByte(byte(v))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}

// parseSize parses a number with an optional sfdisk/util-linux suffix
// (K, M, G, T, P, E with optional iB = powers of 1024; KB, MB... = powers of
// 1000). It returns the value and whether a suffix was given (bytes).
func parseSize(s string) (uint64, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false, fmt.Errorf("empty number")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false, fmt.Errorf("malformed number %q", s)
	}
	intPart := s[:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		frac = s[i+1 : j]
		i = j
	}
	v, err := strconv.ParseUint(intPart, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed number %q", s)
	}
	suf := s[i:]
	if suf == "" {
		if frac != "" {
			return 0, false, fmt.Errorf("malformed number %q (fraction without unit)", s)
		}
		return v, false, nil
	}
	letters := "KMGTPE"
	up := strings.ToUpper(suf[:1])
	pow := strings.Index(letters, up) + 1
	if pow == 0 || len(up) != 1 {
		return 0, false, fmt.Errorf("malformed number %q (unknown unit %q)", s, suf)
	}
	base := uint64(1024)
	switch suf[1:] {
	case "", "iB", "ib":
	case "B", "b":
		base = 1000
	default:
		return 0, false, fmt.Errorf("malformed number %q (unknown unit %q)", s, suf)
	}
	mult := uint64(1)
	for k := 0; k < pow; k++ {
		mult *= base
	}
	if v > (1<<63)/mult {
		return 0, false, fmt.Errorf("number %q too large", s)
	}
	total := v * mult
	if frac != "" {
		// fraction of the unit
		fv, _ := strconv.ParseUint(frac, 10, 64)
		div := uint64(1)
		for range frac {
			div *= 10
		}
		total += fv * mult / div
	}
	return total, true, nil
}

// number is a start or size as a layout line gives it.
type number struct {
	set     bool   // a value was given (not empty, "+" or "-")
	unit    bool   // given with a unit: bytes
	sectors uint64 // in the layout's sectors (bytes / sector size with a unit)
	bytes   uint64 // with a unit
}

// parseNumber parses a start or size: sectors, or bytes with a unit
// (converted to sectors of the layout's sector size, rounded down as
// sfdisk does). "", "+" and "-" mean "not given".
func (l *Layout) parseNumber(s string) (number, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "+")
	if s == "" || s == "-" {
		return number{}, nil
	}
	v, unit, err := parseSize(s)
	if err != nil {
		return number{}, err
	}
	if !unit {
		return number{set: true, sectors: v}, nil
	}
	return number{set: true, unit: true, sectors: v / uint64(l.SectorBytes()), bytes: v}, nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isGUIDLike(s string) bool { return strings.Count(s, "-") == 4 }

// quoteName quotes a gpt name as sfdisk does (fputs_quoted).
func quoteName(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c == '`' || c == '$' || c < 0x20 || c > 0x7e {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatBytes writes a size in bytes with a unit sfdisk reads back: the
// largest unit that divides it, else KiB with the exact decimal fraction
// (k/1024 always has a finite one).
func formatBytes(v uint64) string {
	if v == 0 {
		return "0KiB"
	}
	for _, u := range []struct {
		s string
		m uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if v%u.m == 0 {
			return fmt.Sprintf("%d%s", v/u.m, u.s)
		}
	}
	frac := strconv.FormatFloat(float64(v%1024)/1024, 'f', -1, 64) // "0.099609375"
	return fmt.Sprintf("%d%sKiB", v/1024, strings.TrimPrefix(frac, "0"))
}
