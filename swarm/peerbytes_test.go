package swarm

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPeerBytes: the tracker counts the bytes the announcing peers say
// they uploaded per infohash, once per byte (announces repeat the running
// total): a peer that announces less (restarted) takes nothing back, a
// peer's last announce (stopped) counts and so does a peer back after it,
// from 0; the peers of Add (the master's seeder) count nothing; PeerBytes
// is the sum over the infohashes.
func TestPeerBytes(t *testing.T) {
	ihB := strings.Repeat("b", 40)
	tr := NewTracker(TrackerOptions{})
	if err := tr.Add(testIH, "10.0.0.9:6881", true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		ih       string
		remote   string
		uploaded int64
		event    string
		want     map[string]int64
	}{
		{"first announce counts whole", testIH, "10.0.0.2:1", 100, "started", map[string]int64{testIH: 100}},
		{"the same total again", testIH, "10.0.0.2:1", 100, "", map[string]int64{testIH: 100}},
		{"growth counts", testIH, "10.0.0.2:1", 150, "", map[string]int64{testIH: 150}},
		{"less takes nothing back", testIH, "10.0.0.2:1", 120, "", map[string]int64{testIH: 150}},
		{"another infohash apart", ihB, "10.0.0.3:1", 40, "started", map[string]int64{testIH: 150, ihB: 40}},
		{"same peer, other infohash", testIH, "10.0.0.3:1", 10, "started", map[string]int64{testIH: 160, ihB: 40}},
		{"stopped counts its growth", ihB, "10.0.0.3:1", 60, "stopped", map[string]int64{testIH: 160, ihB: 60}},
		{"back after stopped counts from 0", ihB, "10.0.0.3:1", 5, "started", map[string]int64{testIH: 160, ihB: 65}},
		{"a peer of Add counts nothing", testIH, "10.0.0.9:40000", 1000, "", map[string]int64{testIH: 160, ihB: 65}},
	} {
		if a := announceUploaded(t, tr, tt.ih, tt.remote, 6881, 1, tt.uploaded, tt.event); a.Failure != "" {
			t.Fatalf("%s: announce failed: %s", tt.name, a.Failure)
		}
		got := tr.PeerBytesByInfoHash()
		var sum int64
		for ih, n := range tt.want {
			sum += n
			if got[ih] != n {
				t.Errorf("%s: PeerBytesByInfoHash()[%.8s…] = %d; want %d", tt.name, ih, got[ih], n)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: PeerBytesByInfoHash() = %v; want %v", tt.name, got, tt.want)
		}
		if total := tr.PeerBytes(); total != sum {
			t.Errorf("%s: PeerBytes() = %d; want the sum %d", tt.name, total, sum)
		}
	}
}

// TestAnnounceEveryAddress: a peer Add'ed on every address (the master's
// seeder on 0.0.0.0:6881) is handed out at the address the node reached
// the tracker on.
func TestAnnounceEveryAddress(t *testing.T) {
	tr := NewTracker(TrackerOptions{})
	if err := tr.Add(testIH, "0.0.0.0:6881", true); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/swarm/announce", nil)
	local := &net.TCPAddr{IP: net.ParseIP("10.9.8.7"), Port: 8443}
	ctx := context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local))
	if got := localAddr(r.WithContext(ctx)).String(); got != "10.9.8.7" {
		t.Errorf("localAddr = %s; want 10.9.8.7", got)
	}
	if got := localAddr(r).String(); got != "0.0.0.0" {
		t.Errorf("localAddr without a local address = %s; want 0.0.0.0", got)
	}
}
