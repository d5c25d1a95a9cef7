package netclone

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
)

// opsServer serves the store in dir with a JSON log in a buffer.
func opsServer(t *testing.T, dir string, o ServerOptions) (*httptest.Server, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	srv := serverWith(t, dir, o)
	ts := httptest.NewUnstartedServer(srv)
	ts.Config = srv.HTTPServer()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, logs
}

// scrape parses the server's /metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := adminClient.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// sample finds the metric of family name whose labels include want.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return -1
}

func post(t *testing.T, url string, body any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := adminClient.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestMetrics: /metrics parses with the Prometheus text parser and says
// what happened: streams and bytes served, runs by result and version,
// step durations from the nodes' reports, nodes by state, versions; the
// step label is bounded whatever the nodes send.
func TestMetrics(t *testing.T) {
	dir, _, v20 := store(t, 256<<10)
	ts, _ := opsServer(t, dir, ServerOptions{MaxStreams: 3})
	get(t, ts.URL+"/node.cpio.gz", nil)
	get(t, ts.URL+"/nope", nil) // a 404 serves no image bytes
	node := func(name string, states ...fleet.State) {
		for _, st := range states {
			post(t, ts.URL+"/api/nodes/"+name, st)
			time.Sleep(20 * time.Millisecond)
		}
	}
	node("s001", fleet.State{State: fleet.Cloning, Step: "setup", Version: "1.20"}, fleet.State{Step: "partition"},
		fleet.State{Step: "unpack"}, fleet.State{State: fleet.Done})
	node("s002", fleet.State{State: fleet.Cloning, Step: "setup", Version: "1.20"}, fleet.State{State: fleet.Failed, Error: "disk full"})
	node("s003", fleet.State{State: fleet.Cloning, Step: "setup", Version: "1.19", Op: fleet.OpSync}, fleet.State{State: fleet.Done})
	node("s004", fleet.State{State: fleet.Waiting})
	for i := 0; i < maxLabelValues+10; i++ {
		node("s005", fleet.State{State: fleet.Cloning, Step: fmt.Sprintf("x%d", i)})
	}
	node("s005", fleet.State{Step: "Not A Label!"}, fleet.State{Step: "setup"})

	mfs := scrape(t, ts.URL)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"clonecd_streams_active", nil, 0},
		{"clonecd_streams_max", nil, 3},
		{"clonecd_streams_started_total", nil, 1},
		{"clonecd_streams_queued", nil, 0},
		{"clonecd_served_bytes_total", map[string]string{"source": "master"}, float64(len(v20))},
		{"clonecd_node_runs_total", map[string]string{"op": "clone", "result": "done", "version": "1.20"}, 1},
		{"clonecd_node_runs_total", map[string]string{"op": "clone", "result": "failed", "version": "1.20"}, 1},
		{"clonecd_node_runs_total", map[string]string{"op": "sync", "result": "done", "version": "1.19"}, 1},
		{"clonecd_nodes", map[string]string{"state": "done"}, 2},
		{"clonecd_nodes", map[string]string{"state": "failed"}, 1},
		{"clonecd_nodes", map[string]string{"state": "waiting"}, 1},
		{"clonecd_nodes", map[string]string{"state": "cloning"}, 1},
		{"clonecd_version_nodes", map[string]string{"version": "1.20", "status": "current"}, 1},
		{"clonecd_version_nodes", map[string]string{"version": "1.19", "status": "old"}, 1},
		{"clonecd_http_requests_total", map[string]string{"method": "GET", "code": "404"}, 1},
	} {
		if got := value(sample(mfs, tt.name, tt.labels)); got != tt.want {
			t.Errorf("%s%v = %v; want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if sample(mfs, "clonecd_served_bytes_total", map[string]string{"source": "peers"}) != nil {
		t.Error("bytes served by peers without a swarm")
	}
	for _, step := range []string{"setup", "partition", "unpack"} {
		m := sample(mfs, "clonecd_node_step_duration_seconds", map[string]string{"op": "clone", "step": step})
		if m == nil || m.Histogram.GetSampleCount() < 1 || m.Histogram.GetSampleSum() < 0.015 {
			t.Errorf("step %s: histogram %v; want a sample of at least 20ms", step, m)
		}
	}
	if m := sample(mfs, "clonecd_node_step_duration_seconds", map[string]string{"op": "clone", "step": "Not A Label!"}); m != nil {
		t.Error("a step that is no label became one")
	}
	steps := map[string]bool{}
	for _, m := range mfs["clonecd_node_step_duration_seconds"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "step" {
				steps[l.GetValue()] = true
			}
		}
	}
	if len(steps) != maxLabelValues+1 || !steps["other"] {
		t.Errorf("%d step labels (other: %v); want %d and other", len(steps), steps["other"], maxLabelValues+1)
	}
	if m := sample(mfs, "clonecd_node_run_duration_seconds", map[string]string{"op": "clone", "result": "done"}); m == nil || m.Histogram.GetSampleCount() != 1 {
		t.Errorf("run durations: %v", m)
	}
	if sample(mfs, "go_goroutines", nil) == nil || sample(mfs, "process_resident_memory_bytes", nil) == nil {
		t.Error("no Go or process metrics")
	}
}

// TestServedByVersion: the master's HTTP bytes count for the version of
// each answer: /v/V/'s V; for the store's top names the node's pinned
// version, else the version current when the request came; a range by
// what it sent; an error and the index text count nothing. The fleet's
// streams list the versions newest first, and the total, on the page and
// in /metrics, is their sum.
func TestServedByVersion(t *testing.T) {
	dir, v19, v20 := store(t, 64<<10)
	ts, _ := opsServer(t, dir, ServerOptions{})
	n19, n20 := int64(len(v19)), int64(len(v20))
	layout, err := os.ReadFile(filepath.Join(dir, "versions", "1.19", "node.sfdisk"))
	if err != nil {
		t.Fatal(err)
	}
	nl := int64(len(layout))
	pin := func() {
		if err := nodesOf(dir).Assign("s001", "1.19"); err != nil {
			t.Fatal(err)
		}
	}
	rollback := func() {
		if _, err := openStore(t, dir).Rollback("test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		before func()
		path   string
		hdr    map[string]string
		want   map[string]int64 // so far
	}{
		{"the current version's top name", nil, "/node.cpio.gz", nil, map[string]int64{"1.20": n20}},
		{"a version by /v/", nil, "/v/1.19/node.cpio.gz", nil, map[string]int64{"1.20": n20, "1.19": n19}},
		{"a range", nil, "/v/1.20/node.cpio.gz", map[string]string{"Range": "bytes=0-999"}, map[string]int64{"1.20": n20 + 1000, "1.19": n19}},
		{"a pinned node's top name", pin, "/node.cpio.gz", map[string]string{NodeHeader: "s001"}, map[string]int64{"1.20": n20 + 1000, "1.19": 2 * n19}},
		{"the top name once current changed", rollback, "/node.sfdisk", nil, map[string]int64{"1.20": n20 + 1000, "1.19": 2*n19 + nl}},
		{"a missing file", nil, "/v/1.20/nope", nil, map[string]int64{"1.20": n20 + 1000, "1.19": 2*n19 + nl}},
		{"an unsatisfiable range", nil, "/v/1.20/node.cpio.gz", map[string]string{"Range": "bytes=9999999-"}, map[string]int64{"1.20": n20 + 1000, "1.19": 2*n19 + nl}},
		{"the index text", nil, "/", nil, map[string]int64{"1.20": n20 + 1000, "1.19": 2*n19 + nl}},
	} {
		if tt.before != nil {
			tt.before()
		}
		get(t, ts.URL+tt.path, tt.hdr)
		_, b := get(t, ts.URL+"/api/fleet", nil)
		var ov Overview
		if err := json.Unmarshal(b, &ov); err != nil {
			t.Fatalf("%s: /api/fleet: %v: %.200s", tt.name, err, b)
		}
		st := ov.Streams
		var got []string
		var sum int64
		for _, v := range st.Versions {
			got = append(got, fmt.Sprintf("%s:%d", v.Version, v.Bytes))
			sum += v.Bytes
			if v.PeerBytes != nil {
				t.Errorf("%s: version %s has peer bytes without a swarm", tt.name, v.Version)
			}
		}
		var want []string
		for _, v := range []string{"1.20", "1.19"} { // newest first
			if n, ok := tt.want[v]; ok {
				want = append(want, fmt.Sprintf("%s:%d", v, n))
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: streams' versions %v; want %v", tt.name, got, want)
		}
		if st.Bytes != sum || st.PeerBytes != nil {
			t.Errorf("%s: streams' total %d (peers %v); want the versions' sum %d (peers null)", tt.name, st.Bytes, st.PeerBytes, sum)
		}
		if m := value(sample(scrape(t, ts.URL), "clonecd_served_bytes_total", map[string]string{"source": "master"})); m != float64(sum) {
			t.Errorf("%s: /metrics master bytes %v; want the versions' sum %d", tt.name, m, sum)
		}
	}
}

// TestEventStream: /api/events opens with the overview and sends a
// node's change as it happens, then versions when another process
// publishes (here: marks bad); past maxEventStreams the answer is 503.
func TestEventStream(t *testing.T) {
	dir, _, _ := store(t, 4096)
	ts, _ := opsServer(t, dir, ServerOptions{})
	resp, err := adminClient.Get(ts.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan [2]string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				events <- [2]string{name, v}
			}
		}
		close(events)
	}()
	next := func(want string) string {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended waiting for %s", want)
				}
				if ev[0] == want {
					return ev[1]
				}
			case <-timeout:
				t.Fatalf("no %s event", want)
			}
		}
	}
	var ov Overview
	json.Unmarshal([]byte(next("overview")), &ov)
	if ov.Current != "1.20" || len(ov.Versions) != 2 || len(ov.Nodes) != 0 || ov.Newcomers != nil || ov.Reclone {
		t.Fatalf("overview %+v", ov)
	}
	start := time.Now()
	post(t, ts.URL+"/api/nodes/s001", fleet.State{State: fleet.Cloning, Step: "unpack", Done: 5, Total: 10, Version: "1.20"})
	var nodes []NodeView
	json.Unmarshal([]byte(next("nodes")), &nodes)
	if len(nodes) != 1 || nodes[0].Node != "s001" || nodes[0].Percent != 50 || nodes[0].State != fleet.Cloning {
		t.Fatalf("nodes event %+v", nodes)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the node's change took %s to arrive", d)
	}
	if err := openStore(t, dir).MarkBad("1.19", "test"); err != nil { // another process
		t.Fatal(err)
	}
	for { // the node's change may have sent one before (its version's counts)
		var vs struct{ Versions []VersionView }
		json.Unmarshal([]byte(next("versions")), &vs)
		if len(vs.Versions) != 2 {
			t.Fatalf("versions event %+v", vs)
		}
		if vs.Versions[0].Status == VersionBad && vs.Versions[0].BadReason == "test" {
			break
		}
	}

	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	for i := 1; i < maxEventStreams; i++ {
		r, err := adminClient.Get(ts.URL + "/api/events")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, r)
	}
	r, err := adminClient.Get(ts.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("event stream %d: status %d; want 503", maxEventStreams+1, r.StatusCode)
	}
}

// TestActions: the page's actions do what the command line does and log
// who did it; a request from another site, or one that is not JSON, is
// refused before anything changes; reclone without a remote shell
// answers the command to run.
func TestActions(t *testing.T) {
	dir, _, _ := store(t, 4096)
	if _, err := openStore(t, dir).Promote("1.20", false); err != nil {
		t.Fatal(err)
	}
	ts, logs := opsServer(t, dir, ServerOptions{})
	current := func() string {
		e, err := openStore(t, dir).Current()
		if err != nil {
			t.Fatal(err)
		}
		return e.Version
	}
	call := func(action, ctype string, hdr map[string]string, body string) (int, actionResult) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/admin/api/"+action, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := adminClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var res actionResult
		if json.Unmarshal(b, &res) != nil {
			res.Message = strings.TrimSpace(string(b))
		}
		return resp.StatusCode, res
	}
	const js = "application/json"
	for _, tt := range []struct {
		name, action, ctype string
		hdr                 map[string]string
		body                string
		code                int
		msg                 string
		current             string
	}{
		{"cross-site", "promote", js, map[string]string{"Sec-Fetch-Site": "cross-site"}, `{"version":"1.19"}`, 403, "refused", "1.20"},
		{"other origin", "promote", js, map[string]string{"Origin": "http://evil.example"}, `{"version":"1.19"}`, 403, "refused", "1.20"},
		{"a form", "promote", "application/x-www-form-urlencoded", nil, `version=1.19`, 415, "JSON", "1.20"},
		{"text/plain JSON", "promote", "text/plain", nil, `{"version":"1.19"}`, 415, "JSON", "1.20"},
		{"unknown field", "promote", js, nil, `{"version":"1.19","evil":1}`, 400, "unknown field", "1.20"},
		{"bad version", "promote", js, nil, `{"version":"1.x"}`, 400, "", "1.20"},
		{"missing version", "promote", js, nil, `{"version":"9.9"}`, 404, "no version 9.9", "1.20"},
		{"promote", "promote", js, map[string]string{"Sec-Fetch-Site": "same-origin"}, `{"version":"1.19"}`, 200, "current version is now 1.19", "1.19"},
		{"rollback", "rollback", js, nil, `{"reason":"hangs\u001b[31m"}`, 200, "marked 1.19 bad; current version is now 1.20", "1.20"},
		{"promote bad", "promote", js, nil, `{"version":"1.19"}`, 409, "marked bad", "1.20"},
		{"assign bad", "assign", js, nil, `{"nodes":"s[001-002]","version":"1.19"}`, 409, "marked bad", "1.20"},
		{"mark good", "good", js, nil, `{"version":"1.19"}`, 200, "version 1.19 marked good", "1.20"},
		{"assign", "assign", js, nil, `{"nodes":"s[001-002] s007","version":"1.19"}`, 200, "3 nodes pinned to 1.19", "1.20"},
		{"assign bad nodeset", "assign", js, nil, `{"nodes":"s[002-001]","version":"1.19"}`, 400, "backwards", "1.20"},
		{"assign no nodes", "assign", js, nil, `{"version":"1.19"}`, 400, "no nodes", "1.20"},
		{"mark bad", "bad", js, nil, `{"version":"1.19","reason":"slow"}`, 200, "version 1.19 marked bad", "1.20"},
		{"reclone without rsh", "reclone", js, nil, `{"nodes":"s[001-002]","version":"1.20"}`, 409, "serve --rsh", "1.20"},
	} {
		code, res := call(tt.action, tt.ctype, tt.hdr, tt.body)
		if code != tt.code || !strings.Contains(res.Message, tt.msg) {
			t.Errorf("%s: %d %q; want %d and %q", tt.name, code, res.Message, tt.code, tt.msg)
		}
		if got := current(); got != tt.current {
			t.Errorf("%s: current version %s; want %s", tt.name, got, tt.current)
		}
		if tt.name == "reclone without rsh" && res.Command != "clonecd reclone --server "+ts.URL+" --version 1.20 s001 s002" {
			t.Errorf("reclone without rsh: command %q", res.Command)
		}
	}
	if pins, _ := nodesOf(dir).Pins(); pins["s001"] != "1.19" || pins["s007"] != "1.19" || len(pins) != 3 {
		t.Errorf("pins after assign: %v", pins)
	}
	if e, _ := openStore(t, dir).Get("1.19"); !e.Bad || e.BadReason != "slow" {
		t.Errorf("1.19 after mark bad: %+v", e.Record)
	}
	for _, want := range []string{`"msg":"action","action":"promote","by":"admin"`, `"action":"rollback"`, `"reason":"hangs[31m"`,
		`"msg":"version","event":"bad","version":"1.19","reason":"hangs[31m"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// TestRecloneFromPage: a server started with a remote shell reclones
// from the page: the shell (a fake node that streams the image and
// reports, as the real cloner does) is run per node and the nodes end
// done; the same nodes cannot be recloned twice at once.
func TestRecloneFromPage(t *testing.T) {
	dir, _, _ := store(t, 1<<20)
	work := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rsh := filepath.Join(work, "rsh")
	// The remote shell gets "--", the node and the command.
	os.WriteFile(rsh, []byte(`#!/bin/sh
[ "$1" = "--" ] && shift
echo "$1 $2" >>"`+work+`/rsh.log"
read -r cred
NETCLONE_FAKE_NODE=1 NODE_CREDENTIAL="$cred" NODE_NAME="$1" NODE_SERVER="$FAKE_SERVER" NODE_DISK="`+work+`/$1.img" NODE_LOG="`+work+`/$1.log" \
	setsid "`+self+`" >"`+work+`/$1.out" 2>&1 </dev/null &
echo "clonecd ramclone: rebooting"
`), 0o755)
	ts, logs := opsServer(t, dir, ServerOptions{Rsh: []string{rsh}})
	t.Setenv("FAKE_SERVER", ts.URL)
	resp := post(t, ts.URL+"/admin/api/reclone", actionRequest{Nodes: "s[001-002]"})
	if resp.StatusCode != 200 {
		t.Fatalf("reclone: %s", resp.Status)
	}
	if again := post(t, ts.URL+"/admin/api/reclone", actionRequest{Nodes: "s002"}); again.StatusCode != http.StatusConflict {
		t.Errorf("recloning s002 twice at once: %s", again.Status)
	}
	waitFor(t, 60*time.Second, func() bool {
		a, _ := readState(dir, "s001")
		b, _ := readState(dir, "s002")
		return a.State == fleet.Done && b.State == fleet.Done
	})
	waitFor(t, 10*time.Second, func() bool { return strings.Count(logs.String(), `"msg":"reclone","node"`) == 2 })
	b, _ := os.ReadFile(filepath.Join(work, "rsh.log"))
	if cmd := DefaultCommand + " --credential -"; string(b) != "s001 "+cmd+"\ns002 "+cmd+"\n" {
		t.Errorf("the remote shell ran %q", b)
	}
	if !strings.Contains(logs.String(), `"result":"done","ok":true`) {
		t.Errorf("the log lacks the results:\n%s", logs.String())
	}
}

// TestRequestLog: one JSON line per request with method, path, node,
// status, bytes and duration, and the admission decisions; the image's
// bytes are counted through sendfile.
func TestRequestLog(t *testing.T) {
	dir, _, v20 := store(t, 1<<20)
	ts, logs := opsServer(t, dir, ServerOptions{})
	get(t, ts.URL+"/node.cpio.gz", map[string]string{NodeHeader: "s009"})
	get(t, ts.URL+"/api/nodes/s042", nil)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	find := func(msg, key, v string) map[string]any {
		for _, m := range lines {
			if m["msg"] == msg && fmt.Sprint(m[key]) == v {
				return m
			}
		}
		t.Errorf("no %s line with %s=%s in %v", msg, key, v, lines)
		return map[string]any{}
	}
	img := find("request", "path", "/node.cpio.gz")
	if img["method"] != "GET" || img["node"] != "s009" || img["status"] != 200.0 || img["bytes"] != float64(len(v20)) || img["duration"] == nil {
		t.Errorf("the image's line: %v", img)
	}
	if m := find("request", "path", "/api/nodes/s042"); m["status"] != 404.0 || m["node"] != "s042" {
		t.Errorf("the 404's line: %v", m)
	}
	if m := find("admission", "decision", "admitted"); m["node"] != "s009" || m["version"] != "1.20" {
		t.Errorf("the admission's line: %v", m)
	}
}

// TestPages: a browser gets the page with a strict CSP, curl the old
// text; the assets are served with their types; a node page's name is a
// checked node name; /admin/ is the page with the actions.
func TestPages(t *testing.T) {
	dir, _, _ := store(t, 4096)
	ts, _ := opsServer(t, dir, ServerOptions{})
	html := map[string]string{"Accept": "text/html,application/xhtml+xml"}
	for _, tt := range []struct {
		path  string
		hdr   map[string]string
		code  int
		ctype string
		body  string
	}{
		{"/", html, 200, "text/html; charset=utf-8", `data-page="fleet" data-admin="false"`},
		{"/", nil, 200, "text/plain; charset=utf-8", "clonecd image server\ncurrent version: 1.20\n"},
		{"/admin/", html, 200, "text/html; charset=utf-8", `data-page="fleet" data-admin="true" data-base="/admin"`},
		{"/node/s001", html, 200, "text/html; charset=utf-8", `data-node="s001"`},
		{"/admin/node/s001", html, 200, "text/html; charset=utf-8", `href="/admin/"`},
		{"/node/-oProxyCommand=x", html, 400, "", ""},
		{"/ui/app.js", nil, 200, "text/javascript; charset=utf-8", "'use strict';"},
		{"/ui/app.css", nil, 200, "text/css; charset=utf-8", ":root"},
		{"/ui/index.html", nil, 404, "", ""},
		{"/api/nodeset?set=s%5B01-03%5D,x9", nil, 200, "application/json", `"s03",` + "\n" + `  "x9"`},
		{"/api/nodeset?set=s%5B3-1%5D", nil, 400, "", "backwards"},
		{"/api/nodes/s001/history", nil, 200, "application/json", "[]"},
	} {
		resp, b := get(t, ts.URL+tt.path, tt.hdr)
		if resp.StatusCode != tt.code || tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype || !strings.Contains(string(b), tt.body) {
			t.Errorf("GET %s: %d %q %.200q; want %d %q %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.code, tt.ctype, tt.body)
		}
		if tt.ctype == "text/html; charset=utf-8" {
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("GET %s: CSP %q", tt.path, csp)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("GET %s: the page may be framed", tt.path)
			}
		}
	}
	// The assets revalidate by ETag.
	resp, _ := get(t, ts.URL+"/ui/app.js", nil)
	again, _ := get(t, ts.URL+"/ui/app.js", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
		t.Errorf("app.js: ETag %q, then %d", resp.Header.Get("ETag"), again.StatusCode)
	}
	// A node's history, newest last.
	post(t, ts.URL+"/api/nodes/s001", fleet.State{State: fleet.Cloning, Step: "unpack", Version: "1.20"})
	post(t, ts.URL+"/api/nodes/s001", fleet.State{State: fleet.Failed, Error: "disk full"})
	_, b := get(t, ts.URL+"/api/nodes/s001/history", nil)
	var runs []fleet.Run
	if err := json.Unmarshal(b, &runs); err != nil || len(runs) != 1 || runs[0].Result != fleet.Failed || runs[0].Error != "disk full" {
		t.Errorf("history %s: %v", b, err)
	}
}
