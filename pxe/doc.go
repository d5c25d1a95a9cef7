// Package pxe boots bare nodes into the cloner over the network: the DHCP
// side (proxyDHCP beside the site's DHCP server, or a full DHCP server with
// an address range), the TFTP side (iPXE, and Debian's signed shim and
// GRUB for Secure Boot), the stage-2 HTTP handler (an iPXE script or a
// GRUB configuration per node) and the boot policy (who gets the cloner,
// who boots its own disk). `clonecd serve --pxe` runs it beside the
// image server; this package owns no store layout: the caller passes the
// directory of boot files (BootDir), how to open a version's medium
// (Media) and the Policy.
//
// The chain, by what the client says in its DHCP request (option 93
// client arch, option 60 vendor class, option 77 user class):
//
//	BIOS PXE ROM (PXEClient, arch 0)      TFTP undionly.kpxe  -> iPXE
//	UEFI PXE (PXEClient, arch 7 or 9)     TFTP snponly.efi    -> iPXE
//	UEFI PXE, Secure Boot chain           TFTP shimx64.efi    -> grubx64.efi (Debian's signed grubnetx64)
//	                                      -> TFTP grub/grub.cfg -> grub/node/MAC -> kernel, initrd over TFTP
//	UEFI HTTP boot (HTTPClient, arch 16)  HTTP  snponly.efi   -> iPXE
//	iPXE (user class iPXE, any arch)      HTTP  /pxe/MAC.ipxe -> kernel, initrd over HTTP
//
// Stage 2 (the iPXE script or GRUB configuration) boots the version's
// cloner kernel and initramfs (medium.Kernel, medium.Initrd: small, the
// image streams after boot) with clonecd.mode=net, clonecd.server=,
// clonecd.hostname= when the policy knows the node's name, and
// console=ttyS0,115200 so that a headless cloner's log reaches the serial
// console.
//
// Local boot. PXE is usually first in the boot order, so every boot the
// master did not ask for must end on the node's own disk:
//
//   - BIOS: iPXE gets a script that runs `sanboot --no-describe --drive
//     0x80` (the first hard disk), falling back to `exit`.
//   - UEFI: decided at DHCP time. The answer carries no boot file (in
//     proxy mode: no answer at all), so the firmware gives up on the
//     network and boots its next option, the disk. An EFI program that
//     exits with success drops OVMF into its boot menu, and Debian's
//     ipxe.efi hangs on `exit`, so a UEFI client is never handed a program
//     just to make it leave. Under QEMU TCG the firmware's remaining
//     network attempts take minutes; real firmware with IPv6 PXE and HTTP
//     boot disabled takes seconds.
//
// Measured facts this design follows (Debian 12, QEMU 7.2): QEMU's NIC
// ROMs are already iPXE (the first request says user class iPXE, so a BIOS
// node under QEMU goes straight to HTTP); Debian's iPXE has no HTTPS (the
// script, kernel and initrd are plain HTTP or TFTP; integrity comes from
// the signed manifest and the cloner's checks); Secure Boot cannot go
// through iPXE (Debian's ipxe.efi and snponly.efi are unsigned), so it is
// shim -> signed GRUB -> signed kernel, with stage 2 as GRUB configuration
// over TFTP (the signed grubnetx64 has tftp but no http module); the
// cloner's own DHCP sends vendor class "PXE UROOT", which is not a PXE
// boot: proxy mode ignores it, full mode gives it an address and nothing
// else.
//
// Policy: a node gets the cloner only when the master wants it (marked
// for install or reclone, or --pxe-new for MACs never seen); every other
// boot goes to the local disk; a successful clone marks the node done;
// an unknown MAC is recorded as new with its vendor class and time.
// DirPolicy is the reference implementation (one JSON file per MAC); the
// server's own implementation must do what its comment says.
package pxe
