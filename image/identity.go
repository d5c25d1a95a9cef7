package image

// IdentityFiles are the files a clone personalises (hostname, machine id,
// host keys, fstab by new UUIDs, network setup, the bootloader installed
// for the new disk). Verify lists differences in them apart, not as
// failures. Patterns are rsync-style, as for --exclude.
var IdentityFiles = []string{
	"/etc/hostname",
	"/etc/machine-id",
	"/var/lib/dbus/machine-id",
	"/etc/ssh/ssh_host_*",
	"/etc/fstab",
	"/etc/hosts",
	"/etc/clonecd-version",
	"/etc/mailname",
	"/etc/resolv.conf",
	"/etc/adjtime",
	"/etc/network/interfaces",
	"/etc/network/interfaces.d/*",
	"/etc/systemd/network/*",
	"/etc/udev/rules.d/70-persistent-net.rules",
	"/var/lib/systemd/random-seed",
	"/boot/grub/***",
	"/boot/efi/***",
}

var identityFilter = mustFilter(IdentityFiles)

func mustFilter(patterns []string) *Filter {
	f, err := NewFilter(true, patterns, nil)
	if err != nil {
		panic(err)
	}
	return f
}

// IsIdentity reports whether path (absolute inside the node, "/etc/hosts")
// is one of the IdentityFiles.
func IsIdentity(path string) bool {
	return identityFilter.Excluded(path, false) || identityFilter.Excluded(path, true)
}
