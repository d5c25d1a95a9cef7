// Package cpio reads and writes cpio archives in the newc (070701) and crc
// (070702) formats as streams, like archive/tar: device numbers, hardlinks
// in either order and crc checksums included.
package cpio
