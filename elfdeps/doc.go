// Package elfdeps finds the shared libraries an ELF program needs inside a
// root directory (a golden root or /) by reading its headers: PT_INTERP,
// DT_NEEDED, DT_RPATH/DT_RUNPATH ($ORIGIN included), the root's
// ld.so.conf and the standard multiarch directories. It never runs the
// program or the host's loader, so it works for any root.
package elfdeps
