package image

// IdentityFiles are the files a clone personalises (hostname, machine id,
// host keys, fstab by new UUIDs, network setup, the bootloader installed
// for the new disk, the network cloner it installs beside the system:
// clone's installRamclone). Verify lists differences in them apart, not
// as failures; sync leaves them alone. Patterns are rsync-style, as for
// --exclude.
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
	"/boot/clonecd/***",
	"/" + ClonerBinary,
	"/" + ClonerGrubScript,
	"/" + ClonerGrubDefault,
}

// What a clone installs on the node beside the image's files, for the
// node to reclone itself over the network (clone's installRamclone):
// inside the node's root, and identity files.
const (
	// ClonerBinary is clonecd itself.
	ClonerBinary = "usr/local/sbin/clonecd"
	// ClonerGrubScript makes the ramclone GRUB entry.
	ClonerGrubScript = "etc/grub.d/45_clonecd"
	// ClonerGrubDefault sets GRUB_DEFAULT=saved (for grub-reboot
	// ramclone), a drop-in that grub-mkconfig reads after the image's own
	// /etc/default/grub.
	ClonerGrubDefault = "etc/default/grub.d/clonecd.cfg"
)

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
