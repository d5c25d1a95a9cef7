// Package partition reads and writes disk partition tables (dos with
// extended and logical partitions, gpt) in util-linux sfdisk's dump format,
// fits a layout to a disk's size, and decides whether a disk's /data can be
// preserved.
//
// A layout file is an sfdisk script: what `sfdisk -d` prints (Dump's
// WriteTo output is byte-identical to util-linux 2.38's) or the simpler
// "start, size, type, bootable" lines, and real sfdisk accepts it
// unchanged. What sfdisk has no field for is carried on comment lines sfdisk
// ignores:
//
//	# clonecd: part=3 fs=ext4 mount=/data label=data mkfs="-O ^metadata_csum" preserve=yes grow=yes maxsize=10GiB
//
// Keys: part (partition number, required), fs (ext2, ext3, ext4, xfs, vfat,
// swap, none), mount, label (filesystem label), mkfs (extra mkfs options),
// preserve (the partition mounted at /data is preserved unless preserve=no),
// grow (share the disk's free space) and maxsize (limit for grow or for a
// partition without size). Unknown keys, headers and fields are errors that
// name the line.
//
// Sizes: numbers are sectors of the layout's sector-size header (512 when it
// has none); sizes with a unit (K, M, G, T with optional iB = powers of
// 1024; KB, MB... = powers of 1000) are bytes and get sfdisk's end
// alignment. Fit follows sfdisk's rules: a missing start is the first free
// sector aligned to the grain (1 MiB), a missing size the rest of that free
// space (on gpt its end aligned down), logical partitions leave room for
// their EBR; layouts in 512-byte sectors are converted for 4096-byte disks.
// The gpt last-lba header is ignored when fitting, so one layout serves
// disks of any size; a layout that does not fit is refused saying by how
// many MiB, before anything is written.
//
// Apply writes exactly what sfdisk writes for the same script (MBR with CHS
// values and disk signature, EBR chain, protective MBR, both gpt headers and
// entry arrays), then has the kernel re-read the table (BLKRRPART, else
// BLKPG as partx does). Check compares a disk with a fitted layout and runs
// a read-only fsck on the preserved partitions. ProbeFS reads ext2/3/4,
// xfs, vfat and swap superblocks without blkid. Capture writes a layout from
// a running golden node's disk and /etc/fstab.
package partition
