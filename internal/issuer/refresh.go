package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/bearer"
	"github.com/camfleet/camfleet/internal/trust"
)

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
	Policy       string `json:"policy,omitempty"`
}

// refresh trades a refresh token for a new access token and a new refresh token. Each
// refresh token works once: presenting one that was already used means it was copied, so the
// whole session family is revoked and its holder must log in again.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request, p *policy) {
	var req refreshRequest
	// raspiCamSrv and flask_jwt_extended clients send the refresh token as the Bearer token
	// and no body.
	if h := r.Header.Get("Authorization"); h != "" && r.ContentLength <= 0 {
		tok, ok := bearer.Token(h)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			fail(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		req.RefreshToken = tok
	} else if !decodeBody(w, r, &req) {
		return
	}
	if req.RefreshToken == "" {
		fail(w, http.StatusBadRequest, "missing refresh_token")
		return
	}
	resp, gerr := s.refreshGrant(r.Context(), p, req.RefreshToken)
	if gerr != nil {
		gerr.answer(w, s)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// refreshGrant trades a refresh token for the next pair of its session family, revoking the
// family when the token was already used.
func (s *Server) refreshGrant(ctx context.Context, p *policy, raw string) (tokenResponse, *grantError) {
	v, _, err := trust.Verifier(p.TokenPolicy, p.issuer, p.published, trust.RefreshType, s.Clock)
	if err != nil {
		return tokenResponse{}, &grantError{err: err}
	}
	got, err := v.Verify(raw)
	if err != nil {
		s.rejected(p, "refresh", err)
		return tokenResponse{}, errUnauthorized
	}
	family, _, ok := strings.Cut(got.ID, ".")
	if !ok || got.Issuer != p.issuer {
		return tokenResponse{}, errUnauthorized
	}
	var user *camv1.User
	for i := range p.Spec.Users {
		if p.Spec.Users[i].Name == got.Subject {
			user = &p.Spec.Users[i]
		}
	}
	if user == nil {
		return tokenResponse{}, errUnauthorized
	}
	if err := s.sessions(p).check(ctx, family, got.ID); err != nil {
		if errors.Is(err, errReused) {
			s.Log.Info("Refresh token reused; session family revoked", "policy", p.Namespace+"/"+p.Name, "user", got.Subject, "family", family)
		}
		if errors.Is(err, errReused) || errors.Is(err, errNoSession) {
			return tokenResponse{}, errUnauthorized
		}
		return tokenResponse{}, &grantError{err: err}
	}
	resp, err := s.issue(ctx, p, user.Name, user.Roles, family, false)
	if errors.Is(err, errReused) {
		// Another request refreshed with the same token between our check and our write.
		return tokenResponse{}, errUnauthorized
	}
	if err != nil {
		return tokenResponse{}, &grantError{err: err}
	}
	return resp, nil
}

var (
	errReused    = errors.New("refresh token reused")
	errNoSession = errors.New("no such session")
)

// session is one login's chain of refresh tokens: only the newest may be used.
type session struct {
	Current string `json:"current"`
	Expires int64  `json:"expires"`
	Revoked bool   `json:"revoked,omitempty"`
}

// sessionStore keeps a policy's refresh sessions in a ConfigMap it owns, so every replica
// sees the same state and a restart loses nothing. It holds token IDs, never tokens.
type sessionStore struct {
	s *Server
	p *policy
}

const sessionsKey = "sessions.json"

func (s *Server) sessions(p *policy) sessionStore { return sessionStore{s, p} }

func (st sessionStore) key() types.NamespacedName {
	return types.NamespacedName{Namespace: st.p.Namespace, Name: st.p.Name + "-sessions"}
}

func (st sessionStore) read(ctx context.Context) (*corev1.ConfigMap, map[string]session, error) {
	cm := &corev1.ConfigMap{}
	err := st.s.APIReader.Get(ctx, st.key(), cm)
	if apierrors.IsNotFound(err) {
		return nil, map[string]session{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read sessions of %s: %w", st.key(), err)
	}
	all := map[string]session{}
	if raw := cm.Data[sessionsKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &all); err != nil {
			// A damaged store only costs users a fresh login.
			all = map[string]session{}
		}
	}
	return cm, all, nil
}

// check says whether id is the current refresh token of its family, and revokes the family
// if it is an older one.
func (st sessionStore) check(ctx context.Context, family, id string) error {
	_, all, err := st.read(ctx)
	if err != nil {
		return err
	}
	cur, ok := all[family]
	switch {
	case !ok || cur.Revoked:
		return errNoSession
	case cur.Current != id:
		return st.update(ctx, func(all map[string]session) error {
			e := all[family]
			e.Revoked = true
			all[family] = e
			return nil
		}, errReused)
	}
	return nil
}

// advance makes id the family's current refresh token; for an existing family only if it was
// not revoked meanwhile.
func (st sessionStore) advance(ctx context.Context, family, id string, expires time.Time, isNew bool) error {
	return st.update(ctx, func(all map[string]session) error {
		if e, ok := all[family]; !isNew && (!ok || e.Revoked) {
			return errReused
		}
		all[family] = session{Current: id, Expires: expires.Unix()}
		return nil
	}, nil)
}

// update applies change with optimistic concurrency, retrying on conflicts, and drops expired
// sessions as it goes. It returns result when the change succeeded.
func (st sessionStore) update(ctx context.Context, change func(map[string]session) error, result error) error {
	for attempt := 0; ; attempt++ {
		cm, all, err := st.read(ctx)
		if err != nil {
			return err
		}
		if err := change(all); err != nil {
			return err
		}
		now := st.s.Clock.Now().Unix()
		for k, e := range all {
			if e.Expires < now {
				delete(all, k)
			}
		}
		raw, err := json.Marshal(all)
		if err != nil {
			return err
		}
		if cm == nil {
			cm = &corev1.ConfigMap{Data: map[string]string{sessionsKey: string(raw)}}
			cm.Name, cm.Namespace = st.key().Name, st.key().Namespace
			cm.Labels = map[string]string{"app.kubernetes.io/managed-by": "camfleet", "camfleet.io/policy": st.p.Name}
			cm.OwnerReferences = []metav1.OwnerReference{{APIVersion: camv1.GroupVersion.String(), Kind: "TokenPolicy",
				Name: st.p.Name, UID: st.p.UID, Controller: ptr.To(false)}}
			err = st.s.Client.Create(ctx, cm)
		} else {
			cm.Data = map[string]string{sessionsKey: string(raw)}
			err = st.s.Client.Update(ctx, cm)
		}
		if err == nil {
			return result
		}
		if !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) || attempt >= 5 {
			return fmt.Errorf("write sessions of %s: %w", st.key(), err)
		}
	}
}
