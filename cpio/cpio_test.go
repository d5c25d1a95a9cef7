package cpio

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

type entry struct {
	h    Header
	data string
}

func sample(f Format) []entry {
	return []entry{
		{Header{Name: ".", Mode: TypeDir | 0o755, Nlink: 2, Mtime: 1700000000}, ""},
		{Header{Name: "etc", Mode: TypeDir | 0o755, Nlink: 2, Mtime: 1700000001, Uid: 3, Gid: 4}, ""},
		{Header{Name: "etc/passwd", Mode: TypeReg | 0o644, Nlink: 1, Mtime: 1700000002, Ino: 7}, "root:x:0:0::/root:/bin/sh\n"},
		{Header{Name: "usr/bin/su", Mode: TypeReg | 0o4755, Nlink: 1, Uid: 0, Gid: 0}, "ELF"},
		{Header{Name: "bin", Mode: TypeSymlink | 0o777, Nlink: 1, Linkname: "usr/bin"}, ""},
		{Header{Name: "dev/null", Mode: TypeChar | 0o666, Nlink: 1, Rdevmajor: 1, Rdevminor: 3}, ""},
		{Header{Name: "dev/sda1", Mode: TypeBlock | 0o660, Nlink: 1, Gid: 6, Rdevmajor: 8, Rdevminor: 1, Devmajor: 259, Devminor: 300}, ""},
		{Header{Name: "run/fifo", Mode: TypeFifo | 0o600, Nlink: 1}, ""},
		{Header{Name: "tmp", Mode: TypeDir | 0o1777, Nlink: 2}, ""},
		{Header{Name: "x", Mode: TypeDir | 0o755, Nlink: 2, Ext: []byte("hidden\x00data")}, ""},
		{Header{Name: "empty", Mode: TypeReg | 0o600, Nlink: 1}, ""},
		{Header{Name: "odd", Mode: TypeReg | 0o600, Nlink: 1}, "12345"},
	}
}

func writeArchive(t testing.TB, f Format, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		h.Format = f
		h.Size = int64(len(e.data))
		h.Checksum = Sum(0, []byte(e.data))
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%512 != 0 {
		t.Fatalf("archive of %d bytes is not padded to 512", buf.Len())
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{Newc, CRC} {
		t.Run(f.String(), func(t *testing.T) {
			entries := sample(f)
			raw := writeArchive(t, f, entries)
			r := NewReader(bytes.NewReader(raw))
			for i, e := range entries {
				h, err := r.Next()
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				data, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				want := e.h
				want.Format = f
				want.Size = int64(len(e.data))
				if want.Type() == TypeSymlink {
					want.Size = int64(len(want.Linkname))
					data = []byte(h.Linkname)
					e.data = want.Linkname
				}
				if f == CRC && want.Type() == TypeReg {
					want.Checksum = Sum(0, []byte(e.data))
				}
				got := *h
				got.Offset = 0
				if len(want.Ext) == 0 {
					want.Ext = nil
				}
				if len(got.Ext) == 0 {
					got.Ext = nil
				}
				if got.Name != want.Name || got.Mode != want.Mode || got.Uid != want.Uid || got.Gid != want.Gid ||
					got.Nlink != want.Nlink || got.Mtime != want.Mtime || got.Size != want.Size || got.Ino != want.Ino ||
					got.Devmajor != want.Devmajor || got.Devminor != want.Devminor || got.Rdevmajor != want.Rdevmajor ||
					got.Rdevminor != want.Rdevminor || got.Linkname != want.Linkname || got.Checksum != want.Checksum ||
					got.Format != want.Format || !bytes.Equal(got.Ext, want.Ext) {
					t.Errorf("entry %d:\n got %+v\nwant %+v", i, got, want)
				}
				if string(data) != e.data {
					t.Errorf("entry %d data %q, want %q", i, data, e.data)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after last entry: %v, want io.EOF", err)
			}
		})
	}
}

// TestGNUReadsOurs extracts our archives with GNU cpio and lists them.
func TestGNUReadsOurs(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no GNU cpio")
	}
	for _, f := range []Format{Newc, CRC} {
		raw := writeArchive(t, f, []entry{
			{Header{Name: "a", Mode: TypeReg | 0o644, Nlink: 1, Mtime: 1700000000}, "hello\n"},
			{Header{Name: "l", Mode: TypeSymlink | 0o777, Nlink: 1, Linkname: "a"}, ""},
			{Header{Name: "d", Mode: TypeDir | 0o700, Nlink: 2, Ext: []byte("ignored by GNU")}, ""},
		})
		cmd := exec.Command("cpio", "-itv")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: GNU cpio -t: %v\n%s", f, err, out)
		}
		for _, want := range []string{" a\n", " l -> a\n", " d\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: GNU cpio -tv output lacks %q:\n%s", f, want, out)
			}
		}
	}
}

func TestReaderErrors(t *testing.T) {
	good := writeArchive(t, CRC, []entry{
		{Header{Name: "file", Mode: TypeReg | 0o644, Nlink: 1}, "some data here"},
	})
	dataAt := bytes.Index(good, []byte("some data"))
	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		raw  []byte
		want string
		is   error
	}{
		{"bad crc", corrupt(func(b []byte) []byte { b[dataAt] ^= 1; return b }), `entry "file" at offset 0`, ErrChecksum},
		{"truncated data", good[:dataAt+3], `entry "file" at offset 0: truncated data`, io.ErrUnexpectedEOF},
		{"truncated header", good[:50], "truncated header", io.ErrUnexpectedEOF},
		{"no trailer", good[:dataAt+16], "without a trailer", io.ErrUnexpectedEOF},
		{"odc magic", corrupt(func(b []byte) []byte { b[5] = '7'; return b }), "header at offset 0: not a cpio archive in the newc or crc format: it is the old portable format", ErrNotArchive},
		{"binary cpio", []byte("\xc7\x71 binary cpio header....."), "it is the old binary format", ErrNotArchive},
		{"short text", []byte("hello world\n"), `header at offset 0: not a cpio archive (it starts with "hello world\n")`, ErrNotArchive},
		{"bad magic later", corrupt(func(b []byte) []byte { b[bytes.LastIndex(b, []byte("070702"))+2] = 'x'; return b }), `header at offset 132: malformed header: bad magic "07x702"`, ErrHeader},
		{"non-hex", corrupt(func(b []byte) []byte { b[20] = 'z'; return b }), "mode field", ErrHeader},
		{"empty", nil, "empty archive", nil},
		{"huge name", corrupt(func(b []byte) []byte { copy(b[94:], "7FFFFFFF"); return b }), "name size", ErrHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.raw))
			var err error
			for err == nil {
				_, err = r.Next()
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
			}
			if err == io.EOF {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter(io.Discard)
	err := w.WriteHeader(&Header{Name: "big.img", Mode: TypeReg | 0o644, Size: 4 << 30})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.img") {
		t.Errorf("4 GiB file: %v", err)
	}
	if err := w.WriteHeader(&Header{Name: "f", Mode: TypeReg, Size: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); !errors.Is(err, ErrWriteTooLong) {
		t.Errorf("long write: %v", err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("short entry: Close gave %v", err)
	}
	w = NewWriter(io.Discard)
	w.WriteHeader(&Header{Name: "c", Mode: TypeReg, Size: 1, Format: CRC, Checksum: 5})
	w.Write([]byte{4})
	if err := w.Close(); !errors.Is(err, ErrChecksum) {
		t.Errorf("wrong checksum: Close gave %v", err)
	}
}

// FuzzReader feeds arbitrary bytes to the reader: it must not panic or
// loop, and what it accepts must survive a rewrite.
func FuzzReader(f *testing.F) {
	// The committed corpus is in testdata/fuzz/FuzzReader (ours and GNU
	// cpio's newc and crc archives, a truncated one); add a fresh one.
	f.Add(writeArchive(f, CRC, sample(CRC)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := NewReader(bytes.NewReader(raw))
		var out bytes.Buffer
		w := NewWriter(&out)
		for i := 0; i < 10000; i++ {
			h, err := r.Next()
			if err != nil {
				return
			}
			data, err := io.ReadAll(r)
			if err != nil {
				return
			}
			h2 := *h
			if h2.Type() == TypeSymlink {
				h2.Size = 0
			}
			if err := w.WriteHeader(&h2); err != nil {
				t.Fatalf("rewriting %q: %v", h.Name, err)
			}
			if h2.Type() != TypeSymlink {
				if _, err := w.Write(data); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestSum(t *testing.T) {
	slow := func(p []byte) uint32 {
		var s uint32
		for _, b := range p {
			s += uint32(b)
		}
		return s
	}
	for _, n := range []int{0, 1, 7, 8, 9, 1023, 1024, 1025, 5000, 1 << 20} {
		p := bytes.Repeat([]byte{0xff, 0xfe, 0x01, 0x80, 0x7f, 0x33, 0xff, 0xff, 0x00, 0xaa, 0x55}, n/11+1)[:n]
		if got, want := Sum(7, p), slow(p)+7; got != want {
			t.Errorf("Sum of %d bytes = %08x, want %08x", n, got, want)
		}
	}
}

// BenchmarkSum compares Sum with a plain byte loop on 1 MiB.
func BenchmarkSum(b *testing.B) {
	p := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	var plain, fast time.Duration
	var s1, s2 uint32
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for r := 0; r < 20; r++ {
			for _, c := range p {
				s1 += uint32(c)
			}
		}
		t1 := time.Now()
		for r := 0; r < 20; r++ {
			s2 = Sum(s2, p)
		}
		plain, fast = plain+t1.Sub(t0), fast+time.Since(t1)
	}
	if s1 != s2 {
		b.Fatalf("sums differ: %08x %08x", s1, s2)
	}
	b.ReportMetric(fast.Seconds()/plain.Seconds(), "time/byte-loop")
}
