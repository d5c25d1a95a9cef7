// Package builder makes clonecd.iso: ISO 9660 with Rock Ridge, El Torito
// BIOS (isolinux) and UEFI (FAT ESP) entries and an isohybrid MBR, holding
// the kernel, the initramfs, node.cpio.gz, the layout and CLONE_CD_VERSION.
package builder
