package fleet

import (
	"errors"
	"fmt"
	"slices"
	"time"

	camv1 "github.com/camfleet/camfleet/api/v1alpha1"
	"github.com/camfleet/camfleet/internal/publication"
	"github.com/camfleet/camfleet/internal/token"
	"github.com/camfleet/camfleet/internal/trust"
)

// ReasonUntrustedIssuer is the agent's metrics label for a token that verified under a key
// whose issuer the policy no longer trusts (docs/agent.md, Metrics).
const ReasonUntrustedIssuer token.Reason = "untrusted_issuer"

// Verdict is the outcome of checking a token offline against a policy, as an agent would.
type Verdict struct {
	Policy string `json:"policy"`
	Valid  bool   `json:"valid"`
	// Reason is the verifier's reason code when the token is refused.
	Reason token.Reason `json:"reason,omitempty"`
	// Explanation says why, in a sentence.
	Explanation string     `json:"explanation,omitempty"`
	Subject     string     `json:"subject,omitempty"`
	Issuer      string     `json:"issuer,omitempty"`
	KeyID       string     `json:"kid,omitempty"`
	Expiry      *time.Time `json:"expiry,omitempty"`
	// Permissions are what the token grants under the policy when it is valid.
	Permissions []string `json:"permissions,omitempty"`
	Decoded
}

// ErrNothingPublished: the policy has published no verification material yet, so nothing can
// be checked against it.
var ErrNothingPublished = errors.New("the policy has published no keys yet")

// Check verifies raw against what policy p publishes in its status, with the same verifier an
// agent builds from it (internal/trust), at now. A refused token is a Verdict, not an error;
// the error is for a policy that cannot verify anything.
func Check(p *camv1.TokenPolicy, raw string, now time.Time) (Verdict, error) {
	key := p.Namespace + "/" + p.Name
	out := Verdict{Policy: key, Decoded: Decode(raw)}
	pub, ok, err := publication.FromStatus(p)
	if err != nil {
		return out, err
	}
	if !ok || p.Status.Issuer == "" {
		return out, fmt.Errorf("policy %s: %w", key, ErrNothingPublished)
	}
	issuer := p.Status.Issuer
	v, _, err := trust.Verifier(p, issuer, pub, trust.AccessType, fixedClock(now))
	if err != nil {
		return out, fmt.Errorf("build the verifier of policy %s: %w", key, err)
	}
	got, err := v.Verify(raw)
	if err != nil {
		out.Reason = token.ReasonOf(err)
		if out.Reason == "" {
			return out, fmt.Errorf("verify against policy %s: %w", key, err)
		}
		out.Explanation = Explain(out.Reason, facts(p, v, raw, out.Decoded, now))
		return out, nil
	}
	out.Subject, out.Issuer, out.KeyID = got.Subject, got.Issuer, got.KeyID
	if !got.Expiry.IsZero() {
		e := got.Expiry.UTC()
		out.Expiry = &e
	}
	perms, err := trust.Permissions(p, issuer, got)
	if err != nil {
		out.Reason = ReasonUntrustedIssuer
		out.Explanation = fmt.Sprintf("issuer %q is not trusted by policy %s (not in spec.externalIssuers)", got.Issuer, key)
		return out, nil
	}
	out.Valid, out.Permissions = true, perms
	return out, nil
}

// facts gathers what Explain needs from the verifier's keys and the policy.
func facts(p *camv1.TokenPolicy, v *token.Verifier, raw string, d Decoded, now time.Time) Facts {
	l := trust.LifetimesOf(p)
	f := Facts{Raw: raw, Decoded: d, Now: now, Leeway: l.Leeway, MaxLifetime: max(l.Max, l.Refresh),
		Audiences: trust.Audiences(p), Policy: p.Namespace + "/" + p.Name}
	for _, k := range v.Keys().Keys() {
		f.KeyIDs = append(f.KeyIDs, k.KeyID)
	}
	if kid, _ := d.Header["kid"].(string); kid != "" {
		if k, ok := v.Keys().Lookup(kid); ok {
			f.KeyAlgorithm, f.KeyIssuer = string(k.Algorithm), k.Issuer
			if len(k.Audiences) > 0 {
				f.Audiences = slices.Clone(k.Audiences)
			}
		}
	}
	return f
}

// IssuedBy reports whether tokens of issuer iss are checked by policy p: its own issuer, or one
// of the external issuers it trusts.
func IssuedBy(p *camv1.TokenPolicy, iss string) bool {
	if iss == "" {
		return false
	}
	if p.Status.Issuer == iss {
		return true
	}
	if v := p.Status.Verification; v != nil {
		for _, e := range v.ExternalIssuers {
			if e.Issuer == iss {
				return true
			}
		}
	}
	return false
}

// fixedClock is the moment a check is made, so a check is a function of its inputs.
type fixedClock time.Time

func (c fixedClock) Now() time.Time                  { return time.Time(c) }
func (c fixedClock) Since(t time.Time) time.Duration { return time.Time(c).Sub(t) }
