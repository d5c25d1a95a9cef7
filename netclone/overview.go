package netclone

import (
	"slices"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/versions"
)

// Overview is the fleet page's model: GET /api/fleet, and the "overview"
// event of /api/events. Node-supplied strings in it are fleet.Clean'ed;
// the page still prints them as text only.
type Overview struct {
	Time     time.Time     `json:"time"`
	Current  string        `json:"current"` // the current version ("": none)
	Nodes    []NodeView    `json:"nodes"`   // in natural order (s2 before s10)
	Versions []VersionView `json:"versions"`
	Streams  StreamsView   `json:"streams"`
	// Newcomers are machines that asked to boot and are no node yet
	// (the PXE server's); null when this server has no PXE server.
	Newcomers []Newcomer `json:"newcomers"`
	// Reclone says the page may start reclones (serve --rsh); else it
	// shows the command to run.
	Reclone bool `json:"reclone"`
}

// NodeView is one node on the page.
type NodeView struct {
	Node        string    `json:"node"`
	State       string    `json:"state"` // waiting, cloning, done, failed, unknown
	Summary     string    `json:"summary"`
	Op          string    `json:"op"` // clone or sync
	Step        string    `json:"step,omitempty"`
	StepStarted time.Time `json:"stepStarted,omitzero"`
	Version     string    `json:"version,omitempty"`
	Assigned    string    `json:"assigned,omitempty"` // pinned for its next clone
	Done        int64     `json:"done,omitempty"`
	Total       int64     `json:"total,omitempty"`
	Percent     int       `json:"percent"` // -1: unknown
	Rate        float64   `json:"rate,omitempty"`
	Error       string    `json:"error,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	Attempt     int       `json:"attempt,omitempty"`
	Address     string    `json:"address,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	When        time.Time `json:"when,omitzero"`
	HasLog      bool      `json:"hasLog"`
}

// Version statuses on the page.
const (
	VersionCurrent = "current"
	VersionCanary  = "canary" // not current, not bad, newer than current or pinned for a node
	VersionBad     = "bad"
	VersionOld     = "old"
)

// VersionView is one version on the page.
type VersionView struct {
	Version   string    `json:"version"`
	Status    string    `json:"status"`
	Date      time.Time `json:"date,omitzero"`
	Size      int64     `json:"size"`
	Note      string    `json:"note,omitempty"`
	BadReason string    `json:"badReason,omitempty"`
	Changed   bool      `json:"changed,omitempty"` // its image was written to after publish
	Nodes     int       `json:"nodes"`             // nodes done with it
	Active    int       `json:"active"`            // nodes waiting for it or cloning it
	Pinned    int       `json:"pinned"`            // nodes pinned to it for their next clone
}

// StreamsView is the master's image streams and bytes served.
type StreamsView struct {
	Stats
	Bytes int64 `json:"bytes"` // bytes of files this master served (HTTP and its swarm seeders)
	// PeerBytes are bytes the nodes served each other (the swarm); null
	// when this server has no swarm.
	PeerBytes *int64 `json:"peerBytes"`
	// Versions are Bytes and PeerBytes per version, newest first: the
	// versions with a byte served. Bytes and PeerBytes are their sums.
	Versions []VersionBytes `json:"versions"`
}

// VersionBytes is the bytes of one version's files served.
type VersionBytes struct {
	Version   string `json:"version"`
	Bytes     int64  `json:"bytes"`     // by this master (HTTP and its swarm seeder)
	PeerBytes *int64 `json:"peerBytes"` // by the nodes to each other; null without a swarm
}

// Newcomer is a machine that asked to boot and is no node yet.
type Newcomer struct {
	MAC       string    `json:"mac"`
	Address   string    `json:"address,omitempty"`
	Vendor    string    `json:"vendor,omitempty"`
	Firmware  string    `json:"firmware,omitempty"`
	FirstSeen time.Time `json:"firstSeen,omitzero"`
	LastSeen  time.Time `json:"lastSeen,omitzero"`
}

// overview returns the fleet's overview, rebuilt when a change was seen
// or refreshEvery passed; the streams are always read afresh.
func (o *ops) overview() *Overview {
	o.ovMu.Lock()
	if o.ov != nil && !o.ovDirty && time.Since(o.ovAt) < refreshEvery {
		ov := *o.ov
		o.ovMu.Unlock()
		ov.Streams = o.streams()
		return &ov
	}
	o.ovDirty = false // a change from now on makes the next call rebuild
	o.ovMu.Unlock()

	if o.versionsStale() {
		o.versions()
	}
	now := time.Now()
	ov := &Overview{Time: now.UTC(), Nodes: []NodeView{}, Versions: []VersionView{}, Reclone: len(o.s.o.Rsh) > 0}
	sts, err := o.s.nodes.All()
	if err != nil {
		o.log.Error("reading the node store", "err", err)
	}
	pins, err := o.s.nodes.Pins()
	if err != nil {
		o.log.Error("reading the node store's pins", "err", err)
	}
	for _, st := range sts {
		ov.Nodes = append(ov.Nodes, o.nodeView(st, pins[st.Node], now))
	}
	o.ovMu.Lock()
	list := o.vers
	o.ovMu.Unlock()
	ov.Versions = versionViews(list, sts, pins)
	for _, v := range ov.Versions {
		if v.Status == VersionCurrent {
			ov.Current = v.Version
		}
	}
	if o.s.o.Newcomers != nil {
		ov.Newcomers = append([]Newcomer{}, o.s.o.Newcomers()...)
		for i := range ov.Newcomers {
			n := &ov.Newcomers[i]
			n.MAC, n.Address = fleet.Clean(n.MAC, 64), fleet.Clean(n.Address, 64)
			n.Vendor, n.Firmware = fleet.Clean(n.Vendor, 128), fleet.Clean(n.Firmware, 64)
		}
	}
	o.ovMu.Lock()
	o.ov, o.ovAt = ov, now
	o.ovMu.Unlock()
	cp := *ov
	cp.Streams = o.streams()
	return &cp
}

func (o *ops) nodeView(st fleet.State, pin string, now time.Time) NodeView {
	state := st.State
	if state == "" {
		state = fleet.Unknown
	}
	return NodeView{Node: st.Node, State: state, Summary: st.Summary(), Op: st.Operation(),
		Step: fleet.Clean(st.Step, 32), StepStarted: st.StepStarted, Version: st.Version, Assigned: pin,
		Done: st.Done, Total: st.Total, Percent: st.Percent(), Rate: o.rateOf(st.Node, now),
		Error: fleet.Clean(st.Error, 4096), Detail: fleet.Clean(st.Detail, 1024), Attempt: st.Attempt,
		Address: fleet.Clean(st.Address, 64), Started: st.Started, Finished: st.Finished, When: st.When,
		HasLog: st.Log != ""}
}

// versionViews counts the nodes of each version and names its status.
func versionViews(list []versions.Entry, sts []fleet.State, pins map[string]string) []VersionView {
	out := []VersionView{}
	cur := ""
	for _, e := range list {
		if e.Current {
			cur = e.Version
		}
	}
	for _, e := range list {
		v := VersionView{Version: e.Version, Date: e.Date, Size: e.Size, Note: fleet.Clean(e.Note, 512),
			BadReason: fleet.Clean(e.BadReason, 512), Changed: e.Changed}
		for _, st := range sts {
			if st.Version != e.Version {
				continue
			}
			switch st.State {
			case fleet.Done:
				v.Nodes++
			case fleet.Waiting, fleet.Cloning:
				v.Active++
			}
		}
		for _, p := range pins {
			if p == e.Version {
				v.Pinned++
			}
		}
		switch {
		case e.Current:
			v.Status = VersionCurrent
		case e.Bad:
			v.Status = VersionBad
		case v.Pinned > 0 || cur != "" && versions.CompareStrings(e.Version, cur) > 0:
			v.Status = VersionCanary
		default:
			v.Status = VersionOld
		}
		out = append(out, v)
	}
	return out
}

// streams reads the streams and the byte counts afresh; the totals are
// summed from the versions' counts, which have one owner each: the HTTP
// answers (ops.served), the seeders (SeedBytes), the tracker (PeerBytes).
func (o *ops) streams() StreamsView {
	master := o.served.counts()
	if o.s.o.SeedBytes != nil {
		for v, n := range o.s.o.SeedBytes() {
			master[v] += n
		}
	}
	var peers map[string]int64
	swarm := o.s.o.PeerBytes != nil
	if swarm {
		peers = o.s.o.PeerBytes()
	}
	sv := StreamsView{Stats: o.s.Stats(), Versions: versionBytes(master, peers, swarm)}
	if swarm {
		sv.PeerBytes = new(int64)
	}
	for _, v := range sv.Versions {
		sv.Bytes += v.Bytes
		if v.PeerBytes != nil {
			*sv.PeerBytes += *v.PeerBytes
		}
	}
	return sv
}

// versionBytes lists the versions with bytes served by the master or the
// peers, newest first; swarm says the peers' counts are known.
func versionBytes(master, peers map[string]int64, swarm bool) []VersionBytes {
	out := []VersionBytes{}
	seen := map[string]bool{}
	for _, m := range []map[string]int64{master, peers} {
		for v, n := range m {
			if n == 0 || seen[v] {
				continue
			}
			seen[v] = true
			vb := VersionBytes{Version: v, Bytes: master[v]}
			if swarm {
				p := peers[v]
				vb.PeerBytes = &p
			}
			out = append(out, vb)
		}
	}
	slices.SortFunc(out, func(a, b VersionBytes) int { return versions.CompareStrings(b.Version, a.Version) })
	return out
}

// versionsStale says the cached versions are older than the store's.
func (o *ops) versionsStale() bool {
	mark := o.s.store.Mark()
	o.ovMu.Lock()
	defer o.ovMu.Unlock()
	return o.versAt.IsZero() || mark != o.versMark || time.Since(o.versAt) > versionsEvery
}

// versions re-reads the store's versions and logs what changed since the
// last read (publish, promote, rollback, bad marks, prune: by this
// server's page or another process).
func (o *ops) versions() {
	mark := o.s.store.Mark()
	list, err := o.s.store.List()
	now := time.Now()
	o.ovMu.Lock()
	old, first := o.vers, o.versAt.IsZero()
	o.versMark, o.versAt = mark, now
	if err == nil {
		o.vers = list
		o.ovDirty = true
	}
	o.ovMu.Unlock()
	if err != nil {
		o.log.Warn("reading the image store", "err", err)
		return
	}
	if !first {
		o.logVersionChanges(old, list)
	}
}

func (o *ops) logVersionChanges(old, cur []versions.Entry) {
	was := map[string]versions.Entry{}
	oldCur := ""
	for _, e := range old {
		was[e.Version] = e
		if e.Current {
			oldCur = e.Version
		}
	}
	for _, e := range cur {
		w, ok := was[e.Version]
		delete(was, e.Version)
		switch {
		case !ok:
			o.log.Info("version", "event", "published", "version", e.Version, "current", e.Current, "size", e.Size)
		case e.Bad && !w.Bad:
			o.log.Warn("version", "event", "bad", "version", e.Version, "reason", e.BadReason)
		case !e.Bad && w.Bad:
			o.log.Info("version", "event", "good", "version", e.Version)
		}
		if e.Current && e.Version != oldCur {
			o.log.Info("version", "event", "current", "version", e.Version, "was", oldCur)
		}
	}
	for v := range was {
		o.log.Info("version", "event", "pruned", "version", v)
	}
}
