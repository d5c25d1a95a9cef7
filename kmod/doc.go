// Package kmod loads Linux kernel modules without udev: modalias matching
// against modules.alias, modules.dep closures, softdeps, and a coldplug
// loop; it also answers the kernel's /sbin/modprobe requests.
package kmod
