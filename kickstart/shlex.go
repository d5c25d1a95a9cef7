package kickstart

import "errors"

// errQuote is returned for a line with an unterminated quote.
var errQuote = errors.New("unterminated quote")

// split splits a command line as pykickstart does with Python's
// shlex.split(line, comments=True) in POSIX mode: white space separates
// words; single quotes are literal; in double quotes a backslash escapes
// only " and \; outside quotes a backslash escapes any character; a # ends
// the line (also in the middle of a word) unless quoted or escaped.
func split(s string) ([]string, error) {
	var (
		out     []string
		tok     []byte
		inTok   bool // a token has started (possibly empty "")
		i       int
		isSpace = func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	)
	flush := func() {
		if inTok {
			out = append(out, string(tok))
		}
		tok, inTok = tok[:0:0], false
	}
	for i < len(s) {
		c := s[i]
		switch {
		case isSpace(c):
			flush()
			i++
		case c == '#':
			flush()
			return out, nil
		case c == '\\':
			inTok = true
			if i+1 >= len(s) {
				return nil, errors.New("backslash at end of line")
			}
			tok = append(tok, s[i+1])
			i += 2
		case c == '\'':
			inTok = true
			j := i + 1
			for j < len(s) && s[j] != '\'' {
				j++
			}
			if j >= len(s) {
				return nil, errQuote
			}
			tok = append(tok, s[i+1:j]...)
			i = j + 1
		case c == '"':
			inTok = true
			j := i + 1
			for {
				if j >= len(s) {
					return nil, errQuote
				}
				if s[j] == '"' {
					break
				}
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\') {
					tok = append(tok, s[j+1])
					j += 2
					continue
				}
				tok = append(tok, s[j])
				j++
			}
			i = j + 1
		default:
			inTok = true
			tok = append(tok, c)
			i++
		}
	}
	flush()
	return out, nil
}
