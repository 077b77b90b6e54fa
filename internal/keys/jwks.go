package keys

import (
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// JWKSKey is the ConfigMap data key holding the JWKS.
const JWKSKey = "jwks.json"

// JWKS renders the public halves of every key in the set as an RFC 7517 key set: each with
// kty, kid, alg and use "sig", and nothing private. Keys keep the set's order, so the same set
// renders the same bytes.
func (s *Set) JWKS() ([]byte, error) {
	out := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: []json.RawMessage{}}
	for _, k := range s.Keys {
		pub, err := jwk.Import(k.Public())
		if err != nil {
			return nil, fmt.Errorf("import public key %s: %w", k.ID, err)
		}
		alg, ok := jwa.LookupSignatureAlgorithm(string(k.Algorithm))
		if !ok {
			return nil, fmt.Errorf("key %s: unknown algorithm %s", k.ID, k.Algorithm)
		}
		for name, v := range map[string]any{jwk.KeyIDKey: k.ID, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
			if err := pub.Set(name, v); err != nil {
				return nil, fmt.Errorf("key %s: set %s: %w", k.ID, name, err)
			}
		}
		raw, err := json.Marshal(pub)
		if err != nil {
			return nil, fmt.Errorf("marshal public key %s: %w", k.ID, err)
		}
		out.Keys = append(out.Keys, raw)
	}
	return json.Marshal(out)
}
