package kmod

// Glob reports whether s matches the fnmatch(3) pattern (flags 0, as kmod
// uses for modules.alias): * any run, ? one byte, [set] with ranges and
// ! or ^ negation, \ escapes. Unlike path.Match, * crosses '/'.
func Glob(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if ok, next, valid := matchClass(pattern, p, s[i]); valid {
					if ok {
						p = next
						i++
						continue
					}
				} else if s[i] == '[' { // unterminated: literal '['
					p++
					i++
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == s[i] {
					p += 2
					i++
					continue
				}
			default:
				if c == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the bracket expression at pattern[p]
// ('['). It returns whether c is in the set, the index after ']', and
// whether the expression is terminated.
func matchClass(pattern string, p int, c byte) (match bool, next int, valid bool) {
	j := p + 1
	neg := false
	if j < len(pattern) && (pattern[j] == '!' || pattern[j] == '^') {
		neg = true
		j++
	}
	first := true
	for j < len(pattern) {
		if pattern[j] == ']' && !first {
			return match != neg, j + 1, true
		}
		first = false
		lo := pattern[j]
		if lo == '\\' && j+1 < len(pattern) {
			j++
			lo = pattern[j]
		}
		hi := lo
		if j+2 < len(pattern) && pattern[j+1] == '-' && pattern[j+2] != ']' {
			hi = pattern[j+2]
			if hi == '\\' && j+3 < len(pattern) {
				j++
				hi = pattern[j+2]
			}
			j += 2
		}
		if lo <= c && c <= hi {
			match = true
		}
		j++
	}
	return false, 0, false
}
