package pxe

import (
	"io"
	"io/fs"
	"net"
	"path"
	"strings"

	"pack.ag/tftp"
)

// tftpHandler serves, read-only:
//
//	undionly.kpxe snponly.efi ipxe.efi shimx64.efi grubx64.efi   from BootDir
//	grub/grub.cfg                       GrubBootstrap
//	grub/node/MAC                       the node's GRUB configuration
//	v/VERSION/vmlinuz, v/VERSION/initrd.img   the version's cloner
//
// Names are taken as given, with or without a leading slash; nothing
// else is served (no directory walking: BootDir is opened by exact name).
type tftpHandler struct{ s *Server }

func (h tftpHandler) ServeTFTP(r tftp.ReadRequest) {
	name := strings.TrimPrefix(path.Clean("/"+r.Name()), "/")
	s := h.s
	switch {
	case bootFileName(name):
		f, err := s.bootFS().Open(name)
		if err != nil {
			h.fail(r, name, err)
			return
		}
		defer f.Close()
		h.send(r, name, f)
	case name == "grub/grub.cfg":
		h.sendString(r, name, GrubBootstrap)
	case name == "grub/x86_64-efi/grub.cfg":
		r.WriteError(tftp.ErrCodeFileNotFound, "no such file") // GRUB looks here first
	case strings.HasPrefix(name, "grub/node/"):
		mac, err := net.ParseMAC(strings.TrimPrefix(name, "grub/node/"))
		if err != nil {
			h.fail(r, name, err)
			return
		}
		c := s.lastClient(mac)
		b, err := s.decide(c)
		if err != nil {
			h.fail(r, name, err)
			return
		}
		text, err := s.GrubConfig(b)
		if err != nil {
			h.fail(r, name, err)
			return
		}
		s.logf("pxe: %s: stage 2 grub: %s (%s)", c, b.Decision.Action, b.Decision.Why)
		h.sendString(r, name, text)
	case strings.HasPrefix(name, "v/"):
		parts := strings.Split(name, "/")
		if len(parts) != 3 {
			h.fail(r, name, fs.ErrNotExist)
			return
		}
		f, _, _, err := s.openCloner(parts[1], parts[2])
		if err != nil {
			h.fail(r, name, err)
			return
		}
		defer f.Close()
		h.send(r, name, f)
	default:
		h.fail(r, name, fs.ErrNotExist)
	}
}

func (h tftpHandler) fail(r tftp.ReadRequest, name string, err error) {
	h.s.logf("pxe: TFTP %s from %s: %v", name, r.Addr().IP, err)
	r.WriteError(tftp.ErrCodeFileNotFound, "not found")
}

func (h tftpHandler) sendString(r tftp.ReadRequest, name, s string) {
	r.WriteSize(int64(len(s)))
	h.send(r, name, strings.NewReader(s))
}

func (h tftpHandler) send(r tftp.ReadRequest, name string, src io.Reader) {
	if f, ok := src.(fs.File); ok {
		if st, err := f.Stat(); err == nil {
			r.WriteSize(st.Size())
		}
	}
	n, err := io.Copy(r, src)
	if err != nil {
		h.s.logf("pxe: TFTP %s to %s: %v", name, r.Addr().IP, err)
		return
	}
	h.s.logf("pxe: TFTP %s to %s: %d bytes", name, r.Addr().IP, n)
}
