package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/trust"
)

// Reasons an AccessToken is refused. Each is the Stalled and Ready reason and the Warning
// Event's reason; the message names the field and what to do.
const (
	// ReasonTTLTooLong: spec.ttl exceeds the policy's maxTTL, so the policy's key retention
	// and its verifiers could not cover the token's whole life.
	ReasonTTLTooLong = "TTLTooLong"
	// ReasonTTLRequired: spec.ttl is unset and the policy's accessTTL is 0 (non-expiring);
	// a token that never expires must be asked for with nonExpiring: true.
	ReasonTTLRequired = "TTLRequired"
	// ReasonNonExpiringNotAllowed: spec.nonExpiring is true but the policy does not set
	// spec.tokens.allowNonExpiring.
	ReasonNonExpiringNotAllowed = "NonExpiringNotAllowed"
	// ReasonUnknownRole: spec.roles names a role the policy does not define.
	ReasonUnknownRole = "UnknownRole"
)

// tokenRequest is an AccessToken resolved against its policy: what its token must say.
type tokenRequest struct {
	Issuer      string
	Audience    []string
	Subject     string
	Perms       []string
	TTL         time.Duration // 0 for a non-expiring token
	RenewBefore time.Duration
	InputsHash  string
}

// resolveRequest checks an AccessToken against its policy and says what its token must hold.
// A refusal is a *specError naming the field.
func resolveRequest(at *camv1.AccessToken, p *camv1.TokenPolicy, serviceURL string) (tokenRequest, error) {
	life := trust.LifetimesOf(p)
	s := at.Spec
	var ttl time.Duration
	switch {
	case s.NonExpiring:
		if !life.AllowNonExpiring {
			return tokenRequest{}, refuse(ReasonNonExpiringNotAllowed, "spec.nonExpiring: TokenPolicy %s does not allow non-expiring tokens (spec.tokens.allowNonExpiring); set a ttl instead", p.Name)
		}
	case s.TTL != nil:
		ttl = s.TTL.Duration
	default:
		ttl = life.Access
		if ttl == 0 {
			return tokenRequest{}, refuse(ReasonTTLRequired, "spec.ttl is unset and TokenPolicy %s's accessTTL is 0 (never expires); set spec.ttl, or nonExpiring: true for a token that never expires", p.Name)
		}
	}
	if ttl > life.Max {
		return tokenRequest{}, refuse(ReasonTTLTooLong, "spec.ttl %s exceeds TokenPolicy %s's maxTTL %s: its verifiers refuse longer lifetimes and its retired keys stay published only maxTTL plus leeway; set a ttl of at most %s", ttl, p.Name, life.Max, life.Max)
	}
	defined := make([]string, 0, len(p.Spec.Roles))
	for _, r := range p.Spec.Roles {
		defined = append(defined, r.Name)
	}
	for _, role := range s.Roles {
		if !slices.Contains(defined, role) {
			known := strings.Join(defined, ", ")
			if known == "" {
				known = "none"
			}
			return tokenRequest{}, refuse(ReasonUnknownRole, "spec.roles: role %q is not defined in TokenPolicy %s (defined: %s)", role, p.Name, known)
		}
	}
	roles := slices.Sorted(slices.Values(s.Roles))
	perms, err := trust.RolePermissions(p, roles)
	if err != nil {
		return tokenRequest{}, refuse(camv1.ReasonInvalidSpec, "spec.roles: %v", err)
	}
	aud := slices.Clone(p.Spec.Audience)
	if len(aud) == 0 {
		aud = []string{"camfleet"}
	}
	renewBefore := time.Hour
	if s.RenewBefore != nil {
		renewBefore = s.RenewBefore.Duration
	}
	return tokenRequest{
		Issuer: trust.Issuer(p, serviceURL), Audience: aud, Subject: s.Subject, Perms: perms,
		TTL: ttl, RenewBefore: renewBefore, InputsHash: inputsHash(s.PolicyName, s.Subject, roles, ttl, s.NonExpiring),
	}, nil
}

// inputsHash identifies what a token was minted for. renewBefore is left out: changing it
// moves the next renewal, it does not invalidate the token.
func inputsHash(policy, subject string, sortedRoles []string, ttl time.Duration, nonExpiring bool) string {
	b, _ := json.Marshal(struct {
		V           int      `json:"v"`
		Policy      string   `json:"policy"`
		Subject     string   `json:"subject"`
		Roles       []string `json:"roles"`
		TTL         int64    `json:"ttl"`
		NonExpiring bool     `json:"nonExpiring"`
	}{1, policy, subject, sortedRoles, int64(ttl / time.Second), nonExpiring})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
