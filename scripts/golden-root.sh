#!/bin/sh
# Builds (once) and caches a real Debian bookworm golden node root at $1
# (default /var/cache/clonecd/golden-bookworm). The mirror comes from this
# machine's apt sources. Prints the root's path.
set -eu
dir=${1:-${GOLDEN_DIR:-/var/cache/clonecd/golden-bookworm}}
stamp="$dir.ok-v1"
if [ -f "$stamp" ]; then echo "$dir"; exit 0; fi
mirror=$(sh "$(dirname "$0")/mirror.sh")
echo "golden: debootstrap bookworm from $mirror into $dir (about 2 minutes)" >&2
rm -rf "$dir.tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase \
	--include=linux-image-amd64,systemd-sysv,openssh-server,grub-pc,grub-efi-amd64-bin,e2fsprogs,iproute2,kmod,udev,ifupdown,isc-dhcp-client,procps,libcap2-bin,iputils-ping,extlinux \
	bookworm "$dir.tmp" "$mirror" >&2
r="$dir.tmp"
rm -f "$r"/var/cache/apt/archives/*.deb
# Serial console for headless nodes and tests.
cat >"$r/etc/default/grub" <<'G'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
G
# DHCP on the first NIC, whatever its name.
cat >"$r/etc/network/interfaces" <<'N'
auto lo
iface lo inet loopback
allow-hotplug ens3
iface ens3 inet dhcp
allow-hotplug ens4
iface ens4 inet dhcp
allow-hotplug enp0s3
iface enp0s3 inet dhcp
allow-hotplug eth0
iface eth0 inet dhcp
N
echo "golden" >"$r/etc/hostname"
echo "root:clonecd" | chroot "$r" chpasswd
# A login prompt on the serial console shows the node reached multi-user.
chroot "$r" systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1 || true
# /data is the preserved partition of the default layout.
mkdir -p "$r/data"
rm -rf "$dir"
mv "$r" "$dir"
touch "$stamp"
echo "$dir"
