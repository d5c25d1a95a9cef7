// Package image owns node images: it packs a golden node's root into a
// compressed cpio archive (node.cpio.gz, or node.cpio.zst), checks one
// whole, restores it safely into a directory, and verifies a directory
// against it. The medium's file names come from package medium.
//
// # Format
//
// A newc (or crc) cpio archive, gzip'd (the default, what GNU cpio and
// initramfs tools read) or zstd'd (Compression). Readers tell them apart
// by their magic, never by the file name; xz, bzip2, lz4, lzop and lzma
// are named and refused. Pack walks ROOT sorted, each directory after its
// contents (find -depth order, so that GNU cpio -idm keeps directory
// times), without crossing filesystems, leaving out DefaultExcludes.
// Hardlinks are stored once with the data on the last name, as GNU cpio
// does. Extended attributes (ping's file capability) go into records that
// GNU cpio reads as a repeat of the root directory "." (see xattr.go), so
// plain `gzip -dc node.cpio.gz | cpio -idm` (or `zstd -dc`) still
// extracts the same tree.
//
// # A sound image
//
// Check defines it, and Unpack and Verify read by the same rules (the
// stream type in check.go): the compressed stream decompresses to its end
// with its checksums right, the archive is well formed to its trailer,
// and only zero padding follows. So a byte flipped anywhere, even in
// gzip's CRC after the last file, fails the unpack.
//
// # Pack output
//
// PackFile writes IMAGE 0600 (it holds /etc/shadow and private keys) and
// IMAGE.sha256 0644, checking the output before packing and replacing the
// pair so that a crash leaves the old pair, the new pair or an image
// without a sum, never a mismatched pair. Pack refuses a terminal.
//
// # Unpack
//
// Unpack streams an image from any io.Reader into a directory with *at
// system calls on directory descriptors opened O_NOFOLLOW: absolute
// names, ".." and writes through symlinks are refused and nothing lands
// outside the directory. DIR must be new or empty unless Merge; every
// refusal comes before the first write. The caller's goroutine reads the
// stream and creates names in archive order; writers (writers.go) write
// file data and set metadata in parallel; the ordering hardlinks, xattrs
// and directory times need is described there. What an archive can make
// unpack allocate is bounded: the name field (cpio), xattr records one at
// a time (XattrRecordMax, XattrTotalMax), names seen as 128-bit hashes.
// Untrusted drops devices, setuid/setgid bits and non-user xattrs.
//
// Verify compares a directory with an image and lists every difference;
// IdentityFiles, the files a clone personalises, are listed apart.
package image
