package pxe

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Firmware is what booted the client.
type Firmware int

const (
	BIOS Firmware = iota // legacy BIOS PXE ROM (arch 0)
	UEFI                 // x86-64 UEFI (arch 7, 9, or 16 for HTTP boot)
)

func (f Firmware) String() string {
	if f == UEFI {
		return "uefi"
	}
	return "bios"
}

// Client is what a DHCP request says about the machine that sent it.
type Client struct {
	MAC         net.HardwareAddr
	Arch        iana.Arch // option 93, first value; 0 (BIOS) when absent
	VendorClass string    // option 60: "PXEClient:Arch:00007:UNDI:003001", "HTTPClient:...", "PXE UROOT"
	UserClass   string    // option 77: "iPXE" once iPXE runs
	Seen        time.Time
}

// ClientFrom reads a DHCP request.
func ClientFrom(m *dhcpv4.DHCPv4) Client {
	c := Client{MAC: m.ClientHWAddr, VendorClass: m.ClassIdentifier(), Seen: time.Now()}
	if a := m.ClientArch(); len(a) > 0 {
		c.Arch = a[0]
	}
	if uc := m.UserClass(); len(uc) > 0 {
		c.UserClass = uc[0]
	}
	return c
}

// PXE reports a firmware (or iPXE) network boot: vendor class PXEClient.
func (c Client) PXE() bool { return strings.HasPrefix(c.VendorClass, "PXEClient") }

// HTTPBoot reports a UEFI HTTP boot client: vendor class HTTPClient.
func (c Client) HTTPBoot() bool { return strings.HasPrefix(c.VendorClass, "HTTPClient") }

// IPXE reports a request from iPXE (user class iPXE).
func (c Client) IPXE() bool { return c.UserClass == "iPXE" }

// Booting reports a network boot that this package answers: PXE, HTTP boot
// or iPXE. The cloner's own DHCP ("PXE UROOT") is not one.
func (c Client) Booting() bool { return c.PXE() || c.HTTPBoot() || c.IPXE() }

// Firmware is BIOS for arch 0 (and no option 93), else UEFI.
func (c Client) Firmware() Firmware {
	switch c.Arch {
	case iana.INTEL_X86PC, iana.INTEL_X86PC_HTTP:
		return BIOS
	}
	return UEFI
}

// Supported reports an architecture this package has boot files for:
// x86 BIOS and x86-64 UEFI.
func (c Client) Supported() bool {
	switch c.Arch {
	case iana.INTEL_X86PC, iana.EFI_X86_64, iana.EFI_BC, iana.EFI_X86_64_HTTP:
		return true
	}
	return false
}

func (c Client) String() string {
	s := fmt.Sprintf("%s %s arch %d", c.MAC, c.Firmware(), uint16(c.Arch))
	if c.VendorClass != "" {
		s += " vendor " + c.VendorClass
	}
	if c.UserClass != "" {
		s += " user " + c.UserClass
	}
	return s
}
