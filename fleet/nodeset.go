package fleet

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxNodeset caps how many names one nodeset or range may expand to.
const MaxNodeset = 100000

// ParseNodeset expands a nodeset such as "s[001-064,070]", "r[1-2]n[01-16]"
// or a plain list "s001,s002":
// top-level commas separate items, brackets hold comma-separated numbers
// and ranges whose width sets the zero padding. Duplicates are dropped;
// the order is as written.
func ParseNodeset(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, item := range splitTop(s) {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("nodeset %q: empty item", s)
		}
		names, err := expand(item, MaxNodeset-len(out))
		if err != nil {
			return nil, fmt.Errorf("nodeset %q: %w", s, err)
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nodeset %q: no nodes", s)
	}
	return out, nil
}

// splitTop splits at commas outside brackets.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func expand(item string, limit int) ([]string, error) {
	open := strings.IndexByte(item, '[')
	if open < 0 {
		if strings.ContainsAny(item, "]") {
			return nil, fmt.Errorf("%q: unbalanced ]", item)
		}
		if err := ValidName(item); err != nil {
			return nil, err
		}
		return []string{item}, nil
	}
	end := strings.IndexByte(item[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("%q: missing ]", item)
	}
	end += open
	prefix, body, rest := item[:open], item[open+1:end], item[end+1:]
	if strings.ContainsAny(prefix, "]") || strings.ContainsAny(body, "[") {
		return nil, fmt.Errorf("%q: nested or unbalanced brackets", item)
	}
	nums, err := expandRanges(body, limit)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", item, err)
	}
	tails, err := expand("x"+rest, limit) // "x" keeps an empty rest valid
	if err != nil {
		return nil, err
	}
	if len(nums)*len(tails) > limit {
		return nil, fmt.Errorf("%q: more than %d nodes", item, MaxNodeset)
	}
	var out []string
	for _, n := range nums {
		for _, t := range tails {
			name := prefix + n + t[1:]
			if err := ValidName(name); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
			out = append(out, name)
		}
	}
	return out, nil
}

func expandRanges(body string, limit int) ([]string, error) {
	var out []string
	for _, r := range strings.Split(body, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(r), "-")
		if !isRange {
			b = a
		}
		lo, err1 := parseNum(a)
		hi, err2 := parseNum(b)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad range %q", r)
		}
		if hi < lo {
			return nil, fmt.Errorf("range %q runs backwards", r)
		}
		if hi-lo >= uint64(limit-len(out)) {
			return nil, fmt.Errorf("range %q: more than %d nodes", r, MaxNodeset)
		}
		width := len(a)
		for n := lo; n <= hi; n++ {
			out = append(out, fmt.Sprintf("%0*d", width, n))
		}
	}
	return out, nil
}

func parseNum(s string) (uint64, error) {
	if s == "" || len(s) > 9 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

var patternVerb = regexp.MustCompile(`%0?[0-9]*d`)

// PatternNodes names nodes first..last with a printf pattern holding one
// %d verb, e.g. "s%03d" with 1, 64 gives s001..s064.
func PatternNodes(pattern string, first, last int) ([]string, error) {
	if locs := patternVerb.FindAllStringIndex(pattern, -1); len(locs) != 1 || strings.Count(pattern, "%") != 1 {
		return nil, fmt.Errorf("pattern %q: needs exactly one %%d verb, like s%%03d", pattern)
	}
	if first < 0 || last < first {
		return nil, fmt.Errorf("range %d..%d: FIRST must be <= LAST and not negative", first, last)
	}
	if last-first >= MaxNodeset {
		return nil, fmt.Errorf("range %d..%d: more than %d nodes", first, last, MaxNodeset)
	}
	var out []string
	for n := first; n <= last; n++ {
		name := fmt.Sprintf(pattern, n)
		if err := ValidName(name); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		out = append(out, name)
	}
	return out, nil
}
