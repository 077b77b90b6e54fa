package node

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/camerastatus"
)

// statusTick is how often the agent looks at its cameras for status worth writing; looking
// is in memory, and writeDue decides what reaches the API server.
const statusTick = time.Second

// statusLoop writes each camera's status when writeDue says so.
func (a *Agent) statusLoop(ctx context.Context) error {
	t := a.opts.Clock.NewTicker(statusTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			a.reportAll(ctx)
		}
	}
}

func (a *Agent) reportAll(ctx context.Context) {
	a.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(a.cameras))
	for k := range a.cameras {
		keys = append(keys, k)
	}
	a.mu.Unlock()
	for _, k := range keys {
		if err := a.report(ctx, k); err != nil {
			a.opts.Log.Error(err, "Cannot write camera status", "camera", k.String())
		}
	}
	a.statusRounds.Add(1)
}

// report writes one camera's status if it is due.
func (a *Agent) report(ctx context.Context, key types.NamespacedName) error {
	a.mu.Lock()
	r := a.cameras[key]
	if r == nil {
		a.mu.Unlock()
		return nil
	}
	o := observed{generation: r.generation, endpoint: a.endpoint(key), stats: r.cam.Stats()}
	o.loaded, o.active, o.keysOK = a.Keys.Keys(r.policy)
	last, lastWrite, keysSince := r.lastStatus, r.lastWrite, r.keysSince
	a.mu.Unlock()

	cam := &camv1.Camera{}
	if err := a.client.Get(ctx, key, cam); err != nil {
		return client.IgnoreNotFound(err)
	}
	now := a.opts.Clock.Now()
	next := desiredStatus(cam.Status, o, now)
	if held := !sameKeys(last, next); held != !keysSince.IsZero() {
		keysSince = time.Time{}
		if held {
			keysSince = now
		}
		a.mu.Lock()
		if r := a.cameras[key]; r != nil {
			r.keysSince = keysSince
		}
		a.mu.Unlock()
	}
	if !writeDue(last, next, lastWrite, keysSince, now, keyReportOffset(a.opts.NodeName)) {
		return nil
	}
	hb := metav1.NewTime(now.Truncate(time.Second))
	next.LastHeartbeatTime = &hb
	if err := camerastatus.Apply(ctx, a.client, key, next, camerastatus.Agent); err != nil {
		return client.IgnoreNotFound(err)
	}
	a.opts.Metrics.statusWrite()
	a.mu.Lock()
	if r := a.cameras[key]; r != nil {
		r.lastStatus, r.lastWrite, r.keysSince = next, now, time.Time{}
	}
	a.mu.Unlock()
	return nil
}

// endpoint is the URL of a camera's API on this agent.
func (a *Agent) endpoint(key types.NamespacedName) string {
	if a.opts.Endpoint == "" {
		return ""
	}
	return a.opts.Endpoint + "/api/cameras/" + key.Namespace + "/" + key.Name + "/"
}
