package cpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
)

// Format is the header format of an entry.
type Format int

const (
	// Newc is the SVR4 "new ASCII" format (magic 070701).
	Newc Format = iota
	// CRC is newc with a checksum of the data (magic 070702).
	CRC
)

func (f Format) String() string {
	if f == CRC {
		return "crc"
	}
	return "newc"
}

// ParseFormat maps "newc" or "crc" to a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "newc", "":
		return Newc, nil
	case "crc":
		return CRC, nil
	}
	return Newc, fmt.Errorf("cpio: unknown format %q (want newc or crc)", s)
}

// File type bits of Header.Mode (as in st_mode).
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeReg     = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFifo    = 0o010000
)

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

// MaxSize is the largest file a newc/crc header can describe (4 GiB - 1).
const MaxSize = 1<<32 - 1

const (
	headerLen = 110
	// maxNameLen bounds the name field: a path of PATH_MAX (4096) bytes,
	// 64 KiB of Ext data (clonecd's xattr records are at most 60 KiB) and
	// their NULs. A reader allocates no more for a header, whatever the
	// archive declares.
	maxNameLen = 4096 + 64<<10 + 2
	maxLinkLen = 4096
)

var (
	// ErrHeader is a malformed header (bad magic, non-hex field).
	ErrHeader = errors.New("malformed header")
	// ErrNotArchive is data that does not start like a newc or crc
	// archive (text, another cpio format, a compressed stream).
	ErrNotArchive = errors.New("not a cpio archive")
	// ErrChecksum is a crc entry whose data does not match its checksum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrTooLarge is a file of 4 GiB or more, which newc/crc cannot hold.
	ErrTooLarge = errors.New("file too large for cpio (4 GiB or more)")
	// ErrWriteTooLong is a Write past the size given in the header.
	ErrWriteTooLong = errors.New("write past the entry's size")
)

// Header describes one archive entry.
type Header struct {
	Name  string // path inside the archive, as stored ("etc/passwd")
	Mode  uint32 // full st_mode: type bits and permissions incl. setuid/setgid/sticky
	Uid   int
	Gid   int
	Nlink int
	Mtime int64 // seconds since the epoch
	Size  int64 // bytes of data; for a symlink the length of Linkname
	Ino   uint32
	// Devmajor/Devminor: the device holding the file; Rdevmajor/Rdevminor:
	// the device a char/block node stands for.
	Devmajor, Devminor   uint32
	Rdevmajor, Rdevminor uint32
	// Linkname is a symlink's target (its data in the archive). The writer
	// writes it as the body when Size is 0; the reader fills it in.
	Linkname string
	// Checksum is the crc format's sum of the data bytes. The writer
	// checks it against the data written; the reader verifies it.
	Checksum uint32
	Format   Format
	// Ext is data stored in the name field after the name's NUL byte.
	// Readers that use the name as a C string (GNU cpio, the kernel) do not
	// see it; clonecd keeps its xattr records there.
	Ext []byte
	// Offset is the byte offset of the header in the uncompressed stream
	// (set by the reader).
	Offset int64
}

// Type returns the file type bits of Mode.
func (h *Header) Type() uint32 { return h.Mode & TypeMask }

// FileMode converts Mode to an fs.FileMode.
func (h *Header) FileMode() fs.FileMode {
	m := fs.FileMode(h.Mode & 0o777)
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch h.Type() {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlock:
		m |= fs.ModeDevice
	case TypeFifo:
		m |= fs.ModeNamedPipe
	case TypeSocket:
		m |= fs.ModeSocket
	}
	return m
}

// Sum returns the crc format's checksum (the 32-bit sum of the bytes) of
// p added to sum.
func Sum(sum uint32, p []byte) uint32 {
	const mask = 0x00FF00FF00FF00FF
	for len(p) >= 8 {
		// Four 16-bit lanes each gain at most 2*255 per word: fold
		// them before they can overflow (128 words).
		n := min(len(p)/8, 128)
		var lanes uint64
		for i := 0; i < n; i++ {
			x := binary.LittleEndian.Uint64(p[8*i:])
			lanes += x&mask + (x>>8)&mask
		}
		p = p[8*n:]
		lanes = lanes&0x0000FFFF0000FFFF + (lanes>>16)&0x0000FFFF0000FFFF
		sum += uint32(lanes) + uint32(lanes>>32)
	}
	for _, b := range p {
		sum += uint32(b)
	}
	return sum
}
