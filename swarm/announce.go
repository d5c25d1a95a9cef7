package swarm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
)

// announceEvery is how often a node that still fetches announces itself
// with Options.Transport (the Tracker says AnnounceInterval; a node that
// starts with the others needs their addresses sooner than a minute).
const announceEvery = 5 * time.Second

// announcer announces a node to the server's Tracker with the caller's
// HTTP transport instead of the library's tracker client: that one does
// not check the server's certificate (InsecureSkipVerify in
// anacrolix/torrent's tracker/http), and the announce carries the node's
// credential.
type announcer struct {
	c      *http.Client
	url    string
	t      *torrent.Torrent
	peerID [20]byte
	port   int
	header http.Header
	logf   func(string, ...any)
}

// announce sends one announce and adds the peers of the answer; it
// returns the interval the tracker asked for.
func (a *announcer) announce(ctx context.Context, event string) (time.Duration, error) {
	u, err := url.Parse(a.url)
	if err != nil {
		return 0, err
	}
	st := a.t.Stats()
	ih := a.t.InfoHash()
	q := u.Query()
	q.Set("info_hash", string(ih[:]))
	q.Set("peer_id", string(a.peerID[:]))
	q.Set("port", strconv.Itoa(a.port))
	q.Set("uploaded", strconv.FormatInt(st.BytesWrittenData.Int64(), 10))
	q.Set("downloaded", strconv.FormatInt(st.BytesReadUsefulData.Int64(), 10))
	q.Set("left", strconv.FormatInt(a.t.Length()-a.t.BytesCompleted(), 10))
	q.Set("compact", "1")
	if event != "" {
		q.Set("event", event)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	addHeader(req, a.header)
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("tracker %s: %s", a.url, resp.Status)
	}
	var ar struct {
		Failure  string `bencode:"failure reason"`
		Interval int    `bencode:"interval"`
		Peers    string `bencode:"peers"`
		Peers6   string `bencode:"peers6"`
	}
	if err := bencode.Unmarshal(b, &ar); err != nil {
		return 0, fmt.Errorf("tracker %s: %w", a.url, err)
	}
	if ar.Failure != "" {
		return 0, fmt.Errorf("tracker %s: %s", a.url, ar.Failure)
	}
	var peers []torrent.PeerInfo
	for _, l := range []struct {
		b    string
		size int
	}{{ar.Peers, 6}, {ar.Peers6, 18}} {
		for i := 0; i+l.size <= len(l.b); i += l.size {
			ip, _ := netip.AddrFromSlice([]byte(l.b[i : i+l.size-2]))
			port := binary.BigEndian.Uint16([]byte(l.b[i+l.size-2 : i+l.size]))
			ap := netip.AddrPortFrom(ip, port)
			peers = append(peers, torrent.PeerInfo{Addr: torrent.StringAddr(ap.String()), Source: torrent.PeerSourceTracker})
		}
	}
	a.t.AddPeers(peers)
	return time.Duration(max(ar.Interval, 1)) * time.Second, nil
}

// run announces started, then every announceEvery while the image is
// incomplete (the tracker's interval after), completed once, and stopped
// when ctx ends.
func (a *announcer) run(ctx context.Context, done <-chan struct{}) {
	event, every := "started", announceEvery
	completed := false
	for {
		interval, err := a.announce(ctx, event)
		if err != nil && ctx.Err() == nil {
			a.logf("swarm: announce: %v", err)
		} else if err == nil {
			event = ""
		}
		if completed {
			every = max(interval, announceEvery)
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			a.announce(stop, "stopped")
			cancel()
			return
		case <-done:
			if !completed {
				completed, event = true, "completed"
				done = nil
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// localPort is the port a client listens on.
func localPort(cl *torrent.Client) (int, error) {
	for _, a := range cl.ListenAddrs() {
		if ta, ok := a.(*net.TCPAddr); ok && ta.Port != 0 {
			return ta.Port, nil
		}
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n != 0 {
				return n, nil
			}
		}
	}
	return 0, errors.New("the swarm client listens on no port")
}
