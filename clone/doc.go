// Package clone is clone.sh done in Go: the named, logged, breakable steps
// that turn a blank or old disk into a node (setup, disk, tune, check,
// partition, mkfs, unpack, identity, bootloader, finish).
package clone
