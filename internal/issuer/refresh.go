package issuer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/bearer"
	"github.com/camfleet/camfleet/internal/publication"
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
	v, err := s.verifier(p, trust.RefreshType)
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
	resp, err := s.issue(ctx, p, user.Name, user.Roles, family, got.ID)
	switch {
	case errors.Is(err, errReused):
		s.Log.Info("Refresh token reused; session family revoked", "policy", p.Namespace+"/"+p.Name, "user", got.Subject)
		return tokenResponse{}, errUnauthorized
	case errors.Is(err, errNoSession):
		return tokenResponse{}, errUnauthorized
	case err != nil:
		return tokenResponse{}, &grantError{err: err}
	}
	return resp, nil
}

var (
	errReused    = errors.New("refresh token reused")
	errNoSession = errors.New("no such session")
	// errStoreNotOwned is a ConfigMap by the store's name that the policy did not create: it
	// may be someone's data, so it is neither read nor written.
	errStoreNotOwned = errors.New("exists but is not the refresh-session store of its TokenPolicy (no owner reference to the policy, or not labelled as camfleet's); delete or rename it")
)

// Bounds of a policy's session store. Every login starts a family that lives until its refresh
// token expires (refreshTTL, 30 days by default), and the whole store is one ConfigMap that
// every login and refresh reads and rewrites, under the API server's 1 MiB object limit.
const (
	// maxFamiliesPerUser covers a user's phone, tablet, laptop and a few browsers; a script
	// that logs in over and over only pushes out its own oldest sessions.
	maxFamiliesPerUser = 10
	// maxFamilies is the policy's 100 users (the API's maximum) times maxFamiliesPerUser, and
	// keeps the store around 150 KB, so each read-modify-write stays cheap. Families of users
	// removed from the policy count until they expire or are pushed out.
	maxFamilies = 1000
)

// session is one login's chain of refresh tokens: only the newest may be used. It is stored
// under a hash of its family ID and holds a hash of the current token's ID, never the IDs
// themselves: whoever reads the ConfigMap learns nothing that helps to forge or match a token.
type session struct {
	User    string `json:"user,omitempty"`
	Current string `json:"current"`
	Expires int64  `json:"expires"`
	Revoked bool   `json:"revoked,omitempty"`
}

// idHash is the stored form of a family or token ID: SHA-256, base64url. The IDs are 128-bit
// random values, so an unsalted hash cannot be reversed by guessing.
func idHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sessionStore keeps a policy's refresh sessions in a ConfigMap it owns, so every replica
// sees the same state and a restart loses nothing.
type sessionStore struct {
	s *Server
	p *policy
}

const (
	sessionsKey = "families.json"
	// legacySessionsKey held the sessions with plain token IDs; it is read once, converted and
	// dropped by the next write, so an upgrade logs nobody out.
	legacySessionsKey = "sessions.json"
)

func (s *Server) sessions(p *policy) sessionStore { return sessionStore{s, p} }

func (st sessionStore) key() types.NamespacedName {
	return types.NamespacedName{Namespace: st.p.Namespace, Name: publication.SessionsName(st.p.Name)}
}

// owns says whether cm is the store this policy created, by the rule the controller also
// reports on the policy (its SessionStoreAvailable condition).
func (st sessionStore) owns(cm *corev1.ConfigMap) bool {
	return publication.OwnsSessions(st.p.TokenPolicy, cm)
}

// read is the store as the API server holds it now (another replica may have just written
// it), or no ConfigMap and no sessions when there is none yet.
func (st sessionStore) read(ctx context.Context) (*corev1.ConfigMap, map[string]session, error) {
	cm := &corev1.ConfigMap{}
	err := st.s.APIReader.Get(ctx, st.key(), cm)
	if apierrors.IsNotFound(err) {
		return nil, map[string]session{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read sessions of %s: %w", st.key(), err)
	}
	if !st.owns(cm) {
		return nil, nil, fmt.Errorf("ConfigMap %s %w", st.key(), errStoreNotOwned)
	}
	all := map[string]session{}
	if raw := cm.Data[sessionsKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &all); err != nil {
			// A damaged store only costs users a fresh login.
			all = map[string]session{}
		}
	}
	if raw := cm.Data[legacySessionsKey]; raw != "" {
		legacy := map[string]session{}
		if json.Unmarshal([]byte(raw), &legacy) == nil {
			for family, e := range legacy {
				if _, ok := all[idHash(family)]; !ok {
					e.Current = idHash(e.Current)
					all[idHash(family)] = e
				}
			}
		}
	}
	return cm, all, nil
}

// start records a new family for user with id as its current refresh token, pushing out the
// user's oldest families beyond maxFamiliesPerUser.
func (st sessionStore) start(ctx context.Context, family, user, id string, expires time.Time) error {
	key := idHash(family)
	return st.update(ctx, key, func(all map[string]session) (bool, error) {
		var mine []string
		for k, e := range all {
			if e.User == user {
				mine = append(mine, k)
			}
		}
		for _, k := range oldestFirst(all, mine)[:max(len(mine)-(maxFamiliesPerUser-1), 0)] {
			delete(all, k)
		}
		all[key] = session{User: user, Current: idHash(id), Expires: expires.Unix()}
		return true, nil
	})
}

// rotate makes next the family's current refresh token if presented still is, deciding on
// the state it writes over. A presented token that is no longer current was used before, so
// it was copied: the family is revoked and errReused returned. A family that is unknown or
// already revoked gives errNoSession.
func (st sessionStore) rotate(ctx context.Context, family, presented, next string, expires time.Time) error {
	key := idHash(family)
	return st.update(ctx, key, func(all map[string]session) (bool, error) {
		e, ok := all[key]
		switch {
		case !ok || e.Revoked:
			return false, errNoSession
		case e.Current != idHash(presented):
			e.Revoked = true
			all[key] = e
			return true, errReused
		}
		e.Current, e.Expires = idHash(next), expires.Unix()
		all[key] = e
		return true, nil
	})
}

// maxWriteAttempts bounds the retries on conflicting writes; each conflict means another
// request's write succeeded, so this many in a row only happens under a flood.
const maxWriteAttempts = 6

// update applies change with optimistic concurrency: change decides on the sessions just read,
// and on a conflict (another replica or request wrote meanwhile) they are read again and
// change decides again, so no decision is ever written over state it did not see. change
// returns whether to write, and the result to return once written (or at once, without a
// write). Expired sessions are dropped and the store kept within maxFamilies as it goes,
// never pushing out keep, the family being written.
func (st sessionStore) update(ctx context.Context, keep string, change func(map[string]session) (write bool, result error)) error {
	for attempt := 1; ; attempt++ {
		cm, all, err := st.read(ctx)
		if err != nil {
			return err
		}
		write, result := change(all)
		if !write {
			return result
		}
		prune(all, keep, st.s.Clock.Now())
		raw, err := json.Marshal(all)
		if err != nil {
			return fmt.Errorf("encode sessions of %s: %w", st.key(), err)
		}
		if st.s.beforeSessionWrite != nil {
			st.s.beforeSessionWrite()
		}
		if cm == nil {
			cm = &corev1.ConfigMap{Data: map[string]string{sessionsKey: string(raw)}}
			cm.Name, cm.Namespace = st.key().Name, st.key().Namespace
			cm.Labels = publication.OwnedLabels(st.p.Name)
			// Not the controller reference: the TokenPolicy controller reconciles on changes
			// to what it controls, and every login writes this ConfigMap.
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
		if (!apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err)) || attempt >= maxWriteAttempts {
			return fmt.Errorf("write sessions of %s: %w", st.key(), err)
		}
	}
}

// prune drops expired sessions, then pushes out the oldest beyond maxFamilies, never keep.
func prune(all map[string]session, keep string, now time.Time) {
	var keys []string
	for k, e := range all {
		switch {
		case e.Expires < now.Unix():
			delete(all, k)
		case k != keep:
			keys = append(keys, k)
		}
	}
	for _, k := range oldestFirst(all, keys)[:max(len(all)-maxFamilies, 0)] {
		delete(all, k)
	}
}

// oldestFirst orders keys by how little is lost by pushing their sessions out: revoked
// families first (their tokens fail either way), then the earliest expiry, which is the family
// refreshed least recently.
func oldestFirst(all map[string]session, keys []string) []string {
	slices.SortFunc(keys, func(a, b string) int {
		ea, eb := all[a], all[b]
		if ea.Revoked != eb.Revoked {
			if ea.Revoked {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(ea.Expires, eb.Expires), strings.Compare(a, b))
	})
	return keys
}
