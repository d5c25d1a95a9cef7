package netclone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"time"
)

// The event stream (GET /api/events, server-sent events) the fleet page
// follows. It opens with "overview" (an Overview) and then sends what
// changed:
//
//	nodes      []NodeView   nodes new or changed
//	gone       []string     nodes no longer in the store
//	versions   []VersionView (all, when any changed)
//	streams    StreamsView
//	newcomers  []Newcomer   (all, when any changed)
//
// A change this server writes is sent at once; one another process
// writes within refreshEvery; the streams' counters once a second while
// they move. A comment line every keepAlive keeps proxies from closing
// an idle stream. Past maxEventStreams open streams the answer is 503
// and the page polls /api/fleet instead.
const (
	keepAlive   = 15 * time.Second
	eventWrite  = 30 * time.Second // to write one event
	streamsTick = time.Second
)

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch, ok := s.ops.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many event streams; poll /api/fleet", http.StatusServiceUnavailable)
		return
	}
	defer s.ops.unsubscribe(ch)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx in front: do not buffer
	send := func(event string, v any) bool {
		var b bytes.Buffer
		if event != "" {
			data, err := json.Marshal(v)
			if err != nil {
				return false
			}
			fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", event, data)
		} else {
			b.WriteString(": keep-alive\n\n")
		}
		rc.SetWriteDeadline(time.Now().Add(eventWrite))
		if _, err := w.Write(b.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n\n")
	last := s.ops.overview()
	if !send("overview", last) {
		return
	}
	tick := time.NewTicker(streamsTick)
	defer tick.Stop()
	idle := time.NewTimer(keepAlive)
	defer idle.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ops.stop:
			return
		case <-idle.C:
			if !send("", nil) {
				return
			}
			idle.Reset(keepAlive)
			continue
		case <-ch:
		case <-tick.C:
		}
		cur := s.ops.overview()
		for _, ev := range diffOverview(last, cur) {
			if !send(ev.name, ev.data) {
				return
			}
			idle.Reset(keepAlive)
		}
		last = cur
	}
}

type event struct {
	name string
	data any
}

// diffOverview lists the events that take a page from a to b.
func diffOverview(a, b *Overview) []event {
	var evs []event
	old := map[string]NodeView{}
	for _, n := range a.Nodes {
		old[n.Node] = n
	}
	changed := []NodeView{}
	for _, n := range b.Nodes {
		if o, ok := old[n.Node]; !ok || o != n {
			changed = append(changed, n)
		}
		delete(old, n.Node)
	}
	if len(changed) > 0 {
		evs = append(evs, event{"nodes", changed})
	}
	if len(old) > 0 {
		gone := []string{}
		for n := range old {
			gone = append(gone, n)
		}
		evs = append(evs, event{"gone", gone})
	}
	if !reflect.DeepEqual(a.Versions, b.Versions) || a.Current != b.Current || a.Reclone != b.Reclone {
		evs = append(evs, event{"versions", struct {
			Current  string        `json:"current"`
			Versions []VersionView `json:"versions"`
			Reclone  bool          `json:"reclone"`
		}{b.Current, b.Versions, b.Reclone}})
	}
	if !reflect.DeepEqual(a.Streams, b.Streams) {
		evs = append(evs, event{"streams", b.Streams})
	}
	if !reflect.DeepEqual(a.Newcomers, b.Newcomers) {
		evs = append(evs, event{"newcomers", b.Newcomers})
	}
	return evs
}
