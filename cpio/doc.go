// Package cpio reads and writes cpio archives in the newc (070701) and crc
// (070702) formats as streams, like archive/tar: device numbers, hardlinks
// in either order and crc checksums included.
//
// Header.Ext carries extra bytes in the name field after the name's NUL:
// readers that take the name as a C string (GNU cpio, the kernel) do not
// see them. Files of 4 GiB or more do not fit a header (ErrTooLarge).
// Reading errors are *Error values naming the entry and its offset; data
// that does not start like a newc/crc archive is ErrNotArchive (the older
// odc and binary formats are named), a bad header further on ErrHeader.
// The reader allocates at most a path and 64 KiB of Ext for a header,
// whatever the archive declares.
package cpio
