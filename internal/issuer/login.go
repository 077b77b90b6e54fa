package issuer

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// dummyPassword is what an unknown user's password is compared with, in a hash of the cost
// the policy's hashes have.
const dummyPassword = "camfleet: no such user"

// dummies holds one dummy hash per bcrypt cost, each built on first use: an unknown user must
// cost as much bcrypt work as a known one, whatever cost the policy's hashes were made with.
var dummies struct {
	once [bcrypt.MaxCost + 1]sync.Once
	hash [bcrypt.MaxCost + 1][]byte
}

func dummyHash(cost int) []byte {
	cost = min(max(cost, bcrypt.MinCost), bcrypt.MaxCost)
	dummies.once[cost].Do(func() {
		// It cannot fail: the cost is in range and the password short.
		dummies.hash[cost], _ = bcrypt.GenerateFromPassword([]byte(dummyPassword), cost)
	})
	return dummies.hash[cost]
}

type loginRequest struct {
	User string `json:"user"`
	Pass string `json:"pass"`
	// Username and Password are raspiCamSrv's names for the same fields.
	Username string `json:"username"`
	Password string `json:"password"`
	// Policy is accepted (and ignored here) because agents forward the phone's body as is;
	// the agent picks the policy from it.
	Policy string `json:"policy,omitempty"`
}

// tokenResponse is the login and refresh answer. token repeats access_token for the phone app
// of the microdot seed, which reads "token".
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds; 0 when it never expires.
	ExpiresIn int64 `json:"expires_in"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, p *policy) {
	var req loginRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.User == "" && req.Pass == "" {
		req.User, req.Pass = req.Username, req.Password
	}
	if req.User == "" || req.Pass == "" {
		fail(w, http.StatusBadRequest, "missing user or pass")
		return
	}
	resp, gerr := s.passwordGrant(r.Context(), p, req.User, req.Pass, clientAddress(r))
	if gerr != nil {
		gerr.answer(w, s)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// grantError is why a grant was refused, answered as the service's own JSON error or as an
// RFC 6749 §5.2 error by the OAuth token endpoint.
type grantError struct {
	status  int
	code    string // the RFC 6749 error code
	message string
	// retryAfter is set when a rate limit refused the grant.
	retryAfter time.Duration
	// err is an internal failure, logged and never shown.
	err error
}

func (g *grantError) answer(w http.ResponseWriter, s *Server) {
	if g.err != nil {
		s.internalError(w, g.err)
		return
	}
	if g.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((g.retryAfter+time.Second-1)/time.Second)))
	}
	fail(w, g.status, g.message)
}

var errUnauthorized = &grantError{status: http.StatusUnauthorized, code: "invalid_grant", message: "unauthorized"}

// passwordGrant checks a user's password, within the failed-login limits, and issues a new
// session's tokens.
func (s *Server) passwordGrant(ctx context.Context, p *policy, name, pass, client string) (tokenResponse, *grantError) {
	policyKey := p.Namespace + "/" + p.Name
	wait, refund := s.limits.reserve(policyKey, name, client)
	if wait > 0 {
		return tokenResponse{}, &grantError{status: http.StatusTooManyRequests, code: "invalid_grant", message: "too many failed logins; try again later", retryAfter: wait}
	}
	user, ok := s.authenticate(ctx, p, name, pass)
	if ok {
		refund()
	} else {
		s.Log.Info("Login failed", "policy", policyKey, "user", name, "clientAddress", client)
		return tokenResponse{}, &grantError{status: http.StatusUnauthorized, code: "invalid_grant", message: "invalid user or password"}
	}
	family, err := token.NewID()
	if err != nil {
		return tokenResponse{}, &grantError{err: err}
	}
	resp, err := s.issue(ctx, p, user.Name, user.Roles, family, "")
	if err != nil {
		return tokenResponse{}, &grantError{err: err}
	}
	s.Log.Info("Login succeeded", "policy", policyKey, "user", user.Name, "clientAddress", client)
	return resp, nil
}

// authenticate checks the password against the user's bcrypt hash. Every path runs one bcrypt
// comparison at the cost of the policy's hashes: an unknown user, or a user whose Secret
// cannot be used, is compared with a dummy hash of the cost of another user's hash, read the
// same way (through Passwords) as a known user's. So an unknown user, an unusable Secret and a
// wrong password take alike long and get the same answer.
func (s *Server) authenticate(ctx context.Context, p *policy, name, pass string) (camv1.User, bool) {
	var user *camv1.User
	for i := range p.Spec.Users {
		if p.Spec.Users[i].Name == name {
			user = &p.Spec.Users[i]
		}
	}
	var stored []byte
	if user != nil {
		stored = s.passwordHash(ctx, p, user, true)
	}
	hash := stored
	if stored == nil {
		cost := bcrypt.DefaultCost
		for i := range p.Spec.Users {
			if u := &p.Spec.Users[i]; u != user {
				// Only for its cost: problems with it are another user's, so not logged here.
				if other := s.passwordHash(ctx, p, u, false); other != nil {
					cost, _ = bcrypt.Cost(other) // passwordHash returns only hashes whose cost reads
				}
				break
			}
		}
		hash = dummyHash(cost)
	}
	compare := s.compare
	if compare == nil {
		compare = bcrypt.CompareHashAndPassword
	}
	if compare(hash, []byte(pass)) != nil || stored == nil {
		return camv1.User{}, false
	}
	return *user, true
}

// passwordHash is the user's bcrypt hash, or nil when it cannot be used: the Secret is missing
// or unreadable, lacks the camfleet.io/password label, or holds no bcrypt hash under the key.
// Only Secrets with the label are read, so a passwordSecretRef cannot turn an arbitrary Secret
// of the namespace into a password oracle. report logs why a hash cannot be used, naming the
// Secret and key, never their content.
func (s *Server) passwordHash(ctx context.Context, p *policy, u *camv1.User, report bool) []byte {
	ref := u.PasswordSecretRef
	log := s.Log.WithValues("policy", p.Namespace+"/"+p.Name, "user", u.Name, "secret", ref.Name)
	reader := s.Passwords
	if reader == nil {
		reader = s.APIReader
	}
	sec := &corev1.Secret{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, sec)
	var why string
	switch {
	case apierrors.IsNotFound(err):
		// The password cache holds only labelled Secrets, so an unlabelled one is not found.
		why = "Password Secret not found, or it lacks the label " + passwordLabel
	case err != nil:
		if report {
			log.Error(err, "Cannot read password Secret")
		}
		return nil
	case sec.Labels[camv1.LabelPassword] != camv1.LabelPasswordValue:
		why = "Password Secret lacks the label " + passwordLabel + "; refusing to read it"
	default:
		h := sec.Data[ref.Key]
		if _, err := bcrypt.Cost(h); err == nil {
			return h
		}
		why = "Password Secret holds no bcrypt hash under the key"
	}
	if report {
		log.Info(why, "key", ref.Key, "label", passwordLabel)
	}
	return nil
}

// passwordLabel is the label a password Secret must carry, as a user writes it.
const passwordLabel = camv1.LabelPassword + "=" + camv1.LabelPasswordValue

// issue signs an access token and a refresh token for a subject, and records the refresh
// token as the current one of its session family: a new family when presented is empty (a
// login), else only if presented is still the family's current token (a refresh), checked in
// the same write, so one refresh token is never redeemed twice.
func (s *Server) issue(ctx context.Context, p *policy, subject string, roles []string, family, presented string) (tokenResponse, error) {
	key, err := s.signingKey(ctx, p)
	if err != nil {
		return tokenResponse{}, err
	}
	perms, err := trust.RolePermissions(p.TokenPolicy, roles)
	if err != nil {
		return tokenResponse{}, err
	}
	now := s.Clock.Now().Truncate(time.Second)
	life := trust.LifetimesOf(p.TokenPolicy)
	access := token.Claims{Issuer: p.issuer, Subject: subject, Audience: p.Spec.Audience, IssuedAt: now, Perms: perms}
	if len(access.Audience) == 0 {
		access.Audience = []string{"camfleet"}
	}
	if life.Access > 0 {
		access.Expiry = now.Add(life.Access)
	}
	if access.ID, err = token.NewID(); err != nil {
		return tokenResponse{}, err
	}
	at, err := token.Sign(access, trust.AccessType, key)
	if err != nil {
		return tokenResponse{}, err
	}
	nonce, err := token.NewID()
	if err != nil {
		return tokenResponse{}, err
	}
	refresh := token.Claims{Issuer: p.issuer, Subject: subject, Audience: []string{p.issuer}, IssuedAt: now,
		Expiry: now.Add(life.Refresh), ID: family + "." + nonce}
	rt, err := token.Sign(refresh, trust.RefreshType, key)
	if err != nil {
		return tokenResponse{}, err
	}
	store := s.sessions(p)
	if presented == "" {
		err = store.start(ctx, family, subject, refresh.ID, refresh.Expiry)
	} else {
		err = store.rotate(ctx, family, presented, refresh.ID, refresh.Expiry)
	}
	if err != nil {
		return tokenResponse{}, err
	}
	return tokenResponse{Token: at, AccessToken: at, RefreshToken: rt, TokenType: "Bearer", ExpiresIn: int64(life.Access / time.Second)}, nil
}

func (s *Server) internalError(w http.ResponseWriter, err error) {
	s.Log.Error(err, "Token service request failed")
	fail(w, http.StatusInternalServerError, "the token service could not complete the request")
}

// clientAddress is the peer's IP. Forwarding headers are not trusted: a client could forge
// them to dodge the per-address limit.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
