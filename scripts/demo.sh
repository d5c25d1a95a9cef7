#!/bin/sh
# The whole clonecd story for a newcomer (make demo): a golden Debian root
# -> node.cpio.gz -> a layout -> clonecd.iso -> QEMU clones a blank 4 GiB
# disk from the ISO -> the clone boots to its login prompt. Files stay in
# build/demo/. Usage: sh scripts/demo.sh BIN GOLDEN
set -eu
BIN=${1:?usage: demo.sh CLONECD-BINARY GOLDEN-ROOT}
GOLDEN=${2:?usage: demo.sh CLONECD-BINARY GOLDEN-ROOT}
BIN=$(readlink -f "$BIN")
DEMO=build/demo
HOST=demo01
VERSION=$(cat CLONE_CD_VERSION 2>/dev/null || echo 1.0)
QEMU="qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 2 -device virtio-rng-pci -display none -vga none -monitor none -no-reboot"
mkdir -p "$DEMO"
T0=$(date +%s)
step() { printf '\n== [%s] %s (%ss so far)\n' "$1" "$2" $(( $(date +%s) - T0 )); }

step 1/6 "pack the golden root $GOLDEN into $DEMO/node.cpio.gz"
"$BIN" pack -o "$DEMO/node.cpio.gz" "$GOLDEN"
[ -f "$DEMO/node.cpio.gz.sha256" ] || (cd "$DEMO" && sha256sum node.cpio.gz > node.cpio.gz.sha256)
ls -l "$DEMO/node.cpio.gz"

step 2/6 "write the partition layout $DEMO/node.sfdisk (sfdisk dump + clonecd lines)"
cat > "$DEMO/node.sfdisk" <<'L'
label: dos
unit: sectors

/dev/sda1 : start=2048, size=524288, type=82
/dev/sda2 : start=526336, size=5242880, type=83, bootable
/dev/sda3 : start=5769216, type=83
# clonecd: part=1 fs=swap label=swap
# clonecd: part=2 fs=ext4 mount=/ label=root
# clonecd: part=3 fs=ext4 mount=/data label=data preserve=yes
L
cat "$DEMO/node.sfdisk"

step 3/6 "build the bootable clone CD $DEMO/clonecd.iso (kernel and modules of the golden root)"
"$BIN" build --root "$GOLDEN" --image "$DEMO/node.cpio.gz" --layout "$DEMO/node.sfdisk" \
	--version "$VERSION" --append "clonecd.hostname=$HOST" -o "$DEMO/clonecd.iso"

step 4/6 "clone a blank 4 GiB disk in QEMU from the CD (headless; console in $DEMO/clone.console.log)"
rm -f "$DEMO/$HOST.img"
truncate -s 4G "$DEMO/$HOST.img"
echo "QEMU boots the CD; clonecd runs its steps and logs each one:"
# shellcheck disable=SC2086
$QEMU -drive "file=$DEMO/clonecd.iso,media=cdrom,if=ide,index=2,readonly=on,format=raw" \
	-drive "file=$DEMO/$HOST.img,format=raw,if=virtio" -boot d -nic user,model=e1000 -serial stdio </dev/null \
	| tee "$DEMO/clone.console.log" | tr -d '\r' | grep --line-buffered -E '^clonecd: (\[|step|unpack: [0-9]|clone done|FAILED|  \|)' || true
grep -q 'clonecd: clone done' "$DEMO/clone.console.log" || {
	echo "demo: the clone did not finish; see $DEMO/clone.console.log" >&2; exit 1; }
echo "(the CD tray opened, the cloner saw the CD gone and powered off, as on the Medusa page)"

step 5/6 "boot the clone from its disk alone (console in $DEMO/boot.console.log)"
rm -f "$DEMO/boot.console.log"
# shellcheck disable=SC2086
$QEMU -drive "file=$DEMO/$HOST.img,format=raw,if=virtio" -boot c -nic user,model=e1000 \
	-serial "file:$DEMO/boot.console.log" </dev/null &
QPID=$!
ok=""
i=0
while [ $i -lt 600 ]; do
	if grep -q "$HOST login:" "$DEMO/boot.console.log" 2>/dev/null; then ok=1; break; fi
	kill -0 $QPID 2>/dev/null || break
	sleep 1; i=$((i + 1))
done
kill $QPID 2>/dev/null || true
wait $QPID 2>/dev/null || true
[ -n "$ok" ] || { echo "demo: the clone did not reach login:; see $DEMO/boot.console.log" >&2; exit 1; }
tr -d '\r' < "$DEMO/boot.console.log" | grep -E "Debian GNU/Linux|$HOST login:" | tail -n 2
echo "booted to '$HOST login:' in ${i}s"

step 6/6 "summary"
STEPS=$(tr -d '\r' < "$DEMO/clone.console.log" | sed -n 's/^clonecd: step \([a-z]*\) done in \([0-9.]*\)s.*/\1 \2s/p' | tr '\n' ',' | sed 's/,$//; s/,/, /g')
cat <<S
What happened:
  - the golden root $GOLDEN was packed into node.cpio.gz (cpio newc, gzip, sha256 beside it)
  - a layout (swap, / and a preserved /data) and CLONE_CD_VERSION $VERSION went onto
    a hybrid BIOS/UEFI ISO whose initramfs runs clonecd itself as /init
  - QEMU booted the ISO with a blank disk: clonecd partitioned, formatted, unpacked,
    gave the node its own identity (hostname $HOST, ssh host keys, machine-id,
    fstab by UUID), installed GRUB, ejected the CD and powered off
    (steps: $STEPS)
  - the disk alone booted Debian to '$HOST login:' (root password: clonecd)
Files in $DEMO/:
  node.cpio.gz(.sha256)  the image        node.sfdisk    the layout
  clonecd.iso            the clone CD     $HOST.img      the cloned disk
  clone.console.log      the clone's console    boot.console.log  the clone's first boot
Try it yourself:
  $QEMU -drive file=$DEMO/$HOST.img,format=raw,if=virtio -nic user,model=e1000 -serial stdio
  clonecd clone --media DIR --target disk.img   # the same steps on a loop device, no QEMU
Total: $(( $(date +%s) - T0 ))s
S
