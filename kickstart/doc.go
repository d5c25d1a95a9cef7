// Package kickstart owns reading Red Hat kickstart files (ks.cfg): it
// parses them and turns what clonecd can honour into a layout, network
// settings and %post scripts. A file with bytes no text has (an image or
// archive given by mistake) is refused as ErrBinary, naming the line.
//
// Parse follows pykickstart: commands are split with POSIX shell rules
// (quotes, backslashes, # comments even inside a word), backslash-newline
// continues a command line, %include (and %ksappend) read a file relative
// to the including one (cycles are errors; a missing /tmp/... include is
// the "%pre writes it" pattern and only a warning), and the sections %pre,
// %pre-install, %post, %packages, %addon, %anaconda, %onerror and
// %traceback end at %end or, RHEL 5 style, at the next section header or
// the end of the file. Script bodies are kept verbatim.
//
// Commands clonecd uses: part/partition, clearpart, zerombr, ignoredisk,
// reqpart, autopart, bootloader (for the layout, see
// Kickstart.LayoutFor), network, rootpw, timezone. Installer and system
// commands (lang, keyboard, url, user, services, selinux, ...) configured
// the golden node, whose effect the clones get from node.cpio.gz: they are
// kept in Commands without a warning. Unknown commands and options are
// Warnings with file and line. Storage clonecd cannot make (logvol,
// volgroup, raid, btrfs, encrypted or non-plain autopart, raid./pv.
// members) makes Layout fail naming every such line; commands about other
// disks (iscsi, fcoe, zfcp, multipath, ...) are warnings.
//
// Script.Run runs a %post in a cloned root the way anaconda does (chroot
// unless --nochroot, INSTALL_ROOT for --nochroot, --log appended).
package kickstart
