// Package e2e holds clonecd's end-to-end tests: a real Debian golden root
// packed, built into clonecd.iso and cloned in QEMU (TCG) onto blank
// virtio, SATA and IDE disks under SeaBIOS and OVMF, then booted from the
// disk alone and checked on the serial console: clonecd.data=keep, a
// corrupted image, the Medusa page's own GNU cpio archive, a network
// reclone with the server killed and a corrupted stream (the node keeps
// its name, host keys and machine-id), and the power-cut matrix
// (powercut_test.go: QEMU killed in partition, mkfs, unpack, identity and
// bootloader, BIOS and UEFI, CD and network; /data intact), one of whose
// network chains reclones through `clonecd serve --swarm` with a seeder in
// a network namespace (swarm_test.go). `make bench`
// measures each clone step and the unpack rate against zcat | cpio in the
// same VM.
package e2e
