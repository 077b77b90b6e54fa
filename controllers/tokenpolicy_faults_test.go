package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
)

// interceptedClient wraps a fresh client to the test API server with fault injection.
func interceptedClient(t *testing.T, funcs interceptor.Funcs) client.Client {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(c, funcs)
}

// killingClient fails every write after the first n, as if the controller died there.
func killingClient(t *testing.T, k *killSwitch) client.Client {
	return interceptedClient(t, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			if err := k.write(); err != nil {
				return err
			}
			return c.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			if err := k.write(); err != nil {
				return err
			}
			return c.Update(ctx, o, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
			if err := k.write(); err != nil {
				return err
			}
			return c.Patch(ctx, o, p, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			if err := k.write(); err != nil {
				return err
			}
			return c.Apply(ctx, o, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			if err := k.write(); err != nil {
				return err
			}
			return c.SubResource(sub).Patch(ctx, o, p, opts...)
		},
	})
}

// TestRestartAfterAnyWriteConverges stops the controller after each write of each step of a
// rotation (bootstrap, successor published, activation, removal, emergency rotation) and starts
// a fresh one: the stored state is consistent at every stop, nothing unpublished ever signs on
// schedule, and the restarted controller converges to the same keys.
// Checks DESIGN.md key-lifecycle invariant 5.
func TestRestartAfterAnyWriteConverges(t *testing.T) {
	steps := []struct {
		name    string
		prepare func(h *harness, p *camv1.TokenPolicy)
	}{
		{"bootstrap", func(*harness, *camv1.TokenPolicy) {}},
		{"successor published", func(h *harness, _ *camv1.TokenPolicy) { h.clock.SetTime(t0.Add(9 * time.Hour)) }},
		{"activation", func(h *harness, _ *camv1.TokenPolicy) { h.clock.SetTime(t0.Add(10 * time.Hour)) }},
		{"removal", func(h *harness, _ *camv1.TokenPolicy) { h.clock.SetTime(t0.Add(14*time.Hour + time.Minute)) }},
		{"emergency", func(h *harness, p *camv1.TokenPolicy) {
			h.clock.SetTime(t0.Add(15 * time.Hour))
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
				h.t.Fatal(err)
			}
			p.Annotations = map[string]string{camv1.AnnotationRotate: "now"}
			if err := env.Client.Update(context.Background(), p); err != nil {
				h.t.Fatal(err)
			}
		}},
	}
	for kill := 0; kill < 4; kill++ {
		t.Run(fmt.Sprintf("killed after %d writes", kill), func(t *testing.T) {
			h := newHarness(t)
			p := h.policy("crash", camv1.AlgorithmEdDSA)
			for i, step := range steps {
				// Earlier steps settle normally; each step is then run once by a controller
				// that dies after `kill` writes, and finished by a fresh one.
				step.prepare(h, p)
				ks := &killSwitch{n: kill}
				dying := h.reconciler(killingClient(t, ks))
				_, _ = h.reconcileWith(dying, "crash")
				st := h.state("crash")
				if a := st.set.Active(); a != nil && step.name != "bootstrap" && step.name != "emergency" && !st.published(a.ID) {
					t.Fatalf("step %s: after a stop, key %s signs but is not published", step.name, a.ID)
				}
				for _, k := range st.set.Keys {
					if !k.Published.IsZero() && !st.published(k.ID) {
						t.Fatalf("step %s: key %s is stamped published but is not in the JWKS", step.name, k.ID)
					}
				}
				h.r = h.reconciler(env.Client)
				h.settle("crash")
				st = h.checkInvariants("crash")
				want := []int{1, 2, 2, 1, 2}[i]
				if len(st.set.Keys) != want {
					t.Fatalf("step %s: %d keys after restart, want %d: %s", step.name, len(st.set.Keys), want, mustJSON(t, st.policy.Status.Keys))
				}
				if step.name == "emergency" && st.policy.Status.LastRotateRequest != "now" {
					t.Fatalf("emergency rotation not recorded after restart")
				}
			}
		})
	}
}

// TestConflictsLoseNothing injects update conflicts on every Secret and ConfigMap write at
// random, through several rotations: the stored keys match a conflict-free run's, and no key
// is lost or duplicated.
func TestConflictsLoseNothing(t *testing.T) {
	h := newHarness(t)
	h.policy("calm", camv1.AlgorithmEdDSA)
	h.policy("rough", camv1.AlgorithmEdDSA)
	rng := rand.New(rand.NewPCG(1, 2))
	conflicts := 0
	maybeConflict := func(o any) error {
		switch o.(type) {
		case *corev1.Secret, *corev1.ConfigMap, *corev1ac.ConfigMapApplyConfiguration:
			if rng.IntN(2) == 0 {
				conflicts++
				return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "injected", fmt.Errorf("injected"))
			}
		}
		return nil
	}
	rough := h.reconciler(interceptedClient(t, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			if err := maybeConflict(o); err != nil {
				return err
			}
			return c.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			if err := maybeConflict(o); err != nil {
				return err
			}
			return c.Update(ctx, o, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			if err := maybeConflict(o); err != nil {
				return err
			}
			return c.Apply(ctx, o, opts...)
		},
	}))
	for hour := 0; hour <= 40; hour++ {
		h.clock.SetTime(t0.Add(time.Duration(hour) * time.Hour))
		h.settle("calm")
		for range 30 {
			if _, err := h.reconcileWith(rough, "rough"); err == nil {
				break
			}
		}
		calm, hard := h.checkInvariants("calm"), h.checkInvariants("rough")
		if len(calm.set.Keys) != len(hard.set.Keys) {
			t.Fatalf("hour %d: %d keys with conflicts, %d without", hour, len(hard.set.Keys), len(calm.set.Keys))
		}
		for i, k := range calm.set.Keys {
			o := hard.set.Keys[i]
			if k.State != o.State || !k.Activates.Equal(o.Activates) {
				t.Fatalf("hour %d: key %d is %s from %s with conflicts, %s from %s without", hour, i, o.State, o.Activates, k.State, k.Activates)
			}
		}
	}
	if conflicts < 20 {
		t.Fatalf("only %d conflicts injected", conflicts)
	}
	if !strings.Contains(mustJSON(t, h.state("rough").policy.Status.Conditions), "Ready") {
		t.Fatal("no Ready condition")
	}
}

// TestStatusNeverRunsAheadOfTheJWKS: when publishing the JWKS ConfigMap fails, the keys the
// reconcile would have published are not offered to verifiers in status either, so status
// never names a key the ConfigMap lacks.
func TestStatusNeverRunsAheadOfTheJWKS(t *testing.T) {
	h := newHarness(t)
	h.policy("tp", camv1.AlgorithmEdDSA)
	h.settle("tp")
	failing := h.reconciler(interceptedClient(t, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			if _, ok := o.(*corev1ac.ConfigMapApplyConfiguration); ok {
				return errKilled
			}
			return c.Apply(ctx, o, opts...)
		},
	}))
	// 9h: a successor is due to be published.
	h.clock.SetTime(t0.Add(9 * time.Hour))
	if _, err := h.reconcileWith(failing, "tp"); !errors.Is(err, errKilled) {
		t.Fatalf("the reconcile did not fail on the ConfigMap: %v", err)
	}
	st := h.state("tp")
	if len(st.set.Keys) != 2 {
		t.Fatalf("want the successor stored, got %d keys", len(st.set.Keys))
	}
	v := st.policy.Status.Verification
	if v == nil || v.JWKS != st.raw {
		t.Fatalf("status offers a JWKS the ConfigMap does not hold:\nstatus    %v\nConfigMap %s", v, st.raw)
	}
}
