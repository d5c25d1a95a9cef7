// Package clone is clone.sh done in Go: the named, logged, breakable steps
// that turn a blank or old disk into a node (setup, disk, tune, check,
// partition, mkfs, unpack, identity, bootloader, finish; the table in
// run.go is their only list), and Boot, what the initramfs's /init runs.
//
// It owns the check of the media against the master's signature (trust.go:
// with a trusted key, setup verifies MANIFEST and every file before
// anything is written, and each step reads its file through the signed
// manifest; without one the run says UNSIGNED), and the clone's failure
// model: the network safety net (safety.go),
// a node's identity kept across reclones and power cuts (keep.go), and the
// rule that every read and write in the new root stays inside it
// (rootfs.go).
package clone
