// Package image packs a golden node's root into node.cpio.gz, restores it
// safely into a directory, and verifies a directory against it.
package image
