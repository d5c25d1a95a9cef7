package initramfs

import (
	"github.com/clonecd/clonecd/progress"
)

// Options says what goes into the initramfs. The zero value builds the
// default clone initramfs for the newest kernel whose modules are found.
type Options struct {
	// Clonecd is the static clonecd binary that becomes /init (default:
	// the running executable).
	Clonecd string
	// KernelVersion picks the module tree ("6.1.0-50-amd64"). Default: the
	// newest tree under Golden's /lib/modules, else the build host's
	// (uname -r first when present).
	KernelVersion string
	// Golden is the root whose /lib/modules/KernelVersion and /lib/firmware
	// are preferred (the golden node's root); "" means the build host.
	Golden string
	// Modules is the module tree (/lib/modules/VERSION). Default:
	// Golden/lib/modules/KernelVersion if present, else the host's.
	Modules string
	// Firmware is the firmware tree. Default: lib/firmware of the root that
	// supplied Modules.
	Firmware string
	// Root is where programs and their shared libraries come from
	// (default "/").
	Root string
	// Programs are helper programs (names looked up in Root's sbin/bin
	// dirs, or absolute paths inside Root). nil means DefaultPrograms,
	// of which the missing ones are skipped; programs named explicitly
	// must exist.
	Programs []string
	// Busybox is a static busybox for the rescue shell and its applets.
	// Default: Root's /bin/busybox if static, else the host's; "none"
	// leaves it out (clonecd's embedded shell is used).
	Busybox string
	// NoModules leaves out kernel modules (kernel with built-in drivers).
	NoModules bool
	// AddModules are extra modules: names, aliases (fs-btrfs) or globs on
	// names ("mlx*") or paths under the tree ("kernel/drivers/gpu/*").
	AddModules []string
	// OmitModules are left out, with whatever needs them; same syntax. A
	// module added by its name or an alias stays in.
	OmitModules []string
	// NoFirmware leaves out firmware.
	NoFirmware bool
	// ExtraFiles maps destinations in the initramfs to source files or
	// directories on this machine; they win over everything else.
	ExtraFiles map[string]string
	// Level is the gzip level, MinLevel to MaxLevel; 0 means 6 (level 9
	// takes ten times as long for 1% less). Others are refused.
	Level int
	// Progress, if set, counts bytes and files as they are written.
	Progress *progress.Meter
}

// Summary describes a built initramfs.
type Summary struct {
	Compressed    int64 // bytes of gzip output
	Uncompressed  int64 // bytes of the cpio stream
	Files         int   // archive entries
	KernelVersion string
	ModulesDir    string   // "" when NoModules
	Modules       int      // kernel modules included
	Firmware      int      // firmware files included
	FirmwareMiss  []string // firmware named by modules but not found
	Programs      []string // helper programs included (names)
	Missing       []string // default programs not found in Root
	Busybox       string   // busybox used ("" for none)
}

// DefaultPrograms are the helpers the clone steps and the rescue shell
// use; missing ones are skipped.
var DefaultPrograms = []string{
	"mke2fs", "mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "e2fsck", "fsck.ext2", "fsck.ext3", "fsck.ext4",
	"tune2fs", "e2label", "resize2fs", "dumpe2fs", "debugfs",
	"mkfs.xfs", "xfs_repair", "xfs_admin", "xfs_db",
	"mkfs.vfat", "mkfs.fat", "fsck.vfat", "fsck.fat", "fatlabel",
	"mkswap", "swaplabel", "blkid", "wipefs", "blockdev", "sfdisk", "partx", "hdparm",
}

// DefaultModuleDirs are the parts of a module tree included by default:
// storage, USB host and storage, network, the clone's filesystems and
// what they need, and input for the rescue shell's keyboard.
var DefaultModuleDirs = []string{
	"kernel/drivers/ata/", "kernel/drivers/scsi/", "kernel/drivers/block/", "kernel/drivers/nvme/",
	"kernel/drivers/md/", "kernel/drivers/message/fusion/", "kernel/drivers/mmc/",
	"kernel/drivers/virtio/", "kernel/drivers/cdrom/", "kernel/drivers/hv/",
	"kernel/drivers/usb/storage/", "kernel/drivers/usb/host/", "kernel/drivers/usb/core/",
	"kernel/drivers/net/ethernet/", "kernel/drivers/net/virtio_net", "kernel/drivers/net/vmxnet3/",
	"kernel/drivers/net/hyperv/", "kernel/drivers/net/mii", "kernel/drivers/net/phy/", "kernel/net/packet/",
	"kernel/drivers/hid/usbhid/", "kernel/drivers/hid/hid-generic", "kernel/drivers/hid/hid.",
	"kernel/drivers/input/keyboard/atkbd", "kernel/drivers/input/serio/",
	"kernel/fs/ext4/", "kernel/fs/jbd2/", "kernel/fs/mbcache", "kernel/fs/xfs/", "kernel/fs/fat/",
	"kernel/fs/isofs/", "kernel/fs/efivarfs/", "kernel/fs/nls/nls_cp437", "kernel/fs/nls/nls_iso8859-1",
	"kernel/fs/nls/nls_utf8", "kernel/fs/nls/nls_ascii",
	"kernel/crypto/crc32c", "kernel/arch/x86/crypto/crc32c", "kernel/lib/libcrc32c",
	"kernel/drivers/firmware/qemu_fw_cfg",
}

// DefaultExclude are parts of DefaultModuleDirs left out unless added:
// Fibre Channel and iSCSI offload HBAs, storage targets and network block
// devices, which a node does not clone onto and which pull in large
// dependencies (InfiniBand, Ceph, SCSI target).
var DefaultExclude = []string{
	"kernel/drivers/scsi/lpfc/", "kernel/drivers/scsi/qla2xxx/", "kernel/drivers/scsi/qla4xxx/",
	"kernel/drivers/scsi/bfa/", "kernel/drivers/scsi/bnx2fc/", "kernel/drivers/scsi/bnx2i/",
	"kernel/drivers/scsi/be2iscsi/", "kernel/drivers/scsi/cxgbi/", "kernel/drivers/scsi/fcoe/",
	"kernel/drivers/scsi/qedf/", "kernel/drivers/scsi/qedi/", "kernel/drivers/scsi/csiostor/",
	"kernel/drivers/scsi/fnic/", "kernel/drivers/scsi/snic/", "kernel/drivers/scsi/libfc/",
	"kernel/drivers/scsi/elx/", "kernel/drivers/scsi/ibmvscsi_tgt/",
	"kernel/drivers/block/drbd/", "kernel/drivers/block/rbd", "kernel/drivers/block/rnbd/",
	"kernel/drivers/nvme/target/", "kernel/drivers/md/bcache/",
}
