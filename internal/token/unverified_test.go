package token

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadUnverifiedReadsWhatSignWrote: every claim and header field a token was signed with
// reads back, for one audience (written as a string) and several (a list), and for a token
// that never expires.
func TestReadUnverifiedReadsWhatSignWrote(t *testing.T) {
	k := allKeys(t)[0]
	for name, c := range map[string]Claims{
		"one audience":       testClaims(),
		"several audiences":  func() Claims { c := testClaims(); c.Audience = []string{"a", "b"}; return c }(),
		"never expires":      func() Claims { c := testClaims(); c.Expiry = time.Time{}; return c }(),
		"no iat, nbf, perms": {Issuer: testIssuer, Subject: "bob", Audience: []string{testAudience}, Expiry: testNow},
	} {
		t.Run(name, func(t *testing.T) {
			text, err := Sign(c, TypeAccess, k)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadUnverified(text)
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyID != k.KeyID || got.Type != TypeAccess || got.Issuer != c.Issuer || got.Subject != c.Subject || got.ID != c.ID ||
				!slices.Equal(got.Audience, c.Audience) || !slices.Equal(got.Perms, c.Perms) ||
				!got.Expiry.Equal(c.Expiry) || !got.IssuedAt.Equal(c.IssuedAt) || !got.NotBefore.Equal(c.NotBefore) {
				t.Errorf("read %+v, signed %+v", got, c)
			}
		})
	}
}

// TestReadUnverifiedIgnoresTheSignature: a token whose signature is wrong still reads (the
// caller decides what to do with it; the verifier judges it), and anything that is not a
// compact JWS with JSON segments is an error that does not quote the input.
func TestReadUnverifiedIgnoresTheSignature(t *testing.T) {
	text, err := Sign(testClaims(), TypeAccess, allKeys(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	forged := text[:strings.LastIndex(text, ".")+1] + "AAAA"
	if got, err := ReadUnverified(forged); err != nil || got.ID != "jti-1" {
		t.Fatalf("a token with a wrong signature: %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"empty":             "",
		"two segments":      "a.b",
		"four segments":     "a.b.c.d",
		"not base64url":     "!!.e30.x",
		"claims not JSON":   "e30.bm90anNvbg.x",
		"aud a number":      "e30.eyJhdWQiOjF9.x",
		"longer than a cap": strings.Repeat("a", DefaultMaxSize+1),
	} {
		_, err := ReadUnverified(bad)
		if err == nil {
			t.Errorf("%s: read without an error", name)
			continue
		}
		if len(bad) > 4 && strings.Contains(err.Error(), bad) {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
}
