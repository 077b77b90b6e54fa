package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Unverified is what a token says about itself, read without checking its
// signature. It is fit only for deciding what to do with a token the caller
// issued and stored (is it due for renewal, does it still say what was asked
// for); whether the token may be trusted is the Verifier's question alone.
type Unverified struct {
	// KeyID and Type are the header's "kid" and "typ".
	KeyID, Type string
	Claims
}

// ReadUnverified decodes a compact JWS's header and claims without verifying
// its signature, so that a controller can read "exp" and "iat" of a token it
// minted to schedule its renewal. A token longer than DefaultMaxSize, or not
// three base64url segments of which the first two are JSON objects, is an
// error; the error never quotes the token.
func ReadUnverified(token string) (Unverified, error) {
	if len(token) > DefaultMaxSize {
		return Unverified{}, errors.New("read token: longer than any token camfleet mints")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Unverified{}, errors.New("read token: not a compact JWS")
	}
	var hdr struct {
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	var cl struct {
		Iss   string          `json:"iss"`
		Sub   string          `json:"sub"`
		Aud   json.RawMessage `json:"aud"`
		Exp   int64           `json:"exp"`
		Iat   int64           `json:"iat"`
		Nbf   int64           `json:"nbf"`
		Jti   string          `json:"jti"`
		Perms []string        `json:"perms"`
	}
	for i, v := range []any{&hdr, &cl} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return Unverified{}, errors.New("read token: a segment is not base64url")
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return Unverified{}, errors.New("read token: a segment is not a JSON object")
		}
	}
	u := Unverified{KeyID: hdr.Kid, Type: hdr.Typ, Claims: Claims{
		Issuer: cl.Iss, Subject: cl.Sub, ID: cl.Jti, Perms: cl.Perms,
		Expiry: unixOrZero(cl.Exp), IssuedAt: unixOrZero(cl.Iat), NotBefore: unixOrZero(cl.Nbf),
	}}
	if len(cl.Aud) > 0 && json.Unmarshal(cl.Aud, &u.Audience) != nil {
		var one string
		if json.Unmarshal(cl.Aud, &one) != nil {
			return Unverified{}, errors.New("read token: aud is neither a string nor a list of strings")
		}
		u.Audience = []string{one}
	}
	return u, nil
}

// unixOrZero is a NumericDate as a time, the zero time for an absent one.
func unixOrZero(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
