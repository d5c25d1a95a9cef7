// Package partition reads and writes disk partition tables (dos with
// logical partitions, gpt) in util-linux sfdisk's dump format, fits a layout
// to a disk's size, and decides whether a disk's /data can be preserved.
package partition
