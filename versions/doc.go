// Package versions manages CLONE_CD_VERSION and the image store that
// `clonecd serve` serves: published versions, current, rollback, prune.
//
// A version is MAJOR.MINOR (1.19); bumping increments MINOR (1.9 → 1.10).
// The store (Open; default /root/clone_image or $CLONECD_STORE) is:
//
//	DIR/versions/V/{node.cpio.gz,node.cpio.gz.sha256,node.sfdisk,CLONE_CD_VERSION,meta.json[,nodes,ks.cfg,clonecd.conf]}
//	DIR/current -> versions/V                (switched by rename: atomic)
//	DIR/{node.cpio.gz,node.cpio.gz.sha256,node.sfdisk,CLONE_CD_VERSION} -> current/...
//	DIR/history                               (promotions, bad marks, prunes)
//	DIR/nodes/NODE/state.json                 (the server's; "version" and "state" keys)
//	DIR/nodes/NODE/assign                     (a canary pin; Prune keeps that version)
//
// The flat aliases keep the Medusa path /root/clone_image/node.cpio.gz
// working; a Medusa-style directory with a plain node.cpio.gz is adopted as
// a version by Open. Every change holds an flock on DIR/.lock; a version
// directory is built under a temporary name and renamed into place, so it
// is complete or absent. Versions are never overwritten; only Prune
// deletes. Publish makes the new version current (the Medusa workflow)
// unless PublishOptions.NoPromote (canaries); Rollback marks the current
// version bad and returns to the last good one that was current before.
package versions
