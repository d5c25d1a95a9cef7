package partition

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Layout is a partition table as an sfdisk script describes it, plus the
// clonecd metadata carried on "# clonecd:" comment lines.
type Layout struct {
	Label      string // dos or gpt
	LabelID    string // dos: 0x1234abcd; gpt: disk GUID
	Device     string // as given to sfdisk/dump (informational)
	Unit       string // "sectors" or ""
	FirstLBA   uint64 // gpt first usable LBA (0 = default)
	LastLBA    uint64 // gpt last usable LBA (0 = default)
	SectorSize int    // sector size the numbers are in (0 = 512 when reading a file)

	TableLength int    // gpt entries when not 128 (0 = default)
	Grain       uint64 // alignment in bytes when not 1 MiB (0 = default)

	Parts []Part
}

// Part is one partition line. Start and Size are in sectors of the layout's
// sector size; 0 means "first free" / "rest of the free space".
type Part struct {
	Line     int    // line in the layout file (0 when read from a disk)
	Node     string // device node as written in the file (e.g. sda1), may be ""
	Number   int    // partition number, 1-based (5+ are dos logical partitions)
	Start    uint64
	Size     uint64
	Type     string // dos: hex code without 0x ("83", "5"); gpt: upper-case GUID
	UUID     string // gpt partition GUID
	Name     string // gpt partition name (UTF-8)
	Attrs    string // gpt attributes in sfdisk's words
	Bootable bool   // dos active flag

	// clonecd metadata ("# clonecd: part=N ..." lines).
	FS       string // ext4, ext3, ext2, xfs, vfat, swap, or "" (leave alone)
	Mount    string // mount point ("/", "/data") or ""
	FSLabel  string // filesystem label for mkfs
	Mkfs     string // extra mkfs options
	Preserve bool   // keep this partition's data when the table matches
	Grow     bool   // share the disk's free space (up to MaxSize)
	MaxSize  uint64 // sectors; 0 = no limit

	explicitPreserve bool
	sizeBytes        uint64 // size given with a unit (sfdisk aligns its end)
}

// SectorBytes returns the sector size the layout's numbers are in.
func (l *Layout) SectorBytes() int {
	if l.SectorSize == 0 {
		return 512
	}
	return l.SectorSize
}

// Part returns partition n or nil.
func (l *Layout) Part(n int) *Part {
	for i := range l.Parts {
		if l.Parts[i].Number == n {
			return &l.Parts[i]
		}
	}
	return nil
}

// IsExtended reports whether a dos type code is an extended container.
func IsExtended(typ string) bool {
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "0x")) {
	case "5", "f", "85":
		return true
	}
	return false
}

// HasMetadata reports whether p carries any clonecd metadata.
func (p *Part) HasMetadata() bool {
	return p.FS != "" || p.Mount != "" || p.FSLabel != "" || p.Mkfs != "" || p.Grow || p.MaxSize != 0 ||
		p.Preserve != (p.Mount == "/data")
}

// ReadLayoutFile parses the layout file at path.
func ReadLayoutFile(path string) (*Layout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := ParseLayout(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// LineError is a parse error at a line of a layout file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

func lineErr(n int, format string, a ...any) error {
	return &LineError{Line: n, Err: fmt.Errorf(format, a...)}
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
		if len(l.Parts) == 0 && isHeaderLine(s) {
			if err := l.parseHeader(s, n, headersSeen); err != nil {
				return nil, err
			}
			continue
		}
		var p Part
		var err error
		if strings.Contains(s, "=") {
			p, err = l.parseNameVal(s, n)
		} else {
			p, err = l.parseCommas(s, n)
		}
		if err != nil {
			return nil, err
		}
		p.Line = n
		l.Parts = append(l.Parts, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
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
		return lineErr(n, "malformed header %q", s)
	}
	if !headerNames[name] {
		return lineErr(n, "unknown header %q (known: label, label-id, device, unit, first-lba, last-lba, table-length, grain, sector-size)", name)
	}
	if seen[name] {
		return lineErr(n, "header %q given twice", name)
	}
	seen[name] = true
	num := func() (uint64, error) {
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return 0, lineErr(n, "%s: malformed number %q", name, val)
		}
		return v, nil
	}
	switch name {
	case "label":
		if val != "dos" && val != "gpt" {
			return lineErr(n, "label %q not supported (dos or gpt)", val)
		}
		l.Label = val
	case "label-id":
		l.LabelID = val
	case "device":
		l.Device = val
	case "unit":
		if val != "sectors" {
			return lineErr(n, "unit %q not supported (only sectors)", val)
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
			return lineErr(n, "table-length %d out of range (1-4096)", v)
		}
		l.TableLength = int(v)
	case "grain":
		v, _, err := parseSize(val)
		if err != nil {
			return lineErr(n, "grain: %v", err)
		}
		if v == 0 || v%512 != 0 {
			return lineErr(n, "grain %d is not a multiple of 512 bytes", v)
		}
		l.Grain = v
	case "sector-size":
		v, err := num()
		if err != nil {
			return err
		}
		if v == 0 || v%512 != 0 || v > 65536 {
			return lineErr(n, "sector-size %d is not a multiple of 512", v)
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

func (l *Layout) parseNameVal(s string, n int) (Part, error) {
	var p Part
	colon := strings.IndexByte(s, ':')
	eq := strings.IndexByte(s, '=')
	rest := s
	if colon >= 0 && (eq < 0 || colon < eq) {
		node := strings.TrimSpace(s[:colon])
		p.Node = node
		p.Number = partnoFromNode(node)
		if p.Number == 0 {
			return p, lineErr(n, "cannot tell the partition number from %q", node)
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
				return p, lineErr(n, "unknown field %q", firstWord(rest))
			}
			p.Bootable = true
			rest = r
			continue
		}
		if key == "" {
			return p, lineErr(n, "unknown field %q", firstWord(rest))
		}
		if key == "id" {
			key = "type"
		}
		if seen[key] {
			return p, lineErr(n, "field %s= given twice", key)
		}
		seen[key] = true
		tok, r, ok := nextToken(rest)
		if !ok && (key == "start" || key == "size") && strings.TrimSpace(rest) == "" {
			tok, r, ok = "", "", true
		}
		if !ok {
			return p, lineErr(n, "%s: malformed value %q", key, rest)
		}
		rest = r
		var err error
		switch key {
		case "start":
			p.Start, err = l.parseSectors(tok)
		case "size":
			p.Size, p.sizeBytes, err = l.parseSize(tok)
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
			return p, lineErr(n, "%s: %v", key, err)
		}
	}
	return p, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t,;"); i >= 0 {
		return s[:i]
	}
	return s
}

// parseCommas reads the simple "start, size, type, bootable" form.
func (l *Layout) parseCommas(s string, n int) (Part, error) {
	var p Part
	fields := splitCommas(s)
	if len(fields) > 4 {
		return p, lineErr(n, "too many fields (start, size, type, bootable)")
	}
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || f == "-" {
			continue
		}
		var err error
		switch i {
		case 0:
			p.Start, err = l.parseSectors(f)
		case 1:
			p.Size, p.sizeBytes, err = l.parseSize(f)
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
			return p, lineErr(n, "field %d: %v", i+1, err)
		}
	}
	return p, nil
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

// parseSize parses a partition size; with a unit it also returns bytes.
func (l *Layout) parseSize(s string) (sectors, bytes uint64, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "+" || s == "-" {
		return 0, 0, nil
	}
	v, unit, err := parseSize(strings.TrimPrefix(s, "+"))
	if err != nil {
		return 0, 0, err
	}
	if unit {
		return v / uint64(l.SectorBytes()), v, nil
	}
	return v, 0, nil
}

// parseSectors parses a start or size: sectors, or bytes with a suffix
// converted to sectors of the layout's sector size.
func (l *Layout) parseSectors(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "+" || s == "-" {
		return 0, nil
	}
	if s[0] == '+' {
		s = s[1:]
	}
	v, bytes, err := parseSize(s)
	if err != nil {
		return 0, err
	}
	if bytes {
		v /= uint64(l.SectorBytes())
	}
	return v, nil
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

// resolve normalizes types, assigns default partition numbers as sfdisk
// does, and checks the table is writable in principle.
func (l *Layout) resolve() error {
	used := map[int]int{}
	for i := range l.Parts {
		p := &l.Parts[i]
		typ, err := resolveType(l.Label, p.Type)
		if err != nil {
			return lineErr(p.Line, "%v", err)
		}
		p.Type = typ
		if l.Label == "gpt" && p.Bootable {
			return lineErr(p.Line, "bootable is a dos flag; gpt uses attrs=LegacyBIOSBootable")
		}
		if l.Label == "dos" && (p.UUID != "" || p.Name != "" || p.Attrs != "") {
			return lineErr(p.Line, "uuid=, name= and attrs= are gpt fields, this is a dos layout")
		}
		if p.Number != 0 {
			if prev, dup := used[p.Number]; dup {
				return lineErr(p.Line, "partition %d already defined on line %d", p.Number, prev)
			}
		} else {
			p.Number = l.defaultNumber(used, i)
			if p.Number == 0 {
				return lineErr(p.Line, "no free primary partition number: dos allows 4 primaries (use an extended partition)")
			}
		}
		used[p.Number] = p.Line
		if l.Label == "dos" {
			if p.Number > 4 && !l.hasExtended() {
				return lineErr(p.Line, "logical partition %d without an extended partition", p.Number)
			}
			if p.Number <= 4 && p.Number < 1 {
				return lineErr(p.Line, "bad partition number %d", p.Number)
			}
			if p.Number > 4 && IsExtended(p.Type) {
				return lineErr(p.Line, "an extended partition must be primary (1-4)")
			}
		} else {
			max := l.TableLength
			if max == 0 {
				max = 128
			}
			if p.Number > max {
				return lineErr(p.Line, "partition %d beyond the table length %d", p.Number, max)
			}
		}
	}
	// Keep the order the file gave (sfdisk creates them in that order).
	return nil
}

func (l *Layout) hasExtended() bool {
	for _, p := range l.Parts {
		if p.Number >= 1 && p.Number <= 4 && IsExtended(p.Type) {
			return true
		}
	}
	return false
}

func (l *Layout) defaultNumber(used map[int]int, upto int) int {
	if l.Label == "gpt" {
		for n := 1; ; n++ {
			if _, ok := used[n]; !ok {
				return n
			}
		}
	}
	ext := false
	for _, p := range l.Parts[:upto] {
		if p.Number <= 4 && IsExtended(p.Type) {
			ext = true
		}
	}
	if ext {
		for n := 5; ; n++ {
			if _, ok := used[n]; !ok {
				return n
			}
		}
	}
	for n := 1; n <= 4; n++ {
		if _, ok := used[n]; !ok {
			return n
		}
	}
	return 0
}

// validate checks explicit partitions for overlaps.
func (l *Layout) validate() error {
	type iv struct {
		a, b uint64
		p    *Part
	}
	var ivs []iv
	for i := range l.Parts {
		p := &l.Parts[i]
		if p.Start == 0 || p.Size == 0 {
			continue
		}
		if l.Label == "dos" && IsExtended(p.Type) {
			continue
		}
		if p.Start+p.Size < p.Start {
			return lineErr(p.Line, "partition %d: start+size overflows", p.Number)
		}
		ivs = append(ivs, iv{p.Start, p.Start + p.Size - 1, p})
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].a < ivs[j].a })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].a <= ivs[i-1].b {
			a, b := ivs[i-1].p, ivs[i].p
			if a.Line > b.Line {
				a, b = b, a
			}
			return lineErr(b.Line, "partition %d (sectors %d-%d) overlaps partition %d on line %d (sectors %d-%d)",
				b.Number, b.Start, b.Start+b.Size-1, a.Number, a.Line, a.Start, a.Start+a.Size-1)
		}
	}
	if l.Label == "dos" {
		if err := l.validateLogicals(); err != nil {
			return err
		}
	}
	return nil
}

func (l *Layout) validateLogicals() error {
	var ext *Part
	for i := range l.Parts {
		if l.Parts[i].Number <= 4 && IsExtended(l.Parts[i].Type) {
			if ext != nil {
				return lineErr(l.Parts[i].Line, "a second extended partition (dos allows one)")
			}
			ext = &l.Parts[i]
		}
	}
	if ext == nil || ext.Start == 0 || ext.Size == 0 {
		return nil
	}
	for _, p := range l.Parts {
		if p.Number > 4 && p.Start != 0 {
			end := p.Start + p.Size
			if p.Size == 0 {
				end = p.Start + 1
			}
			if p.Start <= ext.Start || end > ext.Start+ext.Size {
				return lineErr(p.Line, "logical partition %d lies outside the extended partition %d", p.Number, ext.Number)
			}
		}
	}
	return nil
}

// parseMeta reads the text after "# clonecd:".
func (l *Layout) parseMeta(s string, n int) error {
	kv, err := splitKV(s)
	if err != nil {
		return lineErr(n, "clonecd: %v", err)
	}
	var p *Part
	for _, e := range kv {
		if e[0] == "part" {
			v, err := strconv.Atoi(e[1])
			if err != nil || v <= 0 {
				return lineErr(n, "clonecd: part=%q is not a partition number", e[1])
			}
			if p = l.Part(v); p == nil {
				return lineErr(n, "clonecd: part=%d: no such partition in the layout", v)
			}
		}
	}
	if p == nil {
		return lineErr(n, "clonecd: line needs part=N")
	}
	for _, e := range kv {
		k, v := e[0], e[1]
		switch k {
		case "part":
		case "fs":
			switch v {
			case "ext2", "ext3", "ext4", "xfs", "vfat", "swap", "none", "":
			default:
				return lineErr(n, "clonecd: fs=%q not supported (ext2, ext3, ext4, xfs, vfat, swap, none)", v)
			}
			if v == "none" {
				v = ""
			}
			p.FS = v
		case "mount":
			if v != "" && v != "none" && !strings.HasPrefix(v, "/") {
				return lineErr(n, "clonecd: mount=%q is not an absolute path", v)
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
			b, ok := parseBool(v)
			if !ok {
				return lineErr(n, "clonecd: %s=%q is not yes or no", k, v)
			}
			if k == "grow" {
				p.Grow = b
			} else {
				p.Preserve, p.explicitPreserve = b, true
			}
		case "maxsize":
			sz, bytes, err := parseSize(v)
			if err != nil {
				return lineErr(n, "clonecd: maxsize: %v", err)
			}
			if bytes {
				sz /= uint64(l.SectorBytes())
			}
			p.MaxSize = sz
		default:
			return lineErr(n, "clonecd: unknown key %q (known: part, fs, mount, label, mkfs, preserve, grow, maxsize)", k)
		}
	}
	return nil
}

func parseBool(v string) (bool, bool) {
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

// WriteTo writes the layout file: exactly `sfdisk -d`'s format, followed
// by "# clonecd:" lines for partitions with metadata.
func (l *Layout) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	if l.Label != "" {
		hdr("label", l.Label)
	}
	if l.LabelID != "" {
		hdr("label-id", l.LabelID)
	}
	if l.Device != "" {
		hdr("device", l.Device)
	}
	if l.Unit != "" {
		hdr("unit", l.Unit)
	}
	if l.FirstLBA != 0 {
		hdr("first-lba", strconv.FormatUint(l.FirstLBA, 10))
	}
	if l.LastLBA != 0 {
		hdr("last-lba", strconv.FormatUint(l.LastLBA, 10))
	}
	if l.TableLength != 0 && l.TableLength != 128 {
		hdr("table-length", strconv.Itoa(l.TableLength))
	}
	if l.Grain != 0 && l.Grain != 1<<20 {
		hdr("grain", strconv.FormatUint(l.Grain, 10))
	}
	if l.SectorSize != 0 {
		hdr("sector-size", strconv.Itoa(l.SectorSize))
	}
	if len(l.Parts) > 0 {
		b.WriteByte('\n')
	}
	for _, p := range l.Parts {
		node := p.Node
		if node == "" {
			node = PartDevice(l.Device, p.Number)
		}
		fmt.Fprintf(&b, "%s :", node)
		sep := " "
		if p.Start != 0 {
			fmt.Fprintf(&b, " start=%12d", p.Start)
			sep = ", "
		}
		if p.Size != 0 {
			if sep == " " {
				b.WriteString(" ")
			} else {
				b.WriteString(", ")
			}
			if u := formatBytes(p.sizeBytes); p.sizeBytes != 0 && u != "" {
				fmt.Fprintf(&b, "size=%s", u)
			} else {
				fmt.Fprintf(&b, "size=%12d", p.Size)
			}
			sep = ", "
		}
		if p.Type != "" {
			fmt.Fprintf(&b, "%stype=%s", sep, p.Type)
			sep = ", "
		}
		if p.UUID != "" {
			fmt.Fprintf(&b, "%suuid=%s", sep, p.UUID)
			sep = ", "
		}
		if p.Name != "" {
			fmt.Fprintf(&b, "%sname=%s", sep, quoteName(p.Name))
			sep = ", "
		}
		if p.Attrs != "" && l.Label != "dos" {
			fmt.Fprintf(&b, "%sattrs=\"%s\"", sep, p.Attrs)
			sep = ", "
		}
		if p.Bootable {
			fmt.Fprintf(&b, "%sbootable", sep)
		}
		b.WriteByte('\n')
	}
	for _, p := range l.Parts {
		if !p.HasMetadata() {
			continue
		}
		fmt.Fprintf(&b, "# clonecd: part=%d", p.Number)
		if p.FS != "" {
			fmt.Fprintf(&b, " fs=%s", quoteMeta(p.FS))
		}
		if p.Mount != "" {
			fmt.Fprintf(&b, " mount=%s", quoteMeta(p.Mount))
		}
		if p.FSLabel != "" {
			fmt.Fprintf(&b, " label=%s", quoteMeta(p.FSLabel))
		}
		if p.Mkfs != "" {
			fmt.Fprintf(&b, " mkfs=%s", quoteMeta(p.Mkfs))
		}
		if p.Preserve != (p.Mount == "/data") {
			if p.Preserve {
				b.WriteString(" preserve=yes")
			} else {
				b.WriteString(" preserve=no")
			}
		}
		if p.Grow {
			b.WriteString(" grow=yes")
		}
		if p.MaxSize != 0 {
			fmt.Fprintf(&b, " maxsize=%d", p.MaxSize)
		}
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// formatBytes writes a size with the largest binary unit that divides it.
func formatBytes(v uint64) string {
	for _, u := range []struct {
		s string
		m uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if v%u.m == 0 {
			return fmt.Sprintf("%d%s", v/u.m, u.s)
		}
	}
	return "" // not representable with a unit
}

// String returns the layout file text.
func (l *Layout) String() string {
	var b strings.Builder
	l.WriteTo(&b)
	return b.String()
}
