#!/bin/sh
# Builds (once) the test nodes' root at $2 (default $1-node) from the golden
# root $1: a copy without what a QEMU node never uses (drivers for GPUs,
# media, wireless and other vendors' NICs, sound, translations, manuals,
# apt's lists), so that each clone under TCG unpacks about 40% fewer
# bytes. The kernel, its initrd and the disk, NIC, filesystem and
# network modules are the golden root's. Prints the root's path.
set -eu
golden=${1:?usage: node-root.sh GOLDEN [DIR]}
dir=${2:-$golden-node}
stamp="$dir.ok-v1"
if [ -f "$stamp" ] && [ "$stamp" -nt "$golden.ok-v1" ]; then echo "$dir"; exit 0; fi
rm -rf "$dir.tmp" "$dir"
cp -a "$golden" "$dir.tmp"
r="$dir.tmp"
for k in "$r"/usr/lib/modules/*/kernel; do
	rm -rf "$k/sound" "$k"/drivers/gpu "$k"/drivers/media "$k"/drivers/infiniband \
		"$k"/drivers/iio "$k"/drivers/staging "$k"/drivers/comedi "$k"/drivers/isdn \
		"$k"/drivers/bluetooth "$k"/drivers/net/wireless
	for e in "$k"/drivers/net/ethernet/*; do
		[ "$(basename "$e")" = intel ] || rm -rf "$e"
	done
	v=$(basename "$(dirname "$k")")
	depmod -b "$r" "$v"
done
rm -rf "$r"/usr/share/locale/* "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/var/lib/apt/lists/*
mv "$r" "$dir"
touch "$stamp"
echo "$dir"
