// Command clonecd packs a golden node, builds a clone CD and clones nodes.
// It is one static binary: as PID 1 in its initramfs it is the cloner, as
// /sbin/modprobe it serves the kernel's module requests.
package main
