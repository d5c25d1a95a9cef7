package partition

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ReadLayoutFile parses the layout file at path; its errors, and those
// of Fit and Apply later, name the file (Layout.Source).
func ReadLayoutFile(path string) (*Layout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := ParseLayout(f)
	if err != nil {
		if le := (*LineError)(nil); errors.As(err, &le) {
			le.File = path
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.Source = path
	return l, nil
}

type metaLine struct {
	line int
	text string
}

// ParseLayout reads a layout file: an sfdisk script (the `sfdisk -d` dump
// format, or its simpler "start,size,type,bootable" lines) with optional
// "# clonecd: part=N key=value ..." lines.
func ParseLayout(r io.Reader) (*Layout, error) {
	l := &Layout{}
	var metas []metaLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	headersSeen := map[string]bool{}
	partLines := false // headers come before the first partition line
	for sc.Scan() {
		n++
		s := strings.TrimRight(sc.Text(), "\r")
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			continue
		}
		if s[0] == '#' {
			rest := strings.TrimLeft(s[1:], " \t")
			if strings.HasPrefix(rest, "clonecd:") {
				metas = append(metas, metaLine{n, strings.TrimPrefix(rest, "clonecd:")})
			}
			continue
		}
		if !partLines && isHeaderLine(s) {
			if err := l.parseHeader(s, n, headersSeen); err != nil {
				return nil, err
			}
			continue
		}
		var pl partLine
		var err error
		if strings.Contains(s, "=") {
			pl, err = l.parseNameVal(s, n)
		} else {
			pl, err = l.parseCommas(s, n)
		}
		if err != nil {
			return nil, err
		}
		partLines = true
		if p, ok, err := l.partFromLine(pl, n); err != nil {
			return nil, err
		} else if ok {
			l.Parts = append(l.Parts, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &LineError{Line: n + 1, Err: err}
	}
	if len(l.Parts) == 0 && !headersSeen["label"] {
		return nil, ErrEmpty
	}
	if l.Label == "" {
		l.Label = "dos"
		for _, p := range l.Parts {
			if isGUIDLike(p.rawType()) {
				l.Label = "gpt"
			}
		}
	}
	if err := l.resolve(); err != nil {
		return nil, err
	}
	for _, m := range metas {
		if err := l.parseMeta(m.text, m.line); err != nil {
			return nil, err
		}
	}
	for i := range l.Parts {
		p := &l.Parts[i]
		if !p.explicitPreserve && p.Mount == "/data" {
			p.Preserve = true
		}
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// partFromLine makes the partition of a line as sfdisk 2.38 does: a line
// with both start and size 0 is an empty slot of an old dump ("start= 0,
// size= 0, Id= 0"), skipped; a start of 0 otherwise is refused (sector 0
// holds the table: sfdisk says "Start sector 0 out of range"); a size of 0
// sectors is one sector on dos and refused on gpt (see resolve).
func (l *Layout) partFromLine(pl partLine, n int) (Part, bool, error) {
	p := pl.p
	if pl.start.set && pl.size.set && pl.start.sectors == 0 && pl.size.sectors == 0 {
		return p, false, nil
	}
	if pl.start.set && pl.start.sectors == 0 {
		return p, false, l.lineErr(n, "start=0: sector 0 holds the partition table (sfdisk: \"Start sector 0 out of range\"); leave start out for the first free sector")
	}
	p.Line = n
	p.Start = pl.start.sectors
	p.Size = pl.size.sectors
	p.sizeUnit, p.sizeBytes = pl.size.unit, pl.size.bytes
	p.sizeZero = pl.size.set && !pl.size.unit && pl.size.sectors == 0
	return p, true, nil
}

// rawType is used before types are resolved (Type holds the text).
func (p *Part) rawType() string { return p.Type }

func isHeaderLine(s string) bool {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i == len(s)-1 || strings.Contains(s, "=") {
		return false
	}
	return true
}

var headerNames = map[string]bool{"label": true, "unit": true, "label-id": true, "device": true, "grain": true,
	"first-lba": true, "last-lba": true, "table-length": true, "sector-size": true}

func (l *Layout) parseHeader(s string, n int, seen map[string]bool) error {
	i := strings.IndexByte(s, ':')
	name := strings.TrimSpace(s[:i])
	val := strings.TrimSpace(s[i+1:])
	if name == "" || val == "" {
		return l.lineErr(n, "malformed header %q", s)
	}
	if !headerNames[name] {
		return l.lineErr(n, "unknown header %q (known: label, label-id, device, unit, first-lba, last-lba, table-length, grain, sector-size)", name)
	}
	if seen[name] {
		return l.lineErr(n, "header %q given twice", name)
	}
	seen[name] = true
	num := func() (uint64, error) {
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return 0, l.lineErr(n, "%s: malformed number %q", name, val)
		}
		return v, nil
	}
	switch name {
	case "label":
		if val != "dos" && val != "gpt" {
			return l.lineErr(n, "label %q not supported (dos or gpt)", val)
		}
		l.Label = val
	case "label-id":
		l.LabelID = val
	case "device":
		l.Device = val
	case "unit":
		if val != "sectors" {
			return l.lineErr(n, "unit %q not supported (only sectors)", val)
		}
		l.Unit = val
	case "first-lba":
		v, err := num()
		if err != nil {
			return err
		}
		l.FirstLBA = v
	case "last-lba":
		v, err := num()
		if err != nil {
			return err
		}
		l.LastLBA = v
	case "table-length":
		v, err := num()
		if err != nil {
			return err
		}
		if v == 0 || v > 4096 {
			return l.lineErr(n, "table-length %d out of range (1-4096)", v)
		}
		l.TableLength = int(v)
	case "grain":
		v, _, err := parseSize(val)
		if err != nil {
			return l.lineErr(n, "grain: %v", err)
		}
		if v == 0 || v%512 != 0 {
			return l.lineErr(n, "grain %d is not a multiple of 512 bytes", v)
		}
		l.Grain = v
	case "sector-size":
		v, err := num()
		if err != nil {
			return err
		}
		if v == 0 || v%512 != 0 || v > 65536 {
			return l.lineErr(n, "sector-size %d is not a multiple of 512", v)
		}
		l.SectorSize = int(v)
	}
	return nil
}

// partnoFromNode returns the number at the end of a device name, or 0.
func partnoFromNode(s string) int {
	s = strings.TrimSpace(s)
	j := len(s)
	for j > 0 && s[j-1] >= '0' && s[j-1] <= '9' {
		j--
	}
	if j == len(s) {
		return 0
	}
	v, err := strconv.Atoi(s[j:])
	if err != nil || v <= 0 || v > 1<<20 {
		return 0
	}
	return v
}

// nextToken mimics libfdisk's tokenizer: a token ends at a blank, ',' or ';'
// outside double quotes; the surrounding quotes are removed.
func nextToken(s string) (tok, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", "", false
	}
	quoted := false
	begin := 0
	if s[0] == '"' {
		begin = 1
	}
	end := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
			if !quoted {
				end = i
				break
			}
			continue
		}
		if quoted {
			continue
		}
		if c == ' ' || c == '\t' || c == ',' || c == ';' {
			end = i
			break
		}
	}
	if quoted {
		return "", "", false // unterminated quote
	}
	if end < 0 {
		end = len(s)
	}
	tok = s[begin:end]
	r := strings.TrimPrefix(s[end:], `"`)
	blank := strings.HasPrefix(r, " ") || strings.HasPrefix(r, "\t")
	r = strings.TrimLeft(r, " \t")
	switch {
	case strings.HasPrefix(r, ",") || strings.HasPrefix(r, ";"):
		r = r[1:]
	case r == "" || blank:
	default:
		return "", "", false // not terminated
	}
	return tok, strings.TrimLeft(r, " \t"), true
}

// partLine is a partition line as written: its start and size as given.
type partLine struct {
	p           Part
	start, size number
}

func (l *Layout) parseNameVal(s string, n int) (partLine, error) {
	var pl partLine
	p := &pl.p
	colon := strings.IndexByte(s, ':')
	eq := strings.IndexByte(s, '=')
	rest := s
	if colon >= 0 && (eq < 0 || colon < eq) {
		node := strings.TrimSpace(s[:colon])
		p.Node = node
		p.Number = partnoFromNode(node)
		if p.Number == 0 {
			return pl, l.lineErr(n, "cannot tell the partition number from %q", node)
		}
		rest = s[colon+1:]
	}
	seen := map[string]bool{}
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		var key string
		for _, k := range []string{"start=", "size=", "attrs=", "uuid=", "name=", "type=", "Id="} {
			if hasPrefixFold(rest, k) {
				key = strings.ToLower(strings.TrimSuffix(k, "="))
				rest = rest[len(k):]
				break
			}
		}
		if key == "" && hasPrefixFold(rest, "bootable") {
			tok, r, ok := nextToken(rest)
			if !ok || !strings.EqualFold(tok, "bootable") {
				return pl, l.lineErr(n, "unknown field %q", firstWord(rest))
			}
			p.Bootable = true
			rest = r
			continue
		}
		if key == "" {
			return pl, l.lineErr(n, "unknown field %q", firstWord(rest))
		}
		if key == "id" {
			key = "type"
		}
		if seen[key] {
			return pl, l.lineErr(n, "field %s= given twice", key)
		}
		seen[key] = true
		tok, r, ok := nextToken(rest)
		if !ok && (key == "start" || key == "size") && strings.TrimSpace(rest) == "" {
			tok, r, ok = "", "", true
		}
		if !ok {
			return pl, l.lineErr(n, "%s: malformed value %q", key, rest)
		}
		rest = r
		var err error
		switch key {
		case "start":
			pl.start, err = l.parseNumber(tok)
		case "size":
			pl.size, err = l.parseNumber(tok)
		case "type":
			if tok == "" {
				err = fmt.Errorf("empty type")
			}
			p.Type = tok
		case "uuid":
			if !isGUID(tok) {
				err = fmt.Errorf("malformed uuid %q", tok)
			}
			p.UUID = strings.ToUpper(tok)
		case "name":
			p.Name = unhexmangle(tok)
		case "attrs":
			_, err = parseAttrs(tok)
			p.Attrs = tok
		}
		if err != nil {
			return pl, l.lineErr(n, "%s: %v", key, err)
		}
	}
	return pl, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t,;"); i >= 0 {
		return s[:i]
	}
	return s
}

// parseCommas reads the simple "start, size, type, bootable" form.
func (l *Layout) parseCommas(s string, n int) (partLine, error) {
	var pl partLine
	p := &pl.p
	fields := splitCommas(s)
	if len(fields) > 4 {
		return pl, l.lineErr(n, "too many fields (start, size, type, bootable)")
	}
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || f == "-" {
			continue
		}
		var err error
		switch i {
		case 0:
			pl.start, err = l.parseNumber(f)
		case 1:
			pl.size, err = l.parseNumber(f)
		case 2:
			p.Type = f
		case 3:
			switch f {
			case "*", "+":
				p.Bootable = true
			default:
				err = fmt.Errorf("bootable flag %q (use * or -)", f)
			}
		}
		if err != nil {
			return pl, l.lineErr(n, "field %d: %v", i+1, err)
		}
	}
	return pl, nil
}

func splitCommas(s string) []string {
	var out []string
	cur := strings.Builder{}
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == ';' {
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	if strings.TrimSpace(cur.String()) != "" || len(out) == 0 {
		out = append(out, cur.String())
	}
	return out
}
