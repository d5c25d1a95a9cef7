package netclone

import (
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clonecd/clonecd/fleet"
)

// The server's metrics, GET /metrics in the Prometheus text format (see
// docs/ops.md for the list). The streams, bytes, nodes and
// versions are read when scraped; the runs and step durations are
// counted from the nodes' reports as the node store writes them: a step
// lasts from the first report that names it to the first report that
// names the next one (or says done), by the master's clock. A step that
// fails is counted with the run, not timed. Labels that nodes supply are
// bounded: at most maxLabelValues steps and versions, the rest "other".
type metrics struct {
	o        *ops
	reg      *prometheus.Registry
	runs     *prometheus.CounterVec
	runTime  *prometheus.HistogramVec
	stepTime *prometheus.HistogramVec
	requests *prometheus.CounterVec

	labelsMu sync.Mutex // guards labels
	labels   map[string]map[string]bool
}

const maxLabelValues = 64

var stepLabel = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

var (
	descActive  = prometheus.NewDesc("clonecd_streams_active", "Image streams being served now.", nil, nil)
	descQueued  = prometheus.NewDesc("clonecd_streams_queued", "Image requests waiting for a stream now.", nil, nil)
	descMax     = prometheus.NewDesc("clonecd_streams_max", "Image streams served at once at most (serve --max-streams).", nil, nil)
	descStarted = prometheus.NewDesc("clonecd_streams_started_total", "Image streams started.", nil, nil)
	descRefused = prometheus.NewDesc("clonecd_streams_refused_total", "Image requests sent away busy (queue full or waited too long).", nil, nil)
	descBytes   = prometheus.NewDesc("clonecd_served_bytes_total",
		"Bytes of image files served, by source: master (this server) or peers (nodes, through the swarm).", []string{"source"}, nil)
	descNodes    = prometheus.NewDesc("clonecd_nodes", "Nodes by state.", []string{"state"}, nil)
	descVersions = prometheus.NewDesc("clonecd_version_nodes",
		"Nodes done with each version, by the version's status (current, canary, bad, old).", []string{"version", "status"}, nil)
)

func newMetrics(o *ops) *metrics {
	m := &metrics{o: o, reg: prometheus.NewRegistry(), labels: map[string]map[string]bool{}}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clonecd_node_runs_total", Help: "Clones and syncs finished, by operation, result (done, failed) and version.",
	}, []string{"op", "result", "version"})
	m.runTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "clonecd_node_run_duration_seconds", Help: "Duration of finished clones and syncs, by operation and result.",
		Buckets: []float64{10, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 7200},
	}, []string{"op", "result"})
	m.stepTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "clonecd_node_step_duration_seconds", Help: "Duration of the steps of clones and syncs, by operation and step.",
		Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600},
	}, []string{"op", "step"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clonecd_http_requests_total", Help: "HTTP requests answered, by method and status code.",
	}, []string{"method", "code"})
	m.reg.MustRegister(m.runs, m.runTime, m.stepTime, m.requests, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Describe implements prometheus.Collector for the metrics read when
// scraped.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descQueued, descMax, descStarted, descRefused, descBytes, descNodes, descVersions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ov := m.o.overview()
	st := ov.Streams
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(st.Max))
	ch <- prometheus.MustNewConstMetric(descStarted, prometheus.CounterValue, float64(st.Served))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.Bytes), "master")
	if st.PeerBytes != nil {
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(*st.PeerBytes), "peers")
	}
	count := map[string]int{fleet.Waiting: 0, fleet.Cloning: 0, fleet.Done: 0, fleet.Failed: 0, fleet.Unknown: 0}
	for _, n := range ov.Nodes {
		count[n.State]++
	}
	for state, n := range count {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n), state)
	}
	for _, v := range ov.Versions {
		ch <- prometheus.MustNewConstMetric(descVersions, prometheus.GaugeValue, float64(v.Nodes), v.Version, v.Status)
	}
}

// label bounds the values of a label that nodes supply.
func (m *metrics) label(name, v string) string {
	m.labelsMu.Lock()
	defer m.labelsMu.Unlock()
	set := m.labels[name]
	if set == nil {
		set = map[string]bool{}
		m.labels[name] = set
	}
	if !set[v] && len(set) >= maxLabelValues {
		return "other"
	}
	set[v] = true
	return v
}

// maxRunTime is longer than any run: a longer one has a clock problem.
const maxRunTime = 48 * time.Hour

// nodeChanged counts finished runs and times steps (see metrics).
func (m *metrics) nodeChanged(old, cur fleet.State) {
	op := cur.Operation()
	finished := cur.State != old.State && (cur.State == fleet.Done || cur.State == fleet.Failed)
	if finished {
		v := cur.Version
		if v == "" {
			v = "none"
		}
		m.runs.WithLabelValues(op, cur.State, m.label("version", v)).Inc()
		if d := cur.Finished.Sub(cur.Started); !cur.Started.IsZero() && d >= 0 && d < maxRunTime {
			m.runTime.WithLabelValues(op, cur.State).Observe(d.Seconds())
		}
	}
	stepEnded := cur.Step != old.Step || cur.State == fleet.Done && finished
	if old.State == fleet.Cloning && old.Step != "" && !old.StepStarted.IsZero() && old.Operation() == op && stepEnded {
		step := "other"
		if stepLabel.MatchString(old.Step) {
			step = m.label("step", old.Step)
		}
		if d := cur.When.Sub(old.StepStarted); d >= 0 && d < maxRunTime {
			m.stepTime.WithLabelValues(op, step).Observe(d.Seconds())
		}
	}
}

// request counts an answered request.
func (m *metrics) request(method string, code int) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
