// Package netclone is network recloning, the Medusa "ramclone" done over
// HTTP: the image server (`clonecd serve`: Range requests, strong ETags,
// admission control, per-node state and logs), the node's side (Media, a
// resumable, checksummed HTTP fs.FS for the clone; Reporter, which sends
// steps, progress, result and /tmp/clone.log back), the cloner's network
// setup (Up), and the master's commands: status, ramclone, reclone and
// reclone-all (Recloner).
//
// Admission control queues image streams first in, first out: at most
// MaxStreams GETs of node.cpio.gz are served at once and the others wait
// in line with their connection open (the waiting node shows as
// "waiting"); nobody is refused, so a node never has to guess when to come
// back.
//
// Server layout under DIR (the versions store's layout, or a flat image
// directory):
//
//	DIR/current -> versions/V   (optional; else DIR itself is current)
//	DIR/versions/V/{node.cpio.gz,node.cpio.gz.sha256,node.sfdisk,CLONE_CD_VERSION}
//	DIR/nodes/NODE/state.json   (node, version, state, step, done, total, error, when, log)
//	DIR/nodes/NODE/clone.log    (the node's /tmp/clone.log, uploaded at the end)
//	DIR/nodes/NODE/assign       (a version pinned for the node's next clone: canary)
//	DIR/nodes.table             (a flat directory's identity table, served as /nodes;
//	                             a store keeps it as DIR/versions/V/nodes)
//
// HTTP API:
//
//	GET  /FILE, /v/VERSION/FILE    image files (current, or a given version)
//	GET  /api/nodes                []State
//	GET  /api/nodes/NODE           State
//	POST /api/nodes/NODE           merge a State (the node's reports)
//	PUT  /api/nodes/NODE/log       the node's clone.log
//	POST /api/nodes/NODE/assign    body "VERSION" (empty clears)
//	GET  /api/stats                Stats (streams active, peak, served, queued)
package netclone
