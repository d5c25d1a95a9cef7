// Package nodesync updates running nodes in place, moving only what
// changed (clonecd sync). It owns three things: node.files, the per-file
// manifest of an image; the blob store, every file's content by its
// sha256, and its HTTP API; and Sync, the client that brings a node's
// root to a node.files the way SystemImager's si_updateclient does.
//
// # node.files (format 1)
//
// Text, one record a line, fields separated by one space, every line
// ending in a newline. The first line names the format; then one line per
// entry of the image, sorted by path (byte order, so each directory comes
// before what it holds), paths unique; then "end" and the number of
// entries:
//
//	clonecd-files 1
//	d MODE UID GID MTIME PATH                        directory
//	f MODE UID GID MTIME SIZE SHA256 PATH            regular file
//	x NAME VALUE                                     xattr of the f or d line above
//	h TARGET PATH                                    hard link: another name of TARGET
//	l UID GID MTIME TARGET PATH                      symlink
//	c MODE UID GID MTIME MAJOR MINOR PATH            char device (b: block device)
//	p MODE UID GID MTIME PATH                        fifo (s: socket)
//	end COUNT
//
// MODE is four octal digits (permissions with setuid, setgid, sticky; a
// symlink has none), UID, GID, MTIME (seconds), SIZE, MAJOR and MINOR are
// decimals without sign or leading zero, SHA256 is 64 lower case hex
// digits (an empty file has the sha256 of nothing), VALUE is lower case
// hex ("-" when empty). PATH starts with "/" (the root is "/"), has no
// empty, "." or ".." component; PATH, TARGET and NAME write every byte
// outside '!'..'~' and the backslash as \xHH, so a field never holds a
// space. A hard link group is one f line on its first path and h lines
// naming it; xattrs (file capabilities, ACLs) follow their f or d line,
// sorted by name. The parser is strict: a file is accepted only in the
// form the writer gives (Marshal(Parse(b)) == b), each entry inside an
// earlier directory, each h naming an earlier f. The version's signed
// MANIFEST lists node.files by sha256, so node.files, and through it
// every blob, is trusted once MANIFEST's signature is.
//
// Build writes node.files while reading an image (cpio entries and
// clonecd's xattr records); Publish is the store's hook that also fills
// the blob store and writes the file.
//
// # The blob store
//
// DIR/ab/abcd… (the sha256 in hex, the first two digits as a directory)
// holds a content as it is; DIR/ab/abcd….zst holds it as one zstd frame
// (level 3, content size in the header) when that is at least a tenth
// smaller (for the Debian golden root's contents level 3 keeps 0.338 of
// the bytes for 6.3 s of CPU, level 1 0.349 for 3.8 s, level 7 0.331 for
// 13 s). One store serves every version: a content already there is
// not written again. A blob appears under its name only once its bytes
// are on disk (temporary files, one syncfs, renames). Files are 0600,
// directories 0700 (the image holds the node's secrets). node.files is
// stored as a blob too.
//
// # The HTTP API (Store.Handler, mounted at Prefix)
//
//	GET /blobs/SHA256    one blob. ETag "SHA256" (strong), Cache-Control
//	                     immutable, Range, If-None-Match. With
//	                     Accept-Encoding: zstd a blob stored compressed
//	                     comes as it is stored, Content-Encoding: zstd,
//	                     ETag "SHA256.zst". HEAD too. 404 when absent.
//	POST /blobs/         body: sha256s, one a line (at most MaxBatch);
//	                     answer (application/vnd.clonecd.blobs): per sum,
//	                     in order, a line "SHA256 ENC LENGTH" (ENC raw or
//	                     zstd) and LENGTH bytes, or "SHA256 missing 0";
//	                     then "end".
//
// GETs let any HTTP cache sit between nodes and the server; a batch
// costs one request for thousands of small files. The server does no
// work per blob but reading a file. Sync checks each content against
// its sha256 as it arrives: in memory up to 4 MiB, before anything is
// written; a larger one in a temporary file beside its target, removed
// on a mismatch. Either way a wrong byte never reaches a file of the
// node. A broken or stalled transfer is taken up again where it broke
// (HTTPSource.Retries, Stall).
//
// # Sync
//
// Sync walks the node's root and compares it with node.files: size,
// time, mode, owner and xattrs first; the content's sha256 where the size
// is the same but something else differs (every file with Checksum). It
// copies contents the node already has (a file moved or duplicated, found
// by size then sha256) and fetches the rest, each content once, from a
// Source. The order of the changes:
//
//  1. directories: created, or their owner, mode and xattrs set;
//  2. regular files: each new file is written beside its target (owner,
//     mode, xattrs after chown, time set on it; a few at a time), the
//     filesystem synced once per batch (Options.Batch), then renamed
//     over the target, so a running program sees the old file or the new
//     one, and after a crash each file is one or the other too;
//  3. hard links, symlinks, devices, fifos: made beside, renamed over;
//  4. metadata of the entries whose content is right (chown, then chmod,
//     then xattrs: chown clears setuid bits and file capabilities);
//  5. removal of what the image no longer has, children first (not with
//     NoDelete; not at all after a failure, as rsync does after an I/O
//     error);
//  6. /etc/clonecd-version (Options.Version), only when all went well;
//  7. directory times, deepest first; then one syncfs.
//
// A failure leaves the entry as it was and is listed in the report (the
// error is an *IncompleteError); the next sync finishes the job.
// Temporary files an interrupted sync left (".~clonecd.*") are removed.
// DryRun stops after the comparison: the report lists what would change
// and nothing is written.
//
// Sync never touches (neither changes, adds nor removes): the identity
// files (image.IdentityFiles: hostname, machine-id, ssh host keys, fstab,
// network setup, /boot/grub, the network cloner the clone installed:
// /boot/clonecd, /usr/local/sbin/clonecd, its GRUB entry and
// GRUB_DEFAULT=saved drop-in, ...; /etc/clonecd-version is set as said
// above), the trees pack leaves out (image.DefaultExcludes: /proc, /sys,
// /dev, /run, /tmp, package caches), NodeState (/data, logs, spools,
// leases), what the node lists in its own /etc/clonecd/sync.exclude and
// Options.Exclude, and every mounted filesystem below the root but
// Options.CrossMounts (read from /proc/self/mountinfo and by device
// number, like rsync -x). When the root is the running system's, the
// running kernel's modules and its files in /boot stay too, even when
// the image no longer has them (the node loads modules until it reboots,
// and GRUB keeps a fallback entry); a sync after it booted another
// kernel removes them. The node's root is opened as an os.Root and
// every path below it is then resolved one component at a time with
// O_NOFOLLOW: no symlink in the node's tree, absolute or relative, is
// followed, so nothing sync writes lands anywhere but at its own path.
//
// The report says whether /boot, the kernel, its modules or GRUB's
// settings changed (Boot: the caller reruns update-grub) and whether
// GRUB's own files did (Grub: grub-install); the caller decides, with
// --no-bootloader, not to.
package nodesync
