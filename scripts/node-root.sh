#!/bin/sh
# Builds (once) the test nodes' root at $2 (default $1-node) from the golden
# root $1: a copy with only the kernel modules a QEMU node loads (disk, CD,
# NIC and filesystem drivers and what they depend on), without
# translations, manuals and apt's lists, so that each clone under TCG
# unpacks about 60% fewer bytes. The kernel and its initrd are the golden
# root's. Prints the root's path.
set -eu
golden=${1:?usage: node-root.sh GOLDEN [DIR]}
dir=${2:-$golden-node}
stamp="$dir.ok-v2"
if [ -f "$stamp" ] && [ "$stamp" -nt "$golden.ok-v1" ]; then echo "$dir"; exit 0; fi
rm -rf "$dir.tmp" "$dir" "$dir".ok-*
cp -a "$golden" "$dir.tmp"
r="$dir.tmp"
# what QEMU's machines need: IDE, AHCI, virtio, NVMe, CD; e1000, virtio-net,
# rtl8139; ext4, vfat, isofs; and what systemd loads at boot
mods="ata_piix ahci sd_mod sr_mod virtio_blk virtio_scsi virtio_pci virtio_net virtio_console virtio_rng
nvme e1000 e1000e 8139cp 8139too ext4 vfat nls_cp437 nls_ascii nls_utf8 isofs crc32c_generic efivarfs
loop evdev autofs4 fuse psmouse serio_raw"
for m in "$r"/usr/lib/modules/*; do
	v=$(basename "$m")
	keep="$r/keep.txt"
	for mod in $mods; do
		modprobe -d "$r" -S "$v" --show-depends "$mod" 2>/dev/null | sed -n 's/^insmod \([^ ]*\).*/\1/p'
	done | sed "s|^$r/lib/|$r/usr/lib/|" | sort -u >"$keep"
	[ -s "$keep" ] || { echo "node-root: no modules resolved in $m" >&2; exit 1; }
	find "$m/kernel" -name '*.ko*' | sort | comm -23 - "$keep" | xargs -r rm -f
	find "$m/kernel" -type d -empty -delete
	rm -f "$keep"
	depmod -b "$r" "$v"
done
rm -rf "$r"/usr/share/locale/* "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/var/lib/apt/lists/*
mv "$r" "$dir"
touch "$stamp"
echo "$dir"
