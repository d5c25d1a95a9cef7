package swarm

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

const testIH = "0123456789abcdef0123456789abcdef01234567"

// announceResp is a decoded tracker answer.
type announceResp struct {
	Failure    string `bencode:"failure reason"`
	Interval   int    `bencode:"interval"`
	Complete   int    `bencode:"complete"`
	Incomplete int    `bencode:"incomplete"`
	Peers      string `bencode:"peers"`
	Peers6     string `bencode:"peers6"`
}

// announce sends an announce from remote (ip:port) with the peer port,
// left and event, saying it uploaded 7 bytes.
func announce(t *testing.T, tr *Tracker, ih, remote string, port int, left int64, event string) announceResp {
	t.Helper()
	return announceUploaded(t, tr, ih, remote, port, left, 7, event)
}

// announceUploaded is announce saying it uploaded bytes.
func announceUploaded(t *testing.T, tr *Tracker, ih, remote string, port int, left, uploaded int64, event string) announceResp {
	t.Helper()
	raw, _ := hex.DecodeString(ih)
	q := url.Values{"info_hash": {string(raw)}, "peer_id": {strings.Repeat("p", 20)}, "port": {fmt.Sprint(port)},
		"left": {fmt.Sprint(left)}, "uploaded": {fmt.Sprint(uploaded)}, "downloaded": {"0"}, "compact": {"1"}, "event": {event}}
	r := httptest.NewRequest("GET", "/swarm/announce?"+q.Encode(), nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	tr.ServeHTTP(w, r)
	var resp announceResp
	if err := bencode.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("announce answer %q: %v", w.Body.Bytes(), err)
	}
	return resp
}

// peersOf decodes a compact IPv4 peer list.
func peersOf(s string) []string {
	var out []string
	for i := 0; i+6 <= len(s); i += 6 {
		out = append(out, fmt.Sprintf("%d.%d.%d.%d:%d", s[i], s[i+1], s[i+2], s[i+3], int(s[i+4])<<8|int(s[i+5])))
	}
	return out
}

// TestTracker: announces register peers (by the request's address and
// the announced port), each gets the others in compact form and never
// itself; a seed gets no seeds; "stopped" removes; silent peers expire
// after three intervals; Add'ed peers do not; Allow refuses other
// torrents; Pending raises incomplete; scrape counts.
func TestTracker(t *testing.T) {
	now := time.Unix(1e9, 0)
	pending := 0
	tr := NewTracker(TrackerOptions{
		Allow:   func(ih string) bool { return ih == testIH },
		Pending: func(string) int { return pending },
		Now:     func() time.Time { return now },
	})
	if err := tr.Add(testIH, "10.0.0.1:6881", true); err != nil {
		t.Fatal(err)
	}
	a := announce(t, tr, testIH, "10.0.0.2:40000", 6881, 100, "started")
	if got := peersOf(a.Peers); len(got) != 1 || got[0] != "10.0.0.1:6881" || a.Interval != 60 || a.Complete != 1 || a.Incomplete != 1 {
		t.Errorf("first announce = %+v, peers %v; want the seeder only, interval 60, 1 seed, 1 leecher", a, got)
	}
	a = announce(t, tr, testIH, "10.0.0.3:40000", 6881, 100, "started")
	if got := strings.Join(sortedStrings(peersOf(a.Peers)), " "); got != "10.0.0.1:6881 10.0.0.2:6881" {
		t.Errorf("second announce peers = %s; want the seeder and the first node", got)
	}
	a = announce(t, tr, testIH, "10.0.0.2:40001", 6881, 0, "completed")
	if got := peersOf(a.Peers); len(got) != 1 || got[0] != "10.0.0.3:6881" {
		t.Errorf("a seed's announce peers = %v; want only the leecher", got)
	}
	if s := tr.Stats(testIH); s.Seeders != 2 || s.Leechers != 1 || s.Uploaded != 14 {
		t.Errorf("Stats = %+v; want 2 seeders, 1 leecher, 14 bytes uploaded", s)
	}
	pending = 5
	if a := announce(t, tr, testIH, "10.0.0.3:40000", 6881, 50, ""); a.Incomplete != 5 {
		t.Errorf("incomplete with 5 pending = %d; want 5", a.Incomplete)
	}
	pending = 0
	announce(t, tr, testIH, "10.0.0.3:40000", 6881, 50, "stopped")
	if s := tr.Stats(testIH); s.Leechers != 0 {
		t.Errorf("after stopped: %+v; want no leecher", s)
	}
	now = now.Add(3*AnnounceInterval + time.Second)
	if s := tr.Stats(testIH); s.Seeders != 1 {
		t.Errorf("after 3 intervals: %+v; want only the added seeder", s)
	}
	if a := announce(t, tr, strings.Repeat("f", 40), "10.0.0.9:1", 6881, 1, ""); !strings.Contains(a.Failure, "not served here") {
		t.Errorf("announce of another torrent = %+v; want a failure", a)
	}
	tr.Remove(testIH, "10.0.0.1:6881")
	if s := tr.Stats(testIH); s.Seeders != 0 {
		t.Errorf("after Remove: %+v", s)
	}

	// Scrape, and Needed through a real server.
	srv := httptest.NewServer(tr)
	defer srv.Close()
	announce(t, tr, testIH, "10.0.0.4:1", 6881, 10, "started")
	if !Needed(srv.Client(), srv.URL+"/swarm/announce", testIH) {
		t.Errorf("Needed with a leecher = false")
	}
	announce(t, tr, testIH, "10.0.0.4:1", 6881, 0, "completed")
	if Needed(srv.Client(), srv.URL+"/swarm/announce", testIH) {
		t.Errorf("Needed with only seeds = true")
	}
	pending = 1
	if !Needed(srv.Client(), srv.URL+"/swarm/announce", testIH) {
		t.Errorf("Needed with a pending node = false")
	}
	if !Needed(srv.Client(), "http://127.0.0.1:1/announce", testIH) {
		t.Errorf("Needed with no tracker = false; want true (keep seeding)")
	}
}

func sortedStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestAnnounceRefusals: malformed announces get a failure reason.
func TestAnnounceRefusals(t *testing.T) {
	tr := NewTracker(TrackerOptions{})
	for _, tt := range []struct{ query, want string }{
		{"info_hash=short&port=1", "info_hash"},
		{"info_hash=" + strings.Repeat("a", 20) + "&port=0", "port"},
		{"info_hash=" + strings.Repeat("a", 20) + "&port=70000", "port"},
		{"info_hash=" + strings.Repeat("a", 20) + "&port=1&left=-1", "left"},
		{"info_hash=" + strings.Repeat("a", 20) + "&port=1&event=paused", "event"},
		{"info_hash=" + strings.Repeat("a", 20) + "&port=1&numwant=x", "numwant"},
	} {
		r := httptest.NewRequest("GET", "/announce?"+tt.query, nil)
		w := httptest.NewRecorder()
		tr.ServeHTTP(w, r)
		var resp announceResp
		bencode.Unmarshal(w.Body.Bytes(), &resp)
		if !strings.Contains(resp.Failure, tt.want) {
			t.Errorf("announce ?%s = %q; want a failure about %s", tt.query, w.Body.String(), tt.want)
		}
	}
	w := httptest.NewRecorder()
	tr.ServeHTTP(w, httptest.NewRequest("POST", "/announce", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d; want 405", w.Code)
	}
}

func FuzzAnnounce(f *testing.F) {
	f.Add("info_hash=aaaaaaaaaaaaaaaaaaaa&port=6881&left=10&event=started&numwant=3", "10.0.0.1:5")
	f.Add("info_hash=aaaaaaaaaaaaaaaaaaaa&port=6881", "[::1]:5")
	tr := NewTracker(TrackerOptions{})
	f.Fuzz(func(t *testing.T, query, remote string) {
		r := httptest.NewRequest("GET", "/announce", nil)
		r.URL.RawQuery = query
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		tr.ServeHTTP(w, r)
		var resp announceResp
		if err := bencode.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Errorf("answer to %q is not bencode: %q", query, w.Body.Bytes())
		}
		if len(resp.Peers)%6 != 0 || len(resp.Peers6)%18 != 0 {
			t.Errorf("peer lists of %d and %d bytes", len(resp.Peers), len(resp.Peers6))
		}
	})
}

// TestScrapeURL follows BEP 48's rule.
func TestScrapeURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://s:8080/swarm/announce", "http://s:8080/swarm/scrape"},
		{"http://s/announce?x=1", "http://s/scrape?x=1"},
		{"http://s/a", ""},
	} {
		if got := ScrapeURL(tt.in); got != tt.want {
			t.Errorf("ScrapeURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
