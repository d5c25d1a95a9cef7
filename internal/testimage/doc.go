// Package testimage writes tiny but real clone images for tests: a gzip'd
// (or zstd) cpio archive that image.Check accepts, so tests of publish, the store
// and the commands need no golden root.
package testimage
