// Package atomicfile writes files that must survive a crash or a power cut:
// a temporary file beside the target, fsync, rename over the target, fsync
// of the directory. A reader sees the old file or the new one, never half
// of one, and after the call returns the new one is on the disk.
//
// The temporary file and the rename come from github.com/google/renameio;
// this package adds the directory fsync renameio leaves out, and the same
// operations inside an *os.Root (a cloned node's root, where absolute
// symlinks must not lead out).
package atomicfile
