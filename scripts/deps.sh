#!/bin/sh
# Installs what clonecd's build, tests and demo need on Debian 12 (idempotent).
set -eu
PKGS="qemu-system-x86 qemu-utils linux-image-amd64 isolinux syslinux-common
syslinux-utils extlinux fdisk gdisk e2fsprogs dosfstools mtools xorriso ovmf
grub-pc-bin grub-efi-amd64-bin grub-common cpio pigz debootstrap
openssh-server openssh-client busybox-static xfsprogs kmod iproute2 curl
ca-certificates util-linux
minisign rsync nginx-light dnsmasq-base ipxe shim-signed grub-efi-amd64-signed
libcap2-bin zstd chromium lintian systemd iptables ethtool tcpdump dmsetup
gcc libc6-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
command -v go >/dev/null || { echo "deps: Go 1.26 is required (https://go.dev/dl)" >&2; exit 1; }
# staticcheck for `make lint`
if ! command -v staticcheck >/dev/null && [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
	go install honnef.co/go/tools/cmd/staticcheck@latest
fi
