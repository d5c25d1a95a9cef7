package nodesync

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const sampleFiles = `clonecd-files 1
d 0755 0 0 1700000000 /
d 0755 0 0 1700000000 /etc
p 0600 0 0 1700000005 /etc/fifo
f 0644 0 0 1700000001 5 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 /etc/hello
x security.capability 0100000200200000000000000000000000000000
x user.note -
h /etc/hello /etc/hello2
l 0 0 1700000002 hello /etc/link
c 0600 0 0 1700000004 1 3 /etc/null
b 0660 0 6 1700000004 8 0 /etc/sda
s 0755 0 0 1700000005 /etc/sock
f 0600 0 0 1700000003 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 /etc/with\x20space\x0aand\xc3\xa9
d 1777 0 0 1700000000 /tmp
end 11
`

// TestParseRoundTrip: Parse reads every record type and Marshal writes
// the same bytes back.
func TestParseRoundTrip(t *testing.T) {
	f, err := Parse(strings.NewReader(sampleFiles))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 11 {
		t.Fatalf("Parse: %d entries, want 11", len(f.Entries))
	}
	h, _ := f.Lookup("/etc/hello2")
	if h.Type != Hardlink || h.Target != "/etc/hello" || h.Size != 5 || h.Mode != 0o644 || h.Xattrs != nil {
		t.Errorf("hard link entry = %+v", *h)
	}
	x, _ := f.Lookup("/etc/hello")
	if len(x.Xattrs) != 2 || x.Xattrs[0].Name != "security.capability" || len(x.Xattrs[1].Value) != 0 {
		t.Errorf("xattrs = %+v", x.Xattrs)
	}
	if _, ok := f.Lookup("/etc/with space\nand\u00e9"); !ok {
		t.Errorf("escaped path not found")
	}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != sampleFiles {
		t.Errorf("Marshal(Parse(x)) != x:\n%s", b)
	}
}

// TestParseErrors: each malformed node.files is refused at its line.
func TestParseErrors(t *testing.T) {
	head := "clonecd-files 1\nd 0755 0 0 1 /\n"
	for _, tt := range []struct {
		name, in string
		line     int
	}{
		{"empty", "", 1},
		{"other format", "clonecd-files 2\n", 1},
		{"no end", head, 3},
		{"no newline at the end", head + "end 1", 3},
		{"wrong count", head + "end 2\n", 3},
		{"text after end", head + "end 1\nd 0755 0 0 1 /x\n", 4},
		{"root not first", "clonecd-files 1\nd 0755 0 0 1 /a\nend 1\n", 2},
		{"unsorted", head + "d 0755 0 0 1 /b\nd 0755 0 0 1 /a\nend 3\n", 4},
		{"duplicate", head + "d 0755 0 0 1 /a\nd 0755 0 0 1 /a\nend 3\n", 4},
		{"no parent", head + "f 0644 0 0 1 0 " + EmptySum.String() + " /a/b\nend 2\n", 3},
		{"parent a file", head + "f 0644 0 0 1 0 " + EmptySum.String() + " /a\nf 0644 0 0 1 0 " + EmptySum.String() + " /a/b\nend 3\n", 4},
		{"dot dot", head + "d 0755 0 0 1 /..\nend 2\n", 3},
		{"relative", head + "d 0755 0 0 1 a\nend 2\n", 3},
		{"trailing slash", head + "d 0755 0 0 1 /a/\nend 2\n", 3},
		{"mode digits", head + "d 755 0 0 1 /a\nend 2\n", 3},
		{"mode 8", head + "d 0785 0 0 1 /a\nend 2\n", 3},
		{"leading zero", head + "d 0755 00 0 1 /a\nend 2\n", 3},
		{"plus sign", head + "d 0755 +1 0 1 /a\nend 2\n", 3},
		{"uid -1", head + "d 0755 4294967295 0 1 /a\nend 2\n", 3},
		{"double space", head + "d 0755  0 0 1 /a\nend 2\n", 3},
		{"unknown type", head + "q 0755 0 0 1 /a\nend 2\n", 3},
		{"short sha", head + "f 0644 0 0 1 3 abc /a\nend 2\n", 3},
		{"upper sha", head + "f 0644 0 0 1 3 " + strings.ToUpper(EmptySum.String()) + " /a\nend 2\n", 3},
		{"empty with a sum", head + "f 0644 0 0 1 0 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 /a\nend 2\n", 3},
		{"hard link to nothing", head + "h /b /a\nend 2\n", 3},
		{"hard link to a dir", head + "d 0755 0 0 1 /a\nh /a /b\nend 3\n", 4},
		{"raw space escaped wrongly", head + `d 0755 0 0 1 /a\x41` + "\nend 2\n", 3},
		{"upper hex escape", head + `d 0755 0 0 1 /a\x0A` + "\nend 2\n", 3},
		{"bad escape", head + `d 0755 0 0 1 /a\y00` + "\nend 2\n", 3},
		{"short escape", head + `d 0755 0 0 1 /a\x0` + "\nend 2\n", 3},
		{"raw high byte", head + "d 0755 0 0 1 /a\xc3\xa9\nend 2\n", 3},
		{"tab", head + "d 0755 0 0 1 /a\tb\nend 2\n", 3},
		{"NUL in path", head + `d 0755 0 0 1 /a\x00` + "\nend 2\n", 3},
		{"empty link target", head + "l 0 0 1  /a\nend 2\n", 3},
		{"xattr on a symlink", head + "l 0 0 1 x /a\nx user.a 00\nend 2\n", 4},
		{"xattr unsorted", head + "d 0755 0 0 1 /a\nx user.b 00\nx user.a 00\nend 2\n", 5},
		{"xattr odd hex", head + "d 0755 0 0 1 /a\nx user.a 0\nend 2\n", 4},
		{"xattr empty hex", head + "d 0755 0 0 1 /a\nx user.a \nend 2\n", 4},
		{"xattr upper hex", head + "d 0755 0 0 1 /a\nx user.a AB\nend 2\n", 4},
		{"x first", "clonecd-files 1\nx user.a 00\n", 2},
		{"device too big", head + "c 0600 0 0 1 4294967296 0 /a\nend 2\n", 3},
		{"long line", head + "d 0755 0 0 1 /" + strings.Repeat("a", maxLine) + "\nend 2\n", 3},
		{"too many fields", head + "d 0755 0 0 1 1 /a\nend 2\n", 3},
	} {
		_, err := Parse(strings.NewReader(tt.in))
		var le *LineError
		if !errors.As(err, &le) || le.Line != tt.line {
			t.Errorf("%s: Parse = %v; want an error at line %d", tt.name, err, tt.line)
		}
	}
}

// TestMarshalRefuses: Marshal checks what it writes.
func TestMarshalRefuses(t *testing.T) {
	for _, f := range []*Files{
		{},
		{Entries: []Entry{{Path: "/", Type: Dir}, {Path: "/a/../b", Type: Dir}}},
		{Entries: []Entry{{Path: "/", Type: Dir}, {Path: "/b", Type: Dir}, {Path: "/a", Type: Dir}}},
	} {
		if _, err := f.Marshal(); err == nil {
			t.Errorf("Marshal(%+v) = nil error; want a refusal", f.Entries)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleFiles))
	f.Add([]byte("clonecd-files 1\nd 0755 0 0 1 /\nend 1\n"))
	f.Add([]byte("clonecd-files 1\nd 0755 0 0 1 /\nf 0644 0 0 1 0 " + EmptySum.String() + " /a\nh /a /b\nend 3\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		files, err := Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		out, err := files.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed file: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("Marshal(Parse(x)) != x\n%q\n%q", in, out)
		}
		if err := files.check(); err != nil {
			t.Fatalf("check of a parsed file: %v", err)
		}
	})
}
