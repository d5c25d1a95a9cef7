// Package medium owns the clone medium: the names of the files a version
// is made of (on the CD, in the image store's version directory and on
// the server, the same relative names), reading their sha256 files, and
// the version's manifest, the one file the master signs.
//
// A medium (CD root, versions/V/, or the server's /v/V/) holds:
//
//	CLONE_CD_VERSION        the version, MAJOR.MINOR
//	node.cpio.gz            the image (or node.cpio.zst), with IMAGE.sha256 beside it
//	node.sfdisk             the layout
//	ks.cfg                  kickstart %post scripts (optional)
//	nodes                   the identity table, MAC HOSTNAME [ADDR/PREFIX [GW]] (optional)
//	clonecd.conf            KEY=VALUE settings for the cloner: server=URL, tls-pin=PIN (optional)
//	isolinux/vmlinuz        the cloner's kernel (optional in a store)
//	isolinux/initrd.img     the cloner's initramfs (optional in a store)
//	isolinux/credentials.img  a CD's node tokens, an extra initramfs (never in a store, never served)
//	node.files              every entry of the image, for clonecd sync (optional)
//	node.torrent            the image's BitTorrent metainfo, for the swarm (optional)
//	MANIFEST                the version and the sha256 of every file above
//	MANIFEST.minisig        MANIFEST's minisign signature (absent: unsigned)
//
// The manifest format (version 1) is line based, one record a line, fields
// separated by one space, every line ending in a newline:
//
//	clonecd-manifest 1
//	version 1.20
//	date 2026-12-01T19:11:02Z
//	file 5f0c…(64 hex) 262914567 node.cpio.gz
//	file 9a41…(64 hex) 345 node.sfdisk
//	btih 1d3b…(40 hex) node.cpio.gz
//
// The first line is the format's name and version; then version and date
// once each; then a file record per file (sha256, size in bytes, name),
// sorted by name, names unique; then btih records giving the BitTorrent
// v1 infohash of a listed file (the swarm's pieces are SHA-1; the
// infohash is trusted because the signed manifest names it). Names are
// relative slash-separated paths of [A-Za-z0-9._+-] components, none of
// them "." or "..". Anything else is an error naming the line. Signing
// MANIFEST (minisign, ed25519) signs every file of the version; an admin
// checks it by hand with
//
//	minisign -Vm MANIFEST -p clonecd.pub && sha256sum -c <(awk '$1=="file"{print $2"  "$4}' MANIFEST)
package medium
