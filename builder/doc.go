// Package builder owns the clone CD: it makes clonecd.iso, ISO 9660 with
// Rock Ridge, El Torito BIOS (isolinux) and UEFI (FAT ESP) entries and an
// isohybrid MBR, holding the kernel, the initramfs, node.cpio.gz, the
// layout and CLONE_CD_VERSION.
//
// Build is `clonecd build`. Before any work it checks every setting (-o
// is not a directory, --version is MAJOR.MINOR, --server an http(s) URL,
// --timeout 1 to MaxTimeout, the kernel, layout and nodes table exist and
// parse); then it reads the whole image (image.Check: gzip's CRC and
// length, the cpio archive to its trailer) and checks it against its
// .sha256 when one sits beside it, so a random or truncated file never
// becomes a CD. Only then does it stage the media files (names from
// package medium) in a workspace next to the output (large files
// hard-linked), build the initramfs (package initramfs) and the UEFI
// loader (grub-mkstandalone in a FAT16 image), and write the ISO with
// WriteISO. The pieces are usable on their own:
// Stage and WriteISO (any tree to a bootable ISO), Hybrid (the isohybrid
// MBR), WriteESP, GrubEFI, Menu (isolinux.cfg and grub.cfg),
// ReadBootCatalog and KernelVersion.
//
// The ISO writer is github.com/diskfs/go-diskfs' iso9660, because
// github.com/kdomanski/iso9660 cannot make a bootable ISO (no El Torito,
// no Rock Ridge, node.cpio.gz renamed node_cpio.gz). Its caveats are
// handled here: Joliet stays off (SeaBIOS refuses the CD otherwise), the
// hybrid MBR is ours, files of 4 GiB or more are refused (it would
// truncate them), and its workspace is a fresh 0755 directory it deletes.
package builder
