// Package netclone is network recloning, the Medusa "ramclone" done over
// HTTP: the image server (Server: `clonecd serve`, Range requests, strong
// ETags, bounded admission, the nodes' reports), the node's side (Media,
// a resumable, checksummed HTTP fs.FS for the clone; Reporter, which
// sends steps, progress, result and /tmp/clone.log back; Fetch), and the
// master's commands: status and reclone (StateSource, Recloner), ramclone
// on a node.
//
// The server reads versions only through the image store (package
// versions: current, a node's pinned version, /v/V/) and keeps node state
// only through the node store (package fleet); the medium's file names
// come from package medium.
//
// Every request needs a credential (package trust: a node's token or the
// admin's, HTTP Basic or Bearer), checked in one place, Server.guard, by
// the route's access class: reader (any node or the admin), ownNode (the
// node the path names, or the admin: its state and log; 403 for another
// node), adminOnly (assign). No credential, or a wrong one, is 401 with
// WWW-Authenticate; a server given no Secret refuses everything. The
// server knows a node by its credential: NodeHeader counts only from the
// admin. With ServerOptions.TLS, Serve speaks HTTPS, HTTP/1.1 only (one
// stream a connection, so the stall and connection bounds below hold).
// Clients (Media, Reporter, Fetch, the master's StateSource) take an
// Access: the credential and the TLS settings (trust.ClientTLSConfig, the
// server's pin). FetchOptions.Trust checks a version against the signed
// manifest as the cloner does; netboot finds the cloner's pin and
// credential (clonecd.tls-pin=, clonecd.credential=, or the credential
// initramfs files of package trust); reclone sends each node its
// credential over ssh, which ramclone keeps as CredentialInitrd.
//
// The swarm (package swarm, swarm.go): with ServerOptions.Swarm the
// server answers the swarm's tracker at SwarmPath as a reader route, and
// counts its seeders' bytes (SeedBytes) with its own and the nodes'
// (PeerBytes) apart, each per version (StreamsView.Versions). With MediaOptions.Swarm (fetch and the network cloner unless
// --no-swarm or clonecd.swarm=0) the image Stream reads from the swarm when the server
// offers one and the manifest has the image's btih, with the same sha256
// at its end; when the swarm fails the Stream goes on over HTTP from
// where it is. The swarm's webseed and announces use the media's Access
// (pin, credential).
//
// Admission control queues image streams first in, first out: at most
// MaxStreams GETs of the image are served at once, the others wait in
// line with their connection open (the waiting node shows as "waiting").
// The line is bounded (MaxQueue) and so is each wait (QueueWait): past
// either, the answer is 503 with Retry-After, which Media honours without
// counting it as a failure. A stream whose client stops reading loses its
// slot after StallTimeout (the write deadline is renewed per 1 MiB).
// Every request's headers must arrive within 10 s and its body within
// 60 s; headers are at most 16 KiB, bodies are capped per route (413),
// idle connections close after 2 minutes, and Serve accepts at most
// MaxConns connections at once. Answers that are not a success carry no
// path of the master; a 500 says "see the server's log".
//
// Every answer carries ServerHeader, so a client tells a clonecd 404 ("the
// server has no version 9.9", "node s001 has not reported") from a URL
// that is not a clonecd server (ErrNotServer: "is this a clonecd serve?").
//
// A clone that does not finish never boots as if it were good: ramclone
// sets a one-shot GRUB entry (grub-reboot; --sticky uses
// grub-set-default, so every boot is the cloner until a clone succeeds
// and writes a fresh root whose grubenv is empty). Before the cloner
// makes new filesystems it writes the node's /boot/grub and the cloner
// back with the same UUID and grubenv saved_entry=ramclone (package
// clone, safety.go), so a cut clone boots the cloner again; the normal
// entry becomes the default only once the clone has succeeded. A failed
// network clone stays in the cloner (it tries again, then the rescue
// shell) instead of rebooting. The node's name on the server is
// clonecd.hostname=, else the served nodes table by MAC, else DHCP's host
// name, else node-<mac> (ramclone also records clonecd_hostname in
// grubenv for the entry).
//
// HTTP API (access classes in server.go, checked by Server.guard):
//
//	GET  /FILE, /v/VERSION/FILE     reader    files of the current (or the node's pinned) version, or of VERSION
//	GET  /api/versions              reader    []VersionInfo
//	GET  /api/versions/VERSION      reader    VersionInfo ("current" for the current one)
//	GET  /api/nodes                 reader    []fleet.State
//	GET  /api/nodes/NODE            reader    fleet.State
//	POST /api/nodes/NODE            ownNode   merge a fleet.State (the node's reports; 64 KiB)
//	PUT  /api/nodes/NODE/log        ownNode   the node's clone.log (fleet.Limits.MaxLog)
//	GET  /api/nodes/NODE/log        ownNode   the node's clone.log, as text
//	POST /api/nodes/NODE/assign     adminOnly body "VERSION" (empty clears); a bad version needs ?force=1 (409)
//	GET  /api/stats                 reader    Stats (streams active, peak, queued, served, refused)
//	GET  /api/nodes/NODE/history    reader    []fleet.Run, the node's finished clones and syncs
//	GET  /api/fleet                 reader    Overview: the fleet page's model
//	GET  /api/events                reader    the same, live: server-sent events (events.go)
//	GET  /api/nodeset?set=NODESET   reader    the nodes a nodeset names (the page's filter)
//	GET  /metrics                   reader    Prometheus text format (metrics.go)
//	GET  /, /node/NODE, /ui/FILE    reader    the fleet page, read-only (page.go, web/)
//	GET  /admin/, /admin/node/NODE  adminOnly the same with the actions
//	POST /admin/api/ACTION          adminOnly promote, rollback, bad, good, assign, reclone (actions.go)
//
// The operators' side (ops.go): the fleet page (plain HTML, CSS and
// JavaScript embedded from web/, no build step, nothing from elsewhere),
// its event stream, /metrics and the log. Node changes reach it through
// the node store's OnChange hook and, for other processes' writes, a
// refresh every 2 seconds; version changes through the store's Mark.
// ServerOptions.Logger (log/slog) gets one line per request (method,
// path, node, status, bytes, duration, remote address) and per event:
// node state and step changes, version changes, admission decisions,
// the page's actions and reclones. A curl of / still gets the plain
// "clonecd image server" text; a browser (Accept: text/html) the page.
package netclone
