// Package versions manages CLONE_CD_VERSION and the image store that
// `clonecd serve` serves: published versions, current, rollback, prune.
// It is the one owner of the store's layout; the server, status and
// reclone read versions and node state through it (Store.Get,
// Store.Current, Entry.Path, Store.Nodes).
//
// A version is MAJOR.MINOR (1.19); bumping increments MINOR (1.9 → 1.10).
// The store (Open; default /root/clone_image or $CLONECD_STORE) is:
//
//	DIR/versions/V/          one version, the medium's names (package medium):
//	    CLONE_CD_VERSION, node.cpio.gz (or node.cpio.zst: one image,
//	    named by its compression) with its .sha256, node.sfdisk,
//	    [ks.cfg, nodes, clonecd.conf, isolinux/vmlinuz, isolinux/initrd.img],
//	    node.files               every entry of the image (package nodesync; written by Publish)
//	    MANIFEST                 every file above with its sha256 and size
//	    MANIFEST.minisig         its signature (publish --key; absent: unsigned)
//	    meta.json                the store's record: date, note, bad mark
//	DIR/current -> versions/V  switched by rename
//	DIR/{node.cpio.gz,node.cpio.gz.sha256,node.sfdisk,CLONE_CD_VERSION} -> current/...
//	                           (node.cpio.zst and its .sha256 when current's image is zstd)
//	DIR/blobs/                 every file's content of every image by its sha256 (package nodesync: clonecd sync)
//	DIR/history                one line per promotion, bad mark, prune
//	DIR/nodes/                 the node store (package fleet): state, logs, canary pins
//	DIR/.lock                  flock held by every change
//	DIR/auth.secret            the server's secret: every token derives from it (0600)
//	DIR/tls.pem                the server's self-signed certificate and key (0600)
//
// The flat aliases keep the Medusa path /root/clone_image/node.cpio.gz
// working. A version directory is built under a temporary name
// (versions/.publish-*), synced, and renamed into place, so it is
// complete or absent; every file and rename is fsynced with its directory
// (internal/atomicfile); a signed version's MANIFEST.minisig is written
// there too, so a version is never visible half signed. Versions are never overwritten; only Prune
// deletes, and it keeps the current version, versions pinned for a node
// and versions a node is cloning. A store written by older clonecd (no
// MANIFEST or meta.json, the cloner's kernel and initrd as flat vmlinuz
// and initrd.img) is read as it is.
//
// Reading never writes: List, Get, Current and the server create nothing
// and move nothing. A Medusa-style directory (a plain node.cpio.gz and
// CLONE_CD_VERSION, no DIR/current) reads as one current version in
// place, so it can be listed and served as it is. Publish into it adopts
// it first (its files move, as hard links, into versions/V and the flat
// names become the aliases), and so does Adopt, which does only that;
// Promote and the bad marks refuse to change its one version until then.
//
// Publish reads the whole image first (image.CheckFile: decompression
// checksums, the cpio archive to its trailer) and checks IMAGE.sha256
// when it exists, before it writes anything. A new version becomes
// current (the Medusa workflow) unless PublishOptions.NoPromote (a
// canary); one lower than the current version is refused unless Force.
// Rollback marks the current version bad and returns to the last good
// one that was current before.
package versions
