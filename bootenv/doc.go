// Package bootenv is the cloner's world as PID 1 inside the initramfs:
// the kernel command line, base mounts, driver coldplug by modalias, finding
// and mounting the clone media, the console log, beeping, the rescue shell,
// eject and power off. Package clone runs its steps on top of it.
package bootenv
