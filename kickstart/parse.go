package kickstart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Kickstart is what clonecd takes from a ks.cfg.
type Kickstart struct {
	Name string // the file's name as given in Options.Name ("" for a reader)

	// Commands holds every command line in order (after %include), the ones
	// clonecd uses and the ones it does not.
	Commands []Command

	Pre, PreInstall, Post, OnError, Traceback []Script
	Packages                                  *Packages
	Addons                                    []Section // %addon NAME ... and %anaconda
	Network                                   []Network
	RootPW                                    *RootPW
	Timezone                                  *Timezone
	Bootloader                                *Bootloader

	// Storage commands, translated by Layout.
	ClearPart  *ClearPart
	ZeroMBR    bool
	IgnoreDisk *IgnoreDisk
	Parts      []PartRequest
	ReqPart    *ReqPart
	AutoPart   *AutoPart
	// Unsupported holds storage commands clonecd cannot honour (logvol,
	// volgroup, raid, btrfs, ...): Layout fails naming their lines.
	Unsupported []Command

	Warnings []Warning

	opts Options
}

// Command is one command line.
type Command struct {
	File string
	Line int
	Name string
	Args []string
}

func (c Command) where() string { return where(c.File, c.Line) }

// Script is a %pre, %pre-install, %post, %onerror or %traceback section.
type Script struct {
	File        string
	Line        int    // line of the section header
	Type        string // "pre", "pre-install", "post", "onerror", "traceback"
	Interpreter string // default /bin/sh
	NoChroot    bool   // %post --nochroot: runs in the installer (clonecd: the cloner) with the new root at $INSTALL_ROOT
	ErrorOnFail bool   // a failing script fails the installation (the clone)
	Log         string // --log=FILE: the script's output is appended there (in the new root unless --nochroot)
	Body        string // the script text, lines as written, each ending in \n
}

// Section is a section clonecd does not interpret (%addon, %anaconda).
type Section struct {
	File string
	Line int
	Name string   // "addon" or "anaconda"
	Args []string // header words after %NAME
	Body string
}

// Packages is the %packages section.
type Packages struct {
	File     string
	Line     int
	Options  []string // header options as written (--nobase, --ignoremissing, ...)
	Groups   []string // @group / @^environment, without the @
	Packages []string
	Excluded []string // -name, without the -
}

// Warning is something clonecd does not honour, with where it was said.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string { return where(w.File, w.Line) + ": " + w.Msg }

// ErrBinary is a file with bytes no text has (NUL, control characters):
// an image or archive given as the kickstart.
var ErrBinary = errors.New("not a text kickstart: binary data")

// binaryAt is the offset of the first byte no kickstart has (NUL, a
// control character other than tab, newline, vertical tab, form feed,
// carriage return and escape, or DEL), or -1.
func binaryAt(b []byte) int {
	for i, c := range b {
		if c < 0x20 && !strings.ContainsRune("\t\n\v\f\r\x1b", rune(c)) || c == 0x7f {
			return i
		}
	}
	return -1
}

// Error is a parse error at a line.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string { return where(e.File, e.Line) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func where(file string, line int) string {
	if file == "" {
		file = "ks.cfg"
	}
	if line == 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// Options tunes Parse and Layout.
type Options struct {
	// Name is the kickstart's path: messages name it and a relative
	// %include is resolved from its directory.
	Name string
	// ReadFile reads %include files; default os.ReadFile. ParseFS sets it
	// to read from an fs.FS (clone media).
	ReadFile func(name string) ([]byte, error)
	// RAM in MiB for swap --recommended/--hibernation; 0 means 4096 (the
	// nodes' RAM is not known when the layout is made; say it).
	RAM uint64
	// Firmware the clones boot with, for reqpart and the label choice:
	// "bios" (default) or "uefi".
	Firmware string
	// Label forces the disk label ("dos" or "gpt"); see Layout for the
	// default rule.
	Label string
	// DefaultFS is the file system of a part without --fstype; default
	// ext4 (anaconda's default varies by release: ext3 on RHEL 5, ext4 on
	// RHEL 6 and Fedora, xfs on RHEL 7+).
	DefaultFS string
}

// DefaultRAM is the RAM (MiB) assumed for swap --recommended.
const DefaultRAM = 4096

const maxIncludeDepth = 16

// Parse reads a kickstart. Errors name the file and line; things clonecd
// does not use or cannot honour become Warnings (or, for storage, errors
// from Layout).
func Parse(r io.Reader, o Options) (*Kickstart, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.Name, err)
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	ks := &Kickstart{Name: o.Name, opts: o}
	p := &parser{ks: ks}
	if err := p.file(o.Name, data); err != nil {
		return nil, err
	}
	return ks, nil
}

// ParseFile parses the kickstart at path.
func ParseFile(path string, o Options) (*Kickstart, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o.Name = path
	return Parse(f, o)
}

// ParseFS parses name in fsys (e.g. "ks.cfg" on clone media); %include
// reads from fsys too.
func ParseFS(fsys fs.FS, name string, o Options) (*Kickstart, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	o.Name = name
	o.ReadFile = func(p string) ([]byte, error) {
		return fs.ReadFile(fsys, strings.TrimPrefix(path.Clean(p), "/"))
	}
	return Parse(bytes.NewReader(data), o)
}

type parser struct {
	ks    *Kickstart
	stack []string // files being read, for cycle detection
}

func (p *parser) warn(file string, line int, format string, a ...any) {
	p.ks.Warnings = append(p.ks.Warnings, Warning{file, line, fmt.Sprintf(format, a...)})
}

func errAt(file string, line int, format string, a ...any) error {
	return &Error{File: file, Line: line, Err: fmt.Errorf(format, a...)}
}

var sectionNames = map[string]bool{
	"%pre": true, "%pre-install": true, "%post": true, "%packages": true, "%addon": true,
	"%anaconda": true, "%onerror": true, "%traceback": true,
}

// sectionHeader reports whether line starts a section, and its words.
func sectionHeader(line string) (bool, []string, error) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "%") {
		return false, nil, nil
	}
	name := t
	if i := strings.IndexAny(t, " \t#"); i >= 0 {
		name = t[:i]
	}
	if !sectionNames[name] {
		return false, nil, nil
	}
	words, err := split(t)
	return true, words, err
}

func isEnd(line string) bool {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "%end") {
		return false
	}
	rest := t[4:]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '#'
}

func (p *parser) file(name string, data []byte) error {
	key := name
	if a, err := filepath.Abs(name); err == nil && name != "" {
		key = a
	}
	for _, s := range p.stack {
		if s == key {
			return fmt.Errorf("%%include cycle: %s", strings.Join(append(p.stack, key), " -> "))
		}
	}
	if len(p.stack) >= maxIncludeDepth {
		return fmt.Errorf("%%include nested more than %d deep at %s", maxIncludeDepth, name)
	}
	p.stack = append(p.stack, key)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	if i := binaryAt(data); i >= 0 {
		return &Error{File: name, Line: 1 + bytes.Count(data[:i], []byte{'\n'}),
			Err: fmt.Errorf("%w (byte %d is %#02x)", ErrBinary, i, data[i])}
	}

	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	for i := 0; i < len(lines); {
		lineNo := i + 1
		line := lines[i]
		i++
		if ok, words, err := sectionHeader(line); ok {
			if err != nil {
				return errAt(name, lineNo, "%v", err)
			}
			next, err := p.section(name, lineNo, words, lines, i)
			if err != nil {
				return err
			}
			i = next
			continue
		}
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		// Backslash continuations join command lines.
		for strings.HasSuffix(line, "\\") && i < len(lines) {
			line = strings.TrimSuffix(line, "\\") + lines[i]
			i++
		}
		t := strings.TrimSpace(line)
		if isEnd(t) {
			p.warn(name, lineNo, "%%end outside a section ignored")
			continue
		}
		words, err := split(t)
		if err != nil {
			return errAt(name, lineNo, "%v", err)
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "%include" || words[0] == "%ksappend" {
			if err := p.include(name, lineNo, words); err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(words[0], "%") {
			p.warn(name, lineNo, "unknown section %s ignored", words[0])
			continue
		}
		if err := p.command(Command{File: name, Line: lineNo, Name: words[0], Args: words[1:]}); err != nil {
			return err
		}
	}
	return nil
}

// include reads an %include file, relative to the including file.
func (p *parser) include(name string, line int, words []string) error {
	if len(words) != 2 {
		return errAt(name, line, "%s wants one file name", words[0])
	}
	target := words[1]
	if !filepath.IsAbs(target) && !strings.Contains(target, "://") {
		target = filepath.Join(filepath.Dir(name), target)
	}
	if strings.Contains(target, "://") {
		p.warn(name, line, "%s %s: URLs are not fetched; its commands are not used", words[0], words[1])
		return nil
	}
	data, err := p.ks.opts.ReadFile(target)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(filepath.Clean(words[1]), "/tmp/") {
			// The classic "%pre writes /tmp/part-include" pattern: the file
			// only exists inside the installer.
			p.warn(name, line, "%s %s: not found (written by %%pre at install time?); its commands are not used", words[0], words[1])
			return nil
		}
		return errAt(name, line, "%s: %w", words[0], err)
	}
	if err := p.file(target, data); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return err
		}
		return errAt(name, line, "%v", err)
	}
	return nil
}

// section reads a section starting after its header at lines[i:] and
// returns the index of the first line after it. A section ends at %end, at
// the next section header (RHEL 5 style, without %end) or at the end of
// the file.
func (p *parser) section(file string, line int, words []string, lines []string, i int) (int, error) {
	var body strings.Builder
	var pkgLines []int
	next := i
	for next < len(lines) {
		l := lines[next]
		if isEnd(l) {
			next++
			break
		}
		if ok, _, _ := sectionHeader(l); ok {
			break
		}
		body.WriteString(strings.TrimSuffix(l, "\r"))
		body.WriteByte('\n')
		pkgLines = append(pkgLines, next+1)
		next++
	}
	name := strings.TrimPrefix(words[0], "%")
	args := words[1:]
	switch name {
	case "pre", "pre-install", "post", "onerror", "traceback":
		s, err := scriptHeader(file, line, name, args)
		if err != nil {
			return 0, err
		}
		s.Body = body.String()
		switch name {
		case "pre":
			p.ks.Pre = append(p.ks.Pre, s)
		case "pre-install":
			p.ks.PreInstall = append(p.ks.PreInstall, s)
		case "post":
			p.ks.Post = append(p.ks.Post, s)
		case "onerror":
			p.ks.OnError = append(p.ks.OnError, s)
		case "traceback":
			p.ks.Traceback = append(p.ks.Traceback, s)
		}
	case "packages":
		if p.ks.Packages != nil {
			p.warn(file, line, "second %%packages section: its lists are added to the first")
		} else {
			p.ks.Packages = &Packages{File: file, Line: line}
		}
		pk := p.ks.Packages
		pk.Options = append(pk.Options, args...)
		for k, l := range strings.Split(body.String(), "\n") {
			if err := p.packageLine(file, pkgLines, k, l); err != nil {
				return 0, err
			}
		}
	case "addon", "anaconda":
		p.ks.Addons = append(p.ks.Addons, Section{File: file, Line: line, Name: name, Args: args, Body: body.String()})
		if name == "addon" && len(args) == 0 {
			return 0, errAt(file, line, "%%addon needs a name")
		}
	}
	return next, nil
}

func (p *parser) packageLine(file string, lines []int, k int, l string) error {
	t := strings.TrimSpace(l)
	if t == "" || t[0] == '#' {
		return nil
	}
	words, err := split(t)
	if err != nil {
		return errAt(file, lines[k], "%%packages: %v", err)
	}
	if len(words) == 0 {
		return nil
	}
	pk := p.ks.Packages
	switch w := words[0]; {
	case w == "%include":
		p.warn(file, lines[k], "%%include inside %%packages is not followed; the package list is informational only")
	case strings.HasPrefix(w, "@"):
		pk.Groups = append(pk.Groups, strings.TrimPrefix(w, "@"))
	case strings.HasPrefix(w, "-"):
		pk.Excluded = append(pk.Excluded, strings.TrimPrefix(w, "-"))
	default:
		pk.Packages = append(pk.Packages, w)
	}
	return nil
}

func scriptHeader(file string, line int, name string, args []string) (Script, error) {
	s := Script{File: file, Line: line, Type: name, Interpreter: "/bin/sh"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		opt, val, hasVal := strings.Cut(a, "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				i++
				return args[i], nil
			}
			return "", errAt(file, line, "%%%s %s needs a value", name, opt)
		}
		var err error
		switch opt {
		case "--nochroot":
			if name != "post" {
				return s, errAt(file, line, "--nochroot is an option of %%post only")
			}
			s.NoChroot = true
		case "--interpreter":
			s.Interpreter, err = value()
		case "--log", "--logfile":
			s.Log, err = value()
		case "--erroronfail":
			s.ErrorOnFail = true
		default:
			return s, errAt(file, line, "%%%s: unknown option %q (known: --interpreter, --log, --erroronfail, --nochroot)", name, a)
		}
		if err != nil {
			return s, err
		}
	}
	if s.Interpreter == "" {
		return s, errAt(file, line, "%%%s: empty --interpreter", name)
	}
	return s, nil
}
