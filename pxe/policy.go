package pxe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// Action is what a PXE boot is told to do.
type Action int

const (
	Local Action = iota // boot the node's own disk
	Clone               // boot the cloner
)

func (a Action) String() string {
	if a == Clone {
		return "clone"
	}
	return "local"
}

// Decision is the policy's answer for one PXE boot.
type Decision struct {
	Action  Action
	Node    string // the node's name, passed as clonecd.hostname=; "": the cloner names itself
	Version string // the version to clone; "": the current one
	Why     string // for the log: "marked for install", "not marked", "new MAC (--pxe-new)"
}

// Policy decides who gets the cloner. The server's implementation must:
//
//   - Decide: answer Clone only for a node the master marked (clonecd
//     reclone --pxe NODE, a node marked for install) or, with --pxe-new,
//     for a MAC never seen before; answer Local for everything else. Record
//     a MAC it has never seen as "new" with the client's vendor class,
//     firmware and the time (clonecd status lists it, ready to be named
//     in the nodes table). Decide is called at DHCP time and again when
//     stage 2 is fetched, so it must be cheap and must not change a
//     decision between the two calls by itself.
//   - Cloned: when a node reports a successful clone (its report says
//     state done), mark it done so that its next PXE boot goes to its
//     disk. A failed clone leaves the mark: the node gets the cloner
//     again at its next PXE boot.
//
// A MAC is the key (the only thing DHCP knows); the node's name comes
// from the nodes table by MAC.
type Policy interface {
	Decide(c Client) (Decision, error)
	Cloned(node string) error
}

// Host states in DirPolicy.
const (
	HostInstall = "install" // clone at the next PXE boot
	HostLocal   = "local"   // boot the local disk
)

// Host is what DirPolicy keeps about one MAC.
type Host struct {
	MAC       string    `json:"mac"`
	Node      string    `json:"node,omitempty"`
	State     string    `json:"state"`             // install, local
	Version   string    `json:"version,omitempty"` // pinned for the next clone; "": current
	New       bool      `json:"new,omitempty"`     // first seen by PXE, not (yet) in the nodes table
	Vendor    string    `json:"vendor,omitempty"`  // option 60 of its last PXE request
	Firmware  string    `json:"firmware,omitempty"`
	FirstSeen time.Time `json:"first_seen,omitempty"`
	LastSeen  time.Time `json:"last_seen,omitempty"`
	Cloned    time.Time `json:"cloned,omitempty"`
}

// DirPolicy is the reference Policy: one JSON file per MAC in Dir
// (52-54-00-12-34-56.json), written atomically, read afresh at every
// call, so that another process (a test, an admin command) may mark
// hosts while a server decides.
type DirPolicy struct {
	Dir string
	// New gives the cloner to MACs never seen before (--pxe-new).
	New bool
	// Names maps a MAC (lower case, colons) to its node name, e.g. from
	// the nodes table; nil or "": the MAC has no name.
	Names func(mac string) string

	mu sync.Mutex // serialises read-modify-write of the host files
}

// HostName is the name a cloner gives itself when nothing names it
// (clone.ChooseHostname's fallback): node-525400123456.
func HostName(mac net.HardwareAddr) string {
	return "node-" + strings.ReplaceAll(mac.String(), ":", "")
}

func (p *DirPolicy) file(mac string) string {
	return filepath.Join(p.Dir, strings.ReplaceAll(strings.ToLower(mac), ":", "-")+".json")
}

func (p *DirPolicy) read(mac string) (*Host, error) {
	b, err := os.ReadFile(p.file(mac))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h Host
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", p.file(mac), err)
	}
	return &h, nil
}

func (p *DirPolicy) write(h *Host) error {
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p.file(h.MAC), append(b, '\n'), 0o644)
}

// Decide implements Policy.
func (p *DirPolicy) Decide(c Client) (Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mac := c.MAC.String()
	h, err := p.read(mac)
	if err != nil {
		return Decision{}, err
	}
	name := ""
	if p.Names != nil {
		name = p.Names(mac)
	}
	if h == nil {
		h = &Host{MAC: mac, Node: name, State: HostLocal, New: name == "", FirstSeen: c.Seen}
		if p.New {
			h.State = HostInstall
			if h.Node == "" {
				h.Node = HostName(c.MAC)
			}
		}
	}
	if h.Node == "" && name != "" {
		h.Node = name
	}
	h.Vendor, h.Firmware, h.LastSeen = c.VendorClass, c.Firmware().String(), c.Seen
	if err := p.write(h); err != nil {
		return Decision{}, err
	}
	d := Decision{Node: h.Node, Version: h.Version}
	switch {
	case h.State == HostInstall && h.New:
		d.Action, d.Why = Clone, "new MAC (--pxe-new)"
	case h.State == HostInstall:
		d.Action, d.Why = Clone, "marked for install"
	case h.New:
		d.Why = "new MAC, not marked"
	default:
		d.Why = "not marked"
	}
	return d, nil
}

// Cloned implements Policy: every host named node boots its disk from now on.
func (p *DirPolicy) Cloned(node string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	hosts, err := p.hosts()
	if err != nil {
		return err
	}
	found := false
	for i := range hosts {
		h := &hosts[i]
		if h.Node != node {
			continue
		}
		found = true
		h.State, h.Version, h.Cloned = HostLocal, "", time.Now()
		if err := p.write(h); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("node %s: no PXE host has that name", node)
	}
	return nil
}

// Mark makes mac's next PXE boot clone version ("": current) as node
// (clonecd reclone --pxe NODE). An empty node keeps the name it has.
func (p *DirPolicy) Mark(mac net.HardwareAddr, node, version string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, err := p.read(mac.String())
	if err != nil {
		return err
	}
	if h == nil {
		h = &Host{MAC: mac.String()}
	}
	if node != "" {
		h.Node, h.New = node, false
	}
	h.State, h.Version = HostInstall, version
	return p.write(h)
}

// Hosts lists every host, sorted by MAC (for status).
func (p *DirPolicy) Hosts() ([]Host, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hosts()
}

func (p *DirPolicy) hosts() ([]Host, error) {
	ents, err := os.ReadDir(p.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Host
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") {
			continue
		}
		mac, err := net.ParseMAC(strings.ReplaceAll(strings.TrimSuffix(n, ".json"), "-", ":"))
		if err != nil {
			continue
		}
		h, err := p.read(mac.String())
		if err != nil {
			return nil, err
		}
		if h != nil {
			out = append(out, *h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out, nil
}

// Summary is the host as status shows it: "new, uefi, PXEClient:Arch:00007:UNDI:003001,
// first seen 2026-12-01 19:11:02"; "install", "local (cloned 2026-12-01 19:30:00)".
func (h Host) Summary() string {
	s := h.State
	if h.New && h.Node == "" || h.New && h.State == HostLocal {
		s = "new"
	}
	if !h.Cloned.IsZero() && h.State == HostLocal {
		s += " (cloned " + h.Cloned.Format(time.DateTime) + ")"
	}
	if h.Firmware != "" {
		s += ", " + h.Firmware
	}
	if h.Vendor != "" {
		s += ", " + h.Vendor
	}
	if !h.FirstSeen.IsZero() {
		s += ", first seen " + h.FirstSeen.Format(time.DateTime)
	}
	return s
}
