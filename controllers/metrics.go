package controllers

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// KeyMetrics are the signing-key metrics: rotations by reason, and the age of each policy's
// active key, computed at scrape time so it never goes stale between reconciles. Labels are
// names only; no key material, kid or token ever becomes a label.
type KeyMetrics struct {
	rotations *prometheus.CounterVec
	age       *prometheus.Desc
	clock     clock.PassiveClock

	mu        sync.Mutex
	activated map[types.NamespacedName]time.Time
}

// NewKeyMetrics registers the key metrics with reg.
func NewKeyMetrics(reg prometheus.Registerer, c clock.PassiveClock) (*KeyMetrics, error) {
	m := &KeyMetrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "camfleet_key_rotations_total",
			Help: "Signing keys that started signing, by policy and reason (RotationDue, EmergencyRotation, NoActiveKey, AlgorithmChanged).",
		}, []string{"namespace", "policy", "reason"}),
		age: prometheus.NewDesc("camfleet_active_key_age_seconds",
			"Seconds since the policy's active signing key started signing.", []string{"namespace", "policy"}, nil),
		clock:     c,
		activated: map[types.NamespacedName]time.Time{},
	}
	if err := reg.Register(m.rotations); err != nil {
		return nil, err
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Describe implements prometheus.Collector for the active-key age.
func (m *KeyMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.age }

// Collect implements prometheus.Collector for the active-key age.
func (m *KeyMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	for p, t := range m.activated {
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, now.Sub(t).Seconds(), p.Namespace, p.Name)
	}
}

func (m *KeyMetrics) rotated(p *camv1.TokenPolicy, reason string) {
	if m != nil {
		m.rotations.WithLabelValues(p.Namespace, p.Name, reason).Inc()
	}
}

func (m *KeyMetrics) activeKey(p *camv1.TokenPolicy, activated time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.activated[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = activated
}

func (m *KeyMetrics) forget(p types.NamespacedName) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.activated, p)
}
