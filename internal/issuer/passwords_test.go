package issuer_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/issuer"
	"github.com/camfleet/camfleet/internal/testkit"
)

// countingReader counts the Secret reads a login makes.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestUnknownUserCostsAKnownUsersBcrypt: with hashes of a cost other than bcrypt's default, a
// login of an unknown user reads one password Secret and compares with a hash of the same cost
// as a wrong password for a known user does. Security review finding: the unknown user was
// compared at cost 10 whatever the policy's hashes cost, and read no Secret.
func TestUnknownUserCostsAKnownUsersBcrypt(t *testing.T) {
	const cost = bcrypt.MinCost + 1
	s := newService(t, cost, false)
	reads := &countingReader{Reader: env.Client}
	s.srv.Passwords = reads
	costs := issuer.RecordCosts(s.srv)
	for _, tc := range []struct{ user, pass string }{{"alice", "wrong"}, {"mallory", "anything"}, {"alice", alicePass}} {
		reads.gets.Store(0)
		s.clock.Step(time.Minute) // stay under the rate limit
		s.login(tc.user, tc.pass)
		if got := costs(); !slices.Equal(got, []int{cost}) {
			t.Errorf("login of %s compared with hashes of cost %v, want exactly one of cost %d", tc.user, got, cost)
		}
		if n := reads.gets.Load(); n != 1 {
			t.Errorf("login of %s read %d password Secrets, want 1", tc.user, n)
		}
	}
}

// TestPasswordSecretMustBeMarked: a user whose password Secret lacks the label
// camfleet.io/password=true cannot log in, with the answer and the work of a wrong password,
// and the log names the Secret and the label; once labelled, the login works, through a plain
// client and through the label-selected cache the controller uses. Security review finding:
// any Secret of the namespace could be named, an online oracle for the hashes in it.
func TestPasswordSecretMustBeMarked(t *testing.T) {
	const cost = bcrypt.MinCost
	const carolPass = "carols-secret-phrase"
	s := newServiceWith(t, cost, false, func(p *camv1.TokenPolicy) {
		p.Spec.Users = append(p.Spec.Users, camv1.User{Name: "carol", Roles: []string{"viewer"},
			PasswordSecretRef: camv1.SecretKeyReference{Name: "db-credentials", Key: "carol"}})
	})
	ctx := context.Background()
	hash, _ := bcrypt.GenerateFromPassword([]byte(carolPass), cost)
	unmarked := &corev1.Secret{Data: map[string][]byte{"carol": hash}}
	unmarked.Name, unmarked.Namespace = "db-credentials", s.ns
	if err := env.Client.Create(ctx, unmarked); err != nil {
		t.Fatal(err)
	}
	costs := issuer.RecordCosts(s.srv)

	wrong := s.login("alice", "wrong")
	costs()
	r := s.login("carol", carolPass)
	if r.status != http.StatusUnauthorized || r.raw != wrong.raw {
		t.Fatalf("login with an unlabelled password Secret: %d %s; a wrong password answers %d %s", r.status, r.raw, wrong.status, wrong.raw)
	}
	if got := costs(); !slices.Equal(got, []int{cost}) {
		t.Errorf("login with an unlabelled Secret compared with hashes of cost %v, want one of cost %d", got, cost)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "lacks the label camfleet.io/password=true") || !strings.Contains(logs, `"secret"="db-credentials"`) {
		t.Errorf("the log does not name the Secret and the missing label:\n%s", logs)
	}
	if strings.Contains(logs, string(hash)) {
		t.Fatal("the hash reached the logs")
	}

	// The controller's cache holds only labelled Secrets: carol is not found there either.
	passwords, err := issuer.NewPasswordCache(env.Config, env.Scheme, nil)
	if err != nil {
		t.Fatal(err)
	}
	cacheCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go func() { _ = passwords.Start(cacheCtx) }()
	if !passwords.WaitForCacheSync(cacheCtx) {
		t.Fatal("the password cache did not sync")
	}
	s.srv.Passwords = passwords
	if r := s.login("bob", bobPass); r.status != http.StatusOK {
		t.Fatalf("bob through the password cache: %d %s", r.status, r.raw)
	}
	if r := s.login("carol", carolPass); r.status != http.StatusUnauthorized {
		t.Fatalf("carol through the password cache, unlabelled: %d %s", r.status, r.raw)
	}

	unmarked.Labels = map[string]string{camv1.LabelPassword: "true"}
	if err := env.Client.Update(ctx, unmarked); err != nil {
		t.Fatal(err)
	}
	s.srv.Passwords = env.Client
	if r := s.login("carol", carolPass); r.status != http.StatusOK {
		t.Fatalf("login with the labelled Secret: %d %s", r.status, r.raw)
	}
	testkit.Eventually(t, 10*time.Second, "the password cache to see the labelled Secret", func() (bool, string) {
		err := passwords.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: "db-credentials"}, &corev1.Secret{})
		return err == nil, fmt.Sprint(err)
	})
	s.srv.Passwords = passwords
	if r := s.login("carol", carolPass); r.status != http.StatusOK {
		t.Fatalf("login with the labelled Secret through the password cache: %d %s", r.status, r.raw)
	}
}
