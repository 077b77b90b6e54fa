package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Claims are the claims camfleet puts in its tokens. The type ("typ") is not a
// claim: it goes in the header, passed to Sign.
type Claims struct {
	// Issuer is "iss": the policy's issuer URL.
	Issuer string
	// Subject is "sub": the user or AccessToken subject.
	Subject string
	// Audience is "aud"; written as a single string when it has one entry.
	Audience []string
	// Expiry is "exp"; the zero time writes no "exp" (a non-expiring token,
	// which a verifier accepts only with AllowNonExpiring).
	Expiry time.Time
	// IssuedAt is "iat"; the zero time writes none.
	IssuedAt time.Time
	// NotBefore is "nbf"; the zero time writes none.
	NotBefore time.Time
	// ID is "jti", the handle for revocation.
	ID string
	// Perms is "perms": the granted permission strings.
	Perms []string
}

// wireClaims fixes the JSON member order and encodings.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  any      `json:"aud"`
	Expiry    int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti,omitempty"`
	Perms     []string `json:"perms,omitempty"`
}

// validate refuses claims that our own verifier would reject for their shape,
// so that issuance fails loudly instead of minting unusable tokens.
func (c Claims) validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("no issuer"))
	}
	if c.Subject == "" {
		errs = append(errs, errors.New("no subject"))
	}
	if len(c.Audience) == 0 {
		errs = append(errs, errors.New("no audience"))
	}
	for _, a := range c.Audience {
		if a == "" {
			errs = append(errs, errors.New("an empty audience"))
		}
	}
	for _, d := range []struct {
		name string
		t    time.Time
	}{{"exp", c.Expiry}, {"iat", c.IssuedAt}, {"nbf", c.NotBefore}} {
		if !d.t.IsZero() && (d.t.Unix() <= 0 || d.t.Unix() > maxNumericDate) {
			errs = append(errs, fmt.Errorf("%s out of range", d.name))
		}
	}
	if !c.Expiry.IsZero() && !c.IssuedAt.IsZero() && c.Expiry.Before(c.IssuedAt) {
		errs = append(errs, errors.New("exp before iat"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

func (c Claims) marshal() ([]byte, error) {
	w := wireClaims{Issuer: c.Issuer, Subject: c.Subject, ID: c.ID, Perms: c.Perms}
	if len(c.Audience) == 1 {
		w.Audience = c.Audience[0]
	} else {
		w.Audience = c.Audience
	}
	if !c.Expiry.IsZero() {
		w.Expiry = c.Expiry.Unix()
	}
	if !c.IssuedAt.IsZero() {
		w.IssuedAt = c.IssuedAt.Unix()
	}
	if !c.NotBefore.IsZero() {
		w.NotBefore = c.NotBefore.Unix()
	}
	return json.Marshal(w)
}
