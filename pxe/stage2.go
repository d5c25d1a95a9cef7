package pxe

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/clonecd/clonecd/medium"
)

// Prefix is where Handler expects to be mounted on the HTTP server.
const Prefix = "/pxe/"

// Console is the serial console of the cloner's kernel line: a headless
// node's cloner log reaches the serial console only with it.
const Console = "console=tty0 console=ttyS0,115200"

// KernelName and InitrdName are the cloner's files under Prefix+"v/VERSION/"
// (HTTP) and "v/VERSION/" (TFTP); iPXE names the initrd image InitrdName
// and passes initrd=InitrdName to an EFI-stub kernel.
const (
	KernelName = "vmlinuz"
	InitrdName = "initrd.img"
)

// Boot is one stage 2 to render: what the policy decided for a client.
type Boot struct {
	Client   Client
	Decision Decision
	Version  string // the version resolved from Decision.Version ("" = current)
}

// Args is the cloner's kernel command line for b.
func (s *Server) Args(b Boot) ([]string, error) {
	a := []string{Console, "clonecd.mode=net", "clonecd.server=" + s.cfg.ImageServer}
	if b.Decision.Node != "" {
		a = append(a, "clonecd.hostname="+b.Decision.Node)
	}
	a = append(a, s.cfg.Args...)
	if s.cfg.Credential != nil && b.Decision.Node != "" {
		c, err := s.cfg.Credential(b.Decision.Node)
		if err != nil {
			return nil, fmt.Errorf("credential for %s: %w", b.Decision.Node, err)
		}
		if c != "" {
			a = append(a, c)
		}
	}
	for _, x := range a {
		if strings.ContainsAny(x, "\n\r\"'`;$\\{}") {
			return nil, fmt.Errorf("kernel argument %q: no quotes, ;, $, \\, braces or newlines", x)
		}
	}
	return a, nil
}

// IPXEScript renders the iPXE stage 2: the cloner, or the local disk
// (BIOS: sanboot the first hard disk; UEFI: reboot, so that the next DHCP
// answer, which has no boot file, sends the firmware to the disk).
func (s *Server) IPXEScript(b Boot) (string, error) {
	var w strings.Builder
	w.WriteString("#!ipxe\n")
	who := b.Client.MAC.String()
	if b.Decision.Node != "" {
		who = b.Decision.Node + " (" + who + ")"
	}
	if b.Decision.Action != Clone {
		fmt.Fprintf(&w, "echo clonecd: %s: booting the local disk (%s)\n", who, b.Decision.Why)
		if b.Client.Firmware() == BIOS {
			w.WriteString("sanboot --no-describe --drive 0x80 || exit\n")
		} else {
			w.WriteString("reboot\n")
		}
		return w.String(), nil
	}
	args, err := s.Args(b)
	if err != nil {
		return "", err
	}
	base := s.cfg.BootURL + Prefix + "v/" + b.Version + "/"
	fmt.Fprintf(&w, "echo clonecd: %s: cloning version %s (%s)\n", who, b.Version, b.Decision.Why)
	fmt.Fprintf(&w, "kernel %s%s initrd=%s %s || goto failed\n", base, KernelName, InitrdName, strings.Join(args, " "))
	fmt.Fprintf(&w, "initrd --name %s %s%s || goto failed\n", InitrdName, base, InitrdName)
	w.WriteString("boot || goto failed\n")
	w.WriteString(":failed\necho clonecd: stage 2 failed; rebooting in 10 s\nsleep 10\nreboot\n")
	return w.String(), nil
}

// GrubConfig renders the Secure Boot chain's stage 2 for Debian's signed
// network GRUB: kernel and initramfs over TFTP from this server (the
// signed image has no http module); the kernel must be signed (shim
// checks it), the initramfs needs no signature. A local decision reboots
// (GRUB's exit returns success, which drops OVMF into its boot menu).
func (s *Server) GrubConfig(b Boot) (string, error) {
	var w strings.Builder
	w.WriteString("serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n")
	who := b.Client.MAC.String()
	if b.Decision.Node != "" {
		who = b.Decision.Node + " (" + who + ")"
	}
	if b.Decision.Action != Clone {
		fmt.Fprintf(&w, "echo 'clonecd: %s: booting the local disk (%s)'\nsleep 3\nreboot\n", who, b.Decision.Why)
		return w.String(), nil
	}
	args, err := s.Args(b)
	if err != nil {
		return "", err
	}
	dev := "(tftp," + s.cfg.ServerIP.String() + ")"
	fmt.Fprintf(&w, "echo 'clonecd: %s: cloning version %s (%s)'\n", who, b.Version, b.Decision.Why)
	fmt.Fprintf(&w, "linux %s/v/%s/%s %s\n", dev, b.Version, KernelName, strings.Join(args, " "))
	fmt.Fprintf(&w, "initrd %s/v/%s/%s\n", dev, b.Version, InitrdName)
	w.WriteString("boot\necho 'clonecd: stage 2 failed; rebooting'\nsleep 10\nreboot\n")
	return w.String(), nil
}

// GrubBootstrap is grub/grub.cfg over TFTP: Debian's signed grubnetx64
// has prefix /grub and sources $prefix/grub.cfg; this sends it on to the
// node's own configuration by its MAC.
const GrubBootstrap = "source $prefix/node/$net_default_mac\n"

// Handler serves stage 2 under Prefix:
//
//	GET /pxe/node/MAC.ipxe          the iPXE script for MAC (the policy decides)
//	GET /pxe/node/MAC.grub          the GRUB configuration for MAC (as TFTP serves it)
//	GET /pxe/boot/FILE              a boot file from BootDir (UEFI HTTP boot)
//	GET /pxe/v/VERSION/vmlinuz      the version's cloner kernel
//	GET /pxe/v/VERSION/initrd.img   the version's cloner initramfs
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET "+Prefix+"node/{file}", s.serveNode)
	m.HandleFunc("GET "+Prefix+"boot/{file}", s.serveBootFile)
	m.HandleFunc("GET "+Prefix+"v/{version}/{file}", s.serveCloner)
	return m
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	ext := path.Ext(file)
	mac, err := net.ParseMAC(strings.TrimSuffix(file, ext))
	if err != nil || (ext != ".ipxe" && ext != ".grub") {
		http.Error(w, "want /pxe/node/MAC.ipxe or MAC.grub", http.StatusNotFound)
		return
	}
	c := s.lastClient(mac)
	if r.URL.Query().Get("fw") == BIOS.String() {
		c.Arch = 0
	}
	b, err := s.decide(c)
	if err != nil {
		s.logf("pxe: stage 2 for %s: %v", mac, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var text string
	if ext == ".ipxe" {
		text, err = s.IPXEScript(b)
	} else {
		text, err = s.GrubConfig(b)
	}
	if err != nil {
		s.logf("pxe: stage 2 for %s: %v", mac, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.logf("pxe: %s: stage 2 %s: %s (%s)", c, ext[1:], b.Decision.Action, b.Decision.Why)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, text)
}

func (s *Server) serveBootFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if !bootFileName(name) {
		http.NotFound(w, r)
		return
	}
	http.ServeFileFS(w, r, s.bootFS(), name)
}

func (s *Server) serveCloner(w http.ResponseWriter, r *http.Request) {
	f, size, mod, err := s.openCloner(r.PathValue("version"), r.PathValue("file"))
	if err != nil {
		s.logf("pxe: %s: %v", r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, f)
		return
	}
	http.ServeContent(w, r, r.PathValue("file"), mod, rs)
}

// openCloner opens the version's cloner kernel or initramfs.
func (s *Server) openCloner(version, file string) (fs.File, int64, time.Time, error) {
	var name string
	switch file {
	case KernelName:
		name = medium.Kernel
	case InitrdName:
		name = medium.Initrd
	default:
		return nil, 0, time.Time{}, fmt.Errorf("%s: not a cloner file (%s or %s)", file, KernelName, InitrdName)
	}
	fsys, _, err := s.cfg.Media(version)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("version %s: %w", version, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, time.Time{}, err
	}
	return f, st.Size(), st.ModTime(), nil
}

func bootFileName(name string) bool {
	for _, f := range BootFiles {
		if f.Name == name {
			return true
		}
	}
	return false
}
