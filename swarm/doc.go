// Package swarm shares a version's image between the nodes that clone it
// (BitTorrent, anacrolix/torrent v1.59.1 embedded), with the server's
// Range-capable HTTP as the first seed (a BEP 19 webseed).
//
// What it owns:
//
//   - the image's torrent (MakeTorrent, ParseTorrent): BitTorrent v1, one
//     file, the piece length chosen for the image's size (PieceLength).
//     Publish writes it beside the image (medium.Torrent) and lists its
//     infohash in the signed manifest (medium.Manifest.BTIH): the pieces'
//     hashes are SHA-1, so the infohash is trusted only because the master
//     signs it. ParseTorrent refuses a torrent whose infohash is not the
//     trusted one.
//   - the node's side (Open): the image streams in order through Node.Reader
//     into the unpacker, as from HTTP; every piece is checked against its
//     hash before the reader hands it out; a node that finished keeps
//     seeding (Node.Seed) until told to stop.
//   - with Options.Transport, a node announces itself to the Tracker with
//     the caller's HTTP client (announce.go: the server's pin and the
//     node's credential), not the library's tracker client, which does
//     not check certificates; the webseed requests use it too.
//   - the master's side: Tracker, an http.Handler that answers BitTorrent
//     HTTP announces (BEP 3, compact peer lists of BEP 23) with the peers
//     of the same infohash, and Seeder, a peer that serves the published
//     image file read-only.
//
// Everything runs on the LAN only: no DHT, no public tracker (a torrent's
// own announce list is ignored: only the tracker URL the caller gives is
// used), no UPnP/NAT-PMP, no uTP (TCP only), no WebRTC; PEX is optional.
//
// The library's upload path stalls for good when a peer has more requests
// outstanding than MaxAllocPeerRequestDataPerConn allows (see allocLimit
// in client.go and docs/swarm.md): every client made here sets the
// limit so that a peer's whole request queue fits.
package swarm
