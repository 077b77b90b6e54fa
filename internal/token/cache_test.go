package token

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCachedVerifier(t *testing.T) {
	k := getKeys(t)
	tok := validToken(t, k.ed)

	t.Run("a repeated token is served from the cache without allocating", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		first, err := cv.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if cv.Len() != 1 {
			t.Fatalf("cache holds %d tokens, want 1", cv.Len())
		}
		var again Verified
		if n := testing.AllocsPerRun(100, func() { again, err = cv.Verify(tok) }); n != 0 {
			t.Errorf("cache hit allocated %v times", n)
		}
		if err != nil || again.Subject != first.Subject || again.ID != first.ID {
			t.Errorf("cache hit gave %+v, %v", again, err)
		}
	})

	t.Run("an entry ends with the token's expiry plus leeway", func(t *testing.T) {
		v, clk := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(testNow.Add(time.Hour + testLeeway - time.Second))
		if _, err := cv.Verify(tok); err != nil {
			t.Fatalf("within leeway: %v", err)
		}
		clk.SetTime(testNow.Add(time.Hour + testLeeway))
		if _, err := cv.Verify(tok); ReasonOf(err) != ReasonExpired {
			t.Fatalf("after expiry: reason %q, want %q", ReasonOf(err), ReasonExpired)
		}
		if cv.Len() != 0 {
			t.Errorf("expired entry kept")
		}
	})

	t.Run("revoking the jti invalidates the entry", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		v.SetRevocations(NewRevocations("revoked-id", "token-1"))
		if _, err := cv.Verify(tok); ReasonOf(err) != ReasonRevoked {
			t.Fatalf("reason %q, want %q", ReasonOf(err), ReasonRevoked)
		}
		// Un-revoking (a new list without it) lets the token in again.
		v.SetRevocations(nil)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an unrelated revocation or key change keeps the entry", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		v.SetRevocations(NewRevocations("someone-else"))
		// The same keys parsed afresh, as after a ConfigMap resync.
		data, err := v.Keys().MarshalJWKS()
		if err != nil {
			t.Fatal(err)
		}
		ks, err := ParseJWKS(data)
		if err != nil {
			t.Fatal(err)
		}
		if ks, err = ks.BindIssuer(testIssuer); err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeys(ks); err != nil {
			t.Fatal(err)
		}
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		// The recheck refreshed the entry: the next hit is free again.
		if n := testing.AllocsPerRun(10, func() { _, _ = cv.Verify(tok) }); n != 0 {
			t.Errorf("hit after recheck allocated %v times", n)
		}
	})

	t.Run("removing the key invalidates the entry", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		ks, err := NewKeySet(k.es.PublicKey(), k.rs.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if ks, err = ks.BindIssuer(testIssuer); err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeys(ks); err != nil {
			t.Fatal(err)
		}
		if _, err := cv.Verify(tok); ReasonOf(err) != ReasonUnknownKey {
			t.Fatalf("reason %q, want %q", ReasonOf(err), ReasonUnknownKey)
		}
	})

	t.Run("a different key under the same kid invalidates the entry", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		other, err := GenerateSigningKey(EdDSA)
		if err != nil {
			t.Fatal(err)
		}
		impostor := other.PublicKey()
		impostor.KeyID = k.ed.KeyID
		ks, err := NewKeySet(impostor)
		if err != nil {
			t.Fatal(err)
		}
		if ks, err = ks.BindIssuer(testIssuer); err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeys(ks); err != nil {
			t.Fatal(err)
		}
		if _, err := cv.Verify(tok); ReasonOf(err) != ReasonBadSignature {
			t.Fatalf("reason %q, want %q", ReasonOf(err), ReasonBadSignature)
		}
	})

	t.Run("the same key rebound to another issuer invalidates the entry", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		ks, err := v.Keys().BindIssuer("https://elsewhere.example")
		if err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeys(ks); err != nil {
			t.Fatal(err)
		}
		if _, err := cv.Verify(tok); ReasonOf(err) != ReasonWrongIssuer {
			t.Fatalf("reason %q, want %q", ReasonOf(err), ReasonWrongIssuer)
		}
	})

	t.Run("a clock set back before iat makes the cache agree with the verifier", func(t *testing.T) {
		v, clk := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		if _, err := cv.Verify(tok); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(testNow.Add(-time.Hour))
		_, want := v.Verify(tok)
		if _, err := cv.Verify(tok); ReasonOf(err) != ReasonOf(want) || want == nil {
			t.Fatalf("cache says %v, verifier says %v", err, want)
		}
	})

	t.Run("rejections are not cached", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 0)
		for i := 0; i < 3; i++ {
			if _, err := cv.Verify(tok + "x"); err == nil {
				t.Fatal("tampered token accepted")
			}
		}
		if cv.Len() != 0 {
			t.Errorf("cache holds %d entries after rejections", cv.Len())
		}
	})

	t.Run("the cache is bounded", func(t *testing.T) {
		v, _ := newTestVerifier(t)
		cv := NewCachedVerifier(v, 8)
		for i := 0; i < 50; i++ {
			tk := forge(t, k.ed, hdr(EdDSA, k.ed.KeyID, TypeAccess), validClaims().with("jti", q(fmt.Sprint("id-", i))).json())
			if _, err := cv.Verify(tk); err != nil {
				t.Fatal(err)
			}
			if cv.Len() > 8 {
				t.Fatalf("cache grew to %d entries", cv.Len())
			}
		}
	})

	t.Run("non-expiring tokens are cached and still revocable", func(t *testing.T) {
		cfg, clk := testConfig(t)
		cfg.AllowNonExpiring = true
		v, err := NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cv := NewCachedVerifier(v, 0)
		forever := forge(t, k.ed, hdr(EdDSA, k.ed.KeyID, TypeAccess), validClaims().without("exp").json())
		if _, err := cv.Verify(forever); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(testNow.Add(10 * 365 * 24 * time.Hour))
		if _, err := cv.Verify(forever); err != nil {
			t.Fatalf("ten years later: %v", err)
		}
		v.SetRevocations(NewRevocations("token-1"))
		if _, err := cv.Verify(forever); ReasonOf(err) != ReasonRevoked {
			t.Fatalf("reason %q, want %q", ReasonOf(err), ReasonRevoked)
		}
	})
}

// TestCachedVerifierConcurrent exercises the cache from many goroutines while
// keys and revocations change; run with -race where cgo is available.
func TestCachedVerifierConcurrent(t *testing.T) {
	v, _ := newTestVerifier(t)
	cv := NewCachedVerifier(v, 4)
	k := getKeys(t)
	toks := make([]string, 6)
	for i := range toks {
		toks[i] = forge(t, k.ed, hdr(EdDSA, k.ed.KeyID, TypeAccess), validClaims().with("jti", q(fmt.Sprint("c-", i))).json())
	}
	ks := v.Keys()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				got, err := cv.Verify(toks[i%len(toks)])
				if err != nil && ReasonOf(err) != ReasonRevoked {
					t.Errorf("unexpected rejection: %v", err)
					return
				}
				if err == nil && got.Subject != "alice" {
					t.Errorf("bad result %+v", got)
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		v.SetRevocations(NewRevocations(fmt.Sprint("c-", i%3)))
		if err := v.SetKeys(ks); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
