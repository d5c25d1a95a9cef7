package swarm

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPeerBytes: PeerBytes sums what the announcing peers say they
// uploaded, counted once per byte (announces repeat the running total),
// also a peer's last announce (stopped) and after it is gone; the peers
// of Add (the master's seeder) are not counted.
func TestPeerBytes(t *testing.T) {
	tr := NewTracker(TrackerOptions{})
	if err := tr.Add(testIH, "10.0.0.1:6881", true); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		remote, event string
		port          int
		want          int64
	}{
		{"10.0.0.2:40000", "started", 6881, 7}, // announce sends uploaded=7
		{"10.0.0.2:40000", "", 6881, 7},        // the same total again
		{"10.0.0.3:40000", "started", 6881, 14},
		{"10.0.0.3:40000", "stopped", 6881, 14},
		{"10.0.0.1:40000", "", 6881, 14}, // the Add'ed seeder's address
	} {
		announce(t, tr, testIH, a.remote, a.port, 0, a.event)
		if got := tr.PeerBytes(); got != a.want {
			t.Errorf("after %s's announce %q: PeerBytes() = %d; want %d", a.remote, a.event, got, a.want)
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
