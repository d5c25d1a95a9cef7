// Package partition owns disk partition tables: reading and writing dos
// (with extended and logical partitions) and gpt tables in util-linux
// sfdisk's dump format, fitting a layout to a disk's size, refusing a
// disk in use, deciding whether a disk's /data can be preserved, and
// capturing a golden node's layout.
//
// # Layout files
//
// A layout file is an sfdisk script: what `sfdisk -d` prints (Dump's
// WriteTo output is byte-identical to util-linux 2.38's) or the simpler
// "start, size, type, bootable" lines. What sfdisk has no field for is
// carried on comment lines sfdisk ignores:
//
//	# clonecd: part=3 fs=ext4 mount=/data label=data mkfs="-O ^metadata_csum" preserve=yes grow=yes maxsize=10GiB
//
// Keys: part (partition number, required), fs (ext2, ext3, ext4, xfs, vfat,
// swap, none), mount (a clean absolute path without ".."), label
// (filesystem label), mkfs (extra mkfs options), preserve (the partition
// mounted at /data is preserved unless preserve=no), grow (share the
// disk's free space) and maxsize (limit for grow or for a partition
// without size). Unknown keys, headers and fields are errors that name the
// file and line (LineError).
//
// # Same table as sfdisk
//
// Apply writes exactly the table sfdisk 2.38 writes for the same script
// on the same disk (MBR with CHS values and disk signature, EBR chain,
// protective MBR, both gpt headers and entry arrays), or refuses the
// script; sfdisk_diff_test.go runs real sfdisk on hundreds of scripts to
// hold it to that. The rules it follows, found by running sfdisk:
//   - numbers are sectors of the sector-size header (512 without one);
//     sizes with a unit (K, M, G, T with optional iB = powers of 1024; KB,
//     MB... = powers of 1000) are bytes, and their end is aligned to the
//     grain (1 MiB, or the disk's optimal I/O size) as libfdisk does: on
//     dos a size under one grain gets one sector more, and a tie rounds up;
//   - a missing start is the first free aligned sector where the size fits
//     (dos), or the start of the largest free gap (gpt); a missing size is
//     the rest of the gap (on gpt, a gap reaching the end of the disk ends
//     at a grain boundary);
//   - an old dump's empty slot ("start= 0, size= 0, Id= 0") is skipped;
//     start=0 otherwise is refused; size=0 is one sector on dos and
//     refused on gpt (sfdisk: "Could not create partition");
//   - a dos line without a number after the extended partition is primary
//     or logical by libfdisk's rule, which depends on the free space: when
//     the disk decides it differently from the layout, the layout is
//     refused with a request to give the number; logical partitions are
//     numbered 5, 6, ... in the order of their lines.
//
// Where sfdisk would write something other than what the script asks, the
// layout is refused instead: a layout that does not fit (sfdisk shrinks a
// gpt partition given with a unit, and writes a 0-sector dos entry); lines
// after the fourth primary of a dos disk without extended partition
// (sfdisk ignores them); a second extended partition; a start inside
// another partition (sfdisk moves it); a number given twice. A script
// with no label and no partitions (ErrEmpty: sfdisk leaves the table as it
// is) is refused by ParseLayout; one with a label and no partitions
// (ErrNoPartitions: sfdisk writes an empty table) is refused by Apply
// unless ApplyOptions.AllowEmpty.
//
// The gpt last-lba header is ignored when fitting, so one layout serves
// disks of any size; layouts in 512-byte sectors are converted for
// 4096-byte disks. A layout that does not fit is refused saying by how
// many MiB (FitError), before anything is written.
//
// # Writing a disk
//
// Apply refuses a disk in use (InUse: a mounted filesystem, active swap,
// a device-mapper or md holder, an exclusive claim; an image file through
// its loop devices) with an InUseError unless ApplyOptions.Force, as
// sfdisk says "This disk is currently in use". It holds the disk open
// exclusively while it writes, then has the kernel re-read the table
// (BLKRRPART, else BLKPG as partx does). Its dry run writes nothing and
// shows the table with exactly the ids that will be written: a label-id
// or gpt uuid the layout does not give is left out, as it is chosen at
// random when the table is written.
//
// Check compares a disk with a fitted layout and runs a read-only fsck on
// the preserved partitions. ProbeFS reads ext2/3/4, xfs, vfat and swap
// superblocks without blkid. Capture writes a layout from a running golden
// node's disk and /etc/fstab; it refuses a root without an fstab, or an
// fstab that names no partition of the disk.
//
// Files: layout.go (types and errors), parse.go and meta.go (reading a
// layout and its "# clonecd:" lines), strconv.go (numbers, sizes, quoting),
// validate.go (numbering and checks), format.go (writing a layout), fit.go
// (placing it on a disk as libfdisk does), apply.go and write.go (writing
// a table), inuse.go, dump.go, check.go, capture.go, probe.go.
package partition
