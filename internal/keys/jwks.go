package keys

import (
	"fmt"

	"github.com/camfleet/camfleet/internal/token"
)

// JWKS renders the public halves of every key in the set as an RFC 7517 key set: each with
// kty, kid, alg and use "sig", and nothing private. Keys keep the set's order, so the same set
// renders the same bytes. It is rendered by the verifier's own code, so what is published is
// exactly what agents parse.
func (s *Set) JWKS() ([]byte, error) {
	if len(s.Keys) == 0 {
		return []byte(`{"keys":[]}`), nil
	}
	pubs := make([]token.PublicKey, 0, len(s.Keys))
	for _, k := range s.Keys {
		pubs = append(pubs, token.PublicKey{KeyID: k.ID, Algorithm: token.Algorithm(k.Algorithm), Key: k.Public()})
	}
	ks, err := token.NewKeySet(pubs...)
	if err != nil {
		return nil, fmt.Errorf("render JWKS: %w", err)
	}
	return ks.MarshalJWKS()
}
