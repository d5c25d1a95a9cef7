// Package fleet owns the cluster's nodes as the master sees them: their
// names (ValidName: one check for serve, reclone, status, the cloner's
// reporter and the PXE code), nodesets (s[001-064]), and the one writer of
// their state on disk.
//
// The node store (Open; a directory, the image store's DIR/nodes) is:
//
//	NODE/state.json   the node's State (JSON), replaced atomically
//	NODE/clone.log    the node's last /tmp/clone.log, at most Limits.MaxLog bytes
//	NODE/assign       a version pinned for the node's next clone (canary)
//	NODE/history      the node's finished clones and syncs (Run), one JSON
//	                  line each, appended; the newest MaxHistory are kept
//
// NODE is always a ValidName. Every write is write-temp, fsync, rename,
// fsync-dir (internal/atomicfile) under an flock on NODE's directory, so
// the server and `reclone --dir` can update the same node at once without
// losing either update. Reading never writes and never creates anything.
// A state.json that cannot be read (empty after a crash, corrupt) is that
// node's problem only: it reads as state "unknown" with Detail "corrupt
// state.json", every other node still lists, and the next update
// replaces it.
//
// Bounds (Limits): at most MaxNodes node directories, MaxLog bytes per
// log and MaxLogTotal bytes over all logs; strings in a State are capped
// and stripped of control characters (Clean) before they are stored, so a
// node cannot put terminal escapes into `clonecd status`.
//
// A State says which operation it is about (Op: a clone, or a sync) and
// when its step began by the master's clock (StepStarted), so the server
// times steps without trusting node clocks. A Store's OnChange hook sees
// every change it writes (the server's metrics, events and log).
package fleet
