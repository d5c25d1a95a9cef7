// Package initramfs builds the clone CD's initramfs: clonecd itself as
// /init, kernel modules with their modules.dep closure and firmware, helper
// programs with the shared libraries their ELF headers name, and a rescue
// shell, written as a gzip'd newc archive.
package initramfs
