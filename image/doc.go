// Package image packs a golden node's root into node.cpio.gz, restores it
// safely into a directory, and verifies a directory against it.
//
// Pack walks ROOT sorted, each directory after its contents (find -depth
// order, so that GNU cpio -idm keeps directory times), without crossing
// filesystems, leaving out DefaultExcludes. Hardlinks are stored once
// with the data on the last name, as GNU cpio does. Extended attributes
// (ping's file capability) go into records that GNU cpio reads as a
// repeat of the root directory "." (see xattr.go), so plain
// `gzip -dc node.cpio.gz | cpio -idm` still extracts the same tree.
// PackFile also writes node.cpio.gz.sha256.
//
// Unpack streams an image (gzip'd or plain, newc or crc) from any
// io.Reader into a directory with *at system calls on directory
// descriptors opened O_NOFOLLOW: absolute names, ".." and writes through
// symlinks are refused and nothing lands outside the directory.
//
// Verify compares a directory with an image and lists every difference;
// IdentityFiles, the files a clone personalises, are listed apart.
package image
