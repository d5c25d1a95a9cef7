package pxe

import (
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/clonecd/clonecd/medium"
)

// The kinds of DHCP request a cluster network sees, as measured with
// QEMU's SeaBIOS/OVMF, iPXE and the cloner (vendor classes verbatim).
var (
	biosROM   = kind{arch: iana.INTEL_X86PC, vendor: "PXEClient:Arch:00000:UNDI:002001"}
	biosIPXE  = kind{arch: iana.INTEL_X86PC, vendor: "PXEClient:Arch:00000:UNDI:002001", user: "iPXE"}
	uefiPXE   = kind{arch: iana.EFI_X86_64, vendor: "PXEClient:Arch:00007:UNDI:003001"}
	uefiIPXE  = kind{arch: iana.EFI_X86_64, vendor: "PXEClient:Arch:00007:UNDI:003010", user: "iPXE"}
	uefiHTTP  = kind{arch: iana.EFI_X86_64_HTTP, vendor: "HTTPClient:Arch:00016:UNDI:003001"}
	cloner    = kind{vendor: "PXE UROOT", noArch: true}
	plainHost = kind{noArch: true}
)

type kind struct {
	arch   iana.Arch
	vendor string
	user   string
	noArch bool
}

func request(t *testing.T, mac string, k kind, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt), dhcpv4.WithBroadcast(true)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !k.noArch {
		m.UpdateOption(dhcpv4.OptClientArch(k.arch))
	}
	if k.vendor != "" {
		m.UpdateOption(dhcpv4.OptClassIdentifier(k.vendor))
	}
	if k.user != "" { // iPXE sends the bare string, not RFC 3004's length-prefixed list
		m.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte(k.user)))
	}
	return m
}

// testMedia is one version "1.20" with a cloner kernel and initrd.
func testMedia(version string) (fs.FS, string, error) {
	if version != "" && version != "1.20" {
		return nil, "", fs.ErrNotExist
	}
	return fstest.MapFS{
		medium.Kernel: {Data: []byte("KERNEL-1.20"), ModTime: time.Unix(1e9, 0)},
		medium.Initrd: {Data: []byte("INITRD-1.20"), ModTime: time.Unix(1e9, 0)},
	}, "1.20", nil
}

func newTestServer(t *testing.T, full, secureBoot bool, p Policy) *Server {
	t.Helper()
	cfg := Config{Interface: "lo", ServerIP: net.IPv4(10, 9, 0, 1), BootURL: "http://10.9.0.1:8080",
		BootDir: t.TempDir(), Media: testMedia, Policy: p, SecureBoot: secureBoot}
	if full {
		r, err := ParseRange("10.9.0.100-10.9.0.101/24")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Range = r
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	macMarked  = "52:54:00:00:00:01"
	macLocal   = "52:54:00:00:00:02"
	macUnknown = "52:54:00:00:00:03"
)

func testPolicy(t *testing.T, pxeNew bool) *DirPolicy {
	t.Helper()
	p := &DirPolicy{Dir: t.TempDir(), New: pxeNew, Names: func(mac string) string {
		return map[string]string{macMarked: "s001", macLocal: "s002"}[mac]
	}}
	hw, _ := net.ParseMAC(macMarked)
	if err := p.Mark(hw, "", ""); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReply: Reply(request) = the boot file (or no answer) per firmware,
// mode and decision.
func TestReply(t *testing.T) {
	ipxeURL := func(mac, fw string) string { return "http://10.9.0.1:8080/pxe/node/" + mac + ".ipxe?fw=" + fw }
	for _, tt := range []struct {
		name       string
		full, sb   bool
		mac        string
		k          kind
		mt         dhcpv4.MessageType
		port       int
		none       bool   // no answer at all
		file       string // boot file; "" none
		yiaddr     bool   // an address is leased
		vendor     string // option 60 in the answer
		vendorOpts bool   // option 43 present
	}{
		{name: "proxy bios rom marked", mac: macMarked, k: biosROM, mt: dhcpv4.MessageTypeDiscover, port: 67, file: FileBIOS, vendor: "PXEClient", vendorOpts: true},
		{name: "proxy bios ipxe marked", mac: macMarked, k: biosIPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, file: ipxeURL(macMarked, "bios"), vendor: "PXEClient", vendorOpts: true},
		{name: "proxy bios ipxe local", mac: macLocal, k: biosIPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, file: ipxeURL(macLocal, "bios"), vendor: "PXEClient", vendorOpts: true},
		{name: "proxy uefi marked", mac: macMarked, k: uefiPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, file: FileUEFI, vendor: "PXEClient", vendorOpts: true},
		{name: "proxy uefi marked secure boot", sb: true, mac: macMarked, k: uefiPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, file: FileShim, vendor: "PXEClient", vendorOpts: true},
		{name: "proxy uefi local: silence", mac: macLocal, k: uefiPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, none: true},
		{name: "proxy uefi unknown: silence", mac: macUnknown, k: uefiIPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, none: true},
		{name: "proxy uefi ipxe marked", mac: macMarked, k: uefiIPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, file: ipxeURL(macMarked, "uefi"), vendor: "PXEClient", vendorOpts: true},
		{name: "proxy http boot marked", mac: macMarked, k: uefiHTTP, mt: dhcpv4.MessageTypeDiscover, port: 67, file: "http://10.9.0.1:8080/pxe/boot/" + FileUEFI, vendor: "HTTPClient"},
		{name: "proxy boot server request 4011", mac: macMarked, k: uefiPXE, mt: dhcpv4.MessageTypeRequest, port: 4011, file: FileUEFI, vendor: "PXEClient", vendorOpts: true},
		{name: "proxy request on 67 is the site's", mac: macMarked, k: uefiPXE, mt: dhcpv4.MessageTypeRequest, port: 67, none: true},
		{name: "proxy ignores the cloner", mac: macMarked, k: cloner, mt: dhcpv4.MessageTypeDiscover, port: 67, none: true},
		{name: "proxy ignores other hosts", mac: macMarked, k: plainHost, mt: dhcpv4.MessageTypeDiscover, port: 67, none: true},
		{name: "full bios rom marked", full: true, mac: macMarked, k: biosROM, mt: dhcpv4.MessageTypeDiscover, port: 67, file: FileBIOS, yiaddr: true},
		{name: "full uefi local: address, no file", full: true, mac: macLocal, k: uefiPXE, mt: dhcpv4.MessageTypeDiscover, port: 67, yiaddr: true},
		{name: "full cloner gets an address", full: true, mac: macMarked, k: cloner, mt: dhcpv4.MessageTypeDiscover, port: 67, yiaddr: true},
		{name: "full http boot", full: true, mac: macMarked, k: uefiHTTP, mt: dhcpv4.MessageTypeDiscover, port: 67, file: "http://10.9.0.1:8080/pxe/boot/" + FileUEFI, yiaddr: true, vendor: "HTTPClient"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, tt.full, tt.sb, testPolicy(t, false))
			r, err := s.Reply(request(t, tt.mac, tt.k, tt.mt), tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if tt.none {
				if r != nil {
					t.Fatalf("Reply = %s; want no answer", r.Summary())
				}
				return
			}
			if r == nil {
				t.Fatalf("Reply = no answer; want boot file %q", tt.file)
			}
			if got := r.BootFileName; got != tt.file {
				t.Errorf("boot file = %q; want %q", got, tt.file)
			}
			if got := !r.YourIPAddr.Equal(net.IPv4zero); got != tt.yiaddr {
				t.Errorf("yiaddr = %s; want an address: %v", r.YourIPAddr, tt.yiaddr)
			}
			if got := r.ClassIdentifier(); got != tt.vendor {
				t.Errorf("option 60 = %q; want %q", got, tt.vendor)
			}
			if got := r.Options.Has(dhcpv4.OptionVendorSpecificInformation); got != tt.vendorOpts {
				t.Errorf("option 43 present = %v; want %v", got, tt.vendorOpts)
			}
			if !r.ServerIdentifier().Equal(net.IPv4(10, 9, 0, 1)) {
				t.Errorf("option 54 = %s; want 10.9.0.1", r.ServerIdentifier())
			}
		})
	}
}

// TestFullLeases: one address per MAC, kept across DISCOVERs, refused to
// a REQUEST for someone else's, NAK when the pool is full.
func TestFullLeases(t *testing.T) {
	s := newTestServer(t, true, false, testPolicy(t, false))
	lease := func(mac string) (net.IP, dhcpv4.MessageType) {
		t.Helper()
		o, err := s.Reply(request(t, mac, plainHost, dhcpv4.MessageTypeDiscover), 67)
		if err != nil {
			return nil, dhcpv4.MessageTypeNone
		}
		a, err := s.Reply(request(t, mac, plainHost, dhcpv4.MessageTypeRequest,
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 9, 0, 1)))), 67)
		if err != nil {
			t.Fatal(err)
		}
		return a.YourIPAddr, a.MessageType()
	}
	a1, t1 := lease("02:00:00:00:00:01")
	a2, t2 := lease("02:00:00:00:00:02")
	again, _ := lease("02:00:00:00:00:01")
	if t1 != dhcpv4.MessageTypeAck || t2 != dhcpv4.MessageTypeAck || a1.Equal(a2) || !again.Equal(a1) {
		t.Errorf("leases: %s %s, %s %s, again %s; want two ACKs of different addresses, the same again", a1, t1, a2, t2, again)
	}
	if _, err := s.Reply(request(t, "02:00:00:00:00:03", plainHost, dhcpv4.MessageTypeDiscover), 67); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("third client on a 2-address range: %v; want the range full", err)
	}
	steal, err := s.Reply(request(t, "02:00:00:00:00:03", plainHost, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(a1))), 67)
	if err != nil || steal.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("REQUEST for another client's address = %v, %v; want NAK", steal.MessageType(), err)
	}
}

// TestPolicy: DirPolicy records unknown MACs as new, clones only marked
// hosts (or new ones with --pxe-new), and Cloned sends them to their disk.
func TestPolicy(t *testing.T) {
	p := testPolicy(t, false)
	decide := func(mac string) Decision {
		t.Helper()
		hw, _ := net.ParseMAC(mac)
		d, err := p.Decide(Client{MAC: hw, Arch: iana.EFI_X86_64, VendorClass: uefiPXE.vendor, Seen: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide(macMarked); d.Action != Clone || d.Node != "s001" {
		t.Errorf("marked host: %+v; want clone as s001", d)
	}
	if d := decide(macMarked); d.Action != Clone {
		t.Errorf("marked host, second boot before the clone is done: %+v; want clone again", d)
	}
	if d := decide(macLocal); d.Action != Local || d.Node != "s002" {
		t.Errorf("named, unmarked host: %+v; want local as s002", d)
	}
	if d := decide(macUnknown); d.Action != Local {
		t.Errorf("unknown MAC without --pxe-new: %+v; want local", d)
	}
	if err := p.Cloned("s001"); err != nil {
		t.Fatal(err)
	}
	if d := decide(macMarked); d.Action != Local {
		t.Errorf("after Cloned: %+v; want local", d)
	}
	if err := p.Cloned("s999"); err == nil {
		t.Errorf("Cloned(unknown node) = nil; want an error")
	}
	hosts, err := p.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	var newOnes []string
	for _, h := range hosts {
		if h.New {
			newOnes = append(newOnes, h.MAC)
			if h.Vendor != uefiPXE.vendor || h.Firmware != "uefi" || h.FirstSeen.IsZero() {
				t.Errorf("new host %+v: want its vendor class, firmware and first-seen time", h)
			}
			if s := h.Summary(); !strings.HasPrefix(s, "new, uefi, "+uefiPXE.vendor+", first seen ") {
				t.Errorf("new host Summary() = %q", s)
			}
		}
	}
	if len(newOnes) != 1 || newOnes[0] != macUnknown {
		t.Errorf("new hosts = %v; want [%s]", newOnes, macUnknown)
	}

	// --pxe-new: a never-seen MAC gets the cloner under the cloner's own
	// fallback name, until its clone is done.
	pn := testPolicy(t, true)
	hw, _ := net.ParseMAC(macUnknown)
	for i := 0; i < 2; i++ {
		d, err := pn.Decide(Client{MAC: hw, Seen: time.Now()})
		if err != nil || d.Action != Clone || d.Node != "node-525400000003" {
			t.Fatalf("--pxe-new, boot %d: %+v, %v; want clone as node-525400000003", i+1, d, err)
		}
	}
	if err := pn.Cloned("node-525400000003"); err != nil {
		t.Fatal(err)
	}
	if d, _ := pn.Decide(Client{MAC: hw, Seen: time.Now()}); d.Action != Local {
		t.Errorf("--pxe-new after Cloned: %+v; want local", d)
	}
}

// TestStage2: the iPXE script and the GRUB configuration boot the
// version's cloner with the network-mode kernel line; local boots go to
// the disk (BIOS) or back through DHCP (UEFI).
func TestStage2(t *testing.T) {
	p := testPolicy(t, false)
	s := newTestServer(t, false, false, p)
	s.cfg.Args = []string{"clonecd.trust=PLACEHOLDER"}
	s.cfg.Credential = func(node string) (string, error) { return "clonecd.credential=" + node + ":SECRET", nil }
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	get := func(path string) (int, string) {
		t.Helper()
		r, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/pxe/node/" + macMarked + ".ipxe?fw=bios", []string{"#!ipxe\n",
			"kernel http://10.9.0.1:8080/pxe/v/1.20/vmlinuz initrd=initrd.img console=tty0 console=ttyS0,115200 clonecd.mode=net clonecd.server=http://10.9.0.1:8080 clonecd.hostname=s001 clonecd.trust=PLACEHOLDER clonecd.credential=s001:SECRET",
			"initrd --name initrd.img http://10.9.0.1:8080/pxe/v/1.20/initrd.img", "boot"}},
		{"/pxe/node/" + macLocal + ".ipxe?fw=bios", []string{"sanboot --no-describe --drive 0x80"}},
		{"/pxe/node/" + macLocal + ".ipxe?fw=uefi", []string{"reboot"}},
		{"/pxe/node/" + macMarked + ".grub", []string{"linux (tftp,10.9.0.1)/v/1.20/vmlinuz console=tty0 console=ttyS0,115200 clonecd.mode=net",
			"initrd (tftp,10.9.0.1)/v/1.20/initrd.img", "serial --unit=0 --speed=115200"}},
		{"/pxe/v/1.20/vmlinuz", []string{"KERNEL-1.20"}},
		{"/pxe/v/1.20/initrd.img", []string{"INITRD-1.20"}},
	} {
		code, body := get(tt.path)
		for _, w := range tt.want {
			if code != 200 || !strings.Contains(body, w) {
				t.Errorf("GET %s = %d\n%s\nwant %q", tt.path, code, body, w)
			}
		}
	}
	for _, bad := range []string{"/pxe/v/1.20/node.cpio.gz", "/pxe/v/9.9/vmlinuz", "/pxe/node/nonsense.ipxe", "/pxe/boot/../../etc/passwd", "/pxe/boot/passwd"} {
		if code, _ := get(bad); code == 200 {
			t.Errorf("GET %s = 200; want a refusal", bad)
		}
	}
	// a kernel argument that would break out of the script is refused
	s.cfg.Args = []string{"x\nshell"}
	if code, _ := get("/pxe/node/" + macMarked + ".ipxe"); code != 500 {
		t.Errorf("stage 2 with a newline in an argument = %d; want 500", code)
	}
}

// TestCopyBootFiles copies what is installed and names what is missing.
func TestCopyBootFiles(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "undionly.kpxe"), []byte("BIOS"), 0o644)
	files := []BootFile{{FileBIOS, filepath.Join(src, "undionly.kpxe"), "ipxe"}, {FileShim, filepath.Join(src, "missing"), "shim-signed"}}
	dst := filepath.Join(t.TempDir(), "pxe")
	copied, missing, err := CopyBootFiles(dst, files)
	if err != nil || len(copied) != 1 || len(missing) != 1 || missing[0].Package != "shim-signed" {
		t.Fatalf("CopyBootFiles = %v, %v, %v; want undionly.kpxe copied, shim missing", copied, missing, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, FileBIOS)); string(b) != "BIOS" {
		t.Errorf("copied %s = %q", FileBIOS, b)
	}
	if _, _, err := CopyBootFiles(dst, files[1:]); err == nil || !strings.Contains(err.Error(), "shim-signed") {
		t.Errorf("nothing to copy: %v; want an error naming the package", err)
	}
}

func TestParseRange(t *testing.T) {
	for _, tt := range []struct {
		in, err string
	}{
		{"10.0.0.100-10.0.0.199", ""},
		{"10.0.0.100-10.0.1.10/23", ""},
		{"10.0.0.100", "START-END"},
		{"10.0.0.199-10.0.0.100", "ends before"},
		{"10.0.0.100-10.0.1.10", "not in one /24"},
		{"10.0.0.1-10.0.0.2/31", "prefix"},
		{"::1-::2", "not an IPv4"},
	} {
		_, err := ParseRange(tt.in)
		if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseRange(%q) = %v; want error %q", tt.in, err, tt.err)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add("10.0.0.100-10.0.0.199/24")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.End.Less(r.Start) {
			t.Errorf("ParseRange(%q) = %v..%v: ends before it starts", s, r.Start, r.End)
		}
	})
}
