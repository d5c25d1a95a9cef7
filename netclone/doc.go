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
// A clone that does not finish never boots as if it were good: ramclone
// sets a one-shot GRUB entry (grub-reboot; --sticky uses grub-set-default,
// so every boot is the cloner until a clone succeeds and writes a fresh
// root whose grubenv is empty). Once the cloner has made new filesystems,
// the node's GRUB finds no configuration until the bootloader step, which
// runs only after the image's sha256 matched; a failed network clone
// stays in the cloner (it tries again, then the rescue shell) instead of
// rebooting. The node's name on the server is clonecd.hostname=, else the
// served nodes table by MAC, else DHCP's host name, else node-<mac>
// (ramclone also records clonecd_hostname in grubenv for the entry).
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
