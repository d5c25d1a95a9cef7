// Package initramfs owns the clone CD's initramfs: it builds clonecd
// itself as /init, kernel modules with their modules.dep closure and
// firmware, helper programs with the shared libraries their ELF headers
// name, and a rescue shell, written as a gzip'd newc archive (Build); and
// it packs an edited, unpacked initramfs back as it is (BuildDir, `make
// rd`). Settings are checked before any work: the gzip level (MinLevel to
// MaxLevel, 0 for the default), the directory to pack and its /init, the
// busybox given. Errors name the file or setting, not the package.
package initramfs
