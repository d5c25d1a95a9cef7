// Package netboot is the network cloner's start (clonecd.mode=net): it
// brings up the network (DHCP on the first link that gets a lease, or the
// kernel's ip= argument), names the node, and hands package clone the
// server's image as media (netclone.Media: streamed, resumable, sha256
// checked), a netclone.Reporter and the host name DHCP gave. The CLI
// passes Open to the cloner as clone.BootOptions.NetMedia.
package netboot
