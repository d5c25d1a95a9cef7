// Package vm runs QEMU (TCG, as this project's machines have no working
// KVM) for tests and the demo: disks on virtio, IDE, AHCI, NVMe or USB, a
// CD, BIOS or OVMF, user networking, and the serial console as a stream
// that tests wait on for markers, never on sleeps.
package vm
