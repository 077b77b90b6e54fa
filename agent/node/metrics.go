package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/camfleet/camfleet/agent/capture"
)

// Metrics are the agent's Prometheus metrics. A nil *Metrics counts nothing.
type Metrics struct {
	Frames       *prometheus.CounterVec
	MotionFrames *prometheus.CounterVec
	MotionEvents *prometheus.CounterVec
	StatusWrites prometheus.Counter
	// StateLoadFailures counts state files refused at start, by reason (missing, empty,
	// corrupt, checksum, version, invalid).
	StateLoadFailures *prometheus.CounterVec
}

// NewMetrics registers the agent's metrics with reg; live gauges (fps, stream clients,
// dropped frames) are read from agent when scraped.
func NewMetrics(reg prometheus.Registerer, agent func() *Agent) (*Metrics, error) {
	m := &Metrics{
		Frames:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "camfleet_agent_frames_total", Help: "Frames captured, by camera and format."}, []string{"camera", "format"}),
		MotionFrames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "camfleet_agent_motion_frames_total", Help: "Frames that showed motion, by camera."}, []string{"camera"}),
		MotionEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "camfleet_agent_motion_events_total", Help: "Motion events started, by camera."}, []string{"camera"}),
		StatusWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "camfleet_agent_status_writes_total", Help: "Camera status writes to the API server."}),
		StateLoadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "camfleet_agent_state_file_load_failures_total",
			Help: "State files of verification material refused at start, by reason: missing, empty, corrupt, checksum, version, invalid."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.Frames, m.MotionFrames, m.MotionEvents, m.StatusWrites, m.StateLoadFailures, &live{agent: agent}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) frame(key types.NamespacedName) func(capture.Format, bool) {
	if m == nil {
		return nil
	}
	name := key.String()
	return func(f capture.Format, moving bool) {
		m.Frames.WithLabelValues(name, string(f)).Inc()
		if moving {
			m.MotionFrames.WithLabelValues(name).Inc()
		}
	}
}

func (m *Metrics) motionEvent(key types.NamespacedName) {
	if m != nil {
		m.MotionEvents.WithLabelValues(key.String()).Inc()
	}
}

func (m *Metrics) statusWrite() {
	if m != nil {
		m.StatusWrites.Inc()
	}
}

func (m *Metrics) stateLoadFailed(reason string) {
	if m != nil {
		m.StateLoadFailures.WithLabelValues(reason).Inc()
	}
}

// live reports per-camera gauges at scrape time.
type live struct{ agent func() *Agent }

var (
	fpsDesc     = prometheus.NewDesc("camfleet_agent_fps", "Measured frame rate, by camera.", []string{"camera"}, nil)
	clientsDesc = prometheus.NewDesc("camfleet_agent_stream_clients", "MJPEG stream clients attached, by camera.", []string{"camera"}, nil)
	droppedDesc = prometheus.NewDesc("camfleet_agent_dropped_frames_total", "Frames the motion detector could not read, by camera.", []string{"camera"}, nil)
	skippedDesc = prometheus.NewDesc("camfleet_agent_stream_skipped_frames_total", "Frames slow or rate-capped stream clients skipped, by camera.", []string{"camera"}, nil)
	sourceDesc  = prometheus.NewDesc("camfleet_agent_verification_source", "1 for where the verification material enforced comes from: apiserver, statefile (control-plane outage) or none (every token refused).", []string{"source"}, nil)
)

func (l *live) Describe(ch chan<- *prometheus.Desc) {
	ch <- fpsDesc
	ch <- clientsDesc
	ch <- droppedDesc
	ch <- skippedDesc
	ch <- sourceDesc
}

func (l *live) Collect(ch chan<- prometheus.Metric) {
	a := l.agent()
	if a == nil {
		return
	}
	cur, _ := a.VerificationSource()
	for _, s := range []string{SourceAPIServer, SourceStateFile, SourceNone} {
		v := 0.0
		if s == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(sourceDesc, prometheus.GaugeValue, v, s)
	}
	for _, c := range a.List() {
		s := c.Stats()
		name := c.Key.String()
		ch <- prometheus.MustNewConstMetric(fpsDesc, prometheus.GaugeValue, s.FPS, name)
		ch <- prometheus.MustNewConstMetric(clientsDesc, prometheus.GaugeValue, float64(c.Hub.Clients()), name)
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.Dropped), name)
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(c.Hub.Skipped()), name)
	}
}
