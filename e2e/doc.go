// Package e2e holds clonecd's end-to-end tests: a real Debian golden root
// packed, built into clonecd.iso and cloned in QEMU (TCG) onto blank
// virtio, SATA and IDE disks under SeaBIOS and OVMF, then booted from the
// disk alone and checked on the serial console; /data kept across a
// reclone, clonecd.data=keep, a corrupted image, a power cut during unpack,
// and the Medusa page's own GNU cpio archive. `make bench` measures each
// clone step and the unpack rate against zcat | cpio in the same VM.
package e2e
