package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// knownReasons is every reason Verify may return.
var knownReasons = func() map[Reason]bool {
	m := map[Reason]bool{}
	for _, r := range Reasons() {
		m[r] = true
	}
	return m
}()

// checkOutcome asserts the invariants every verification must keep, whatever
// the input: a known reason or a complete result, and the cache agreeing with
// the plain verifier.
func checkOutcome(t *testing.T, v *Verifier, cv *CachedVerifier, tok string) {
	got, err := v.Verify(tok)
	reason := ReasonOf(err)
	if err != nil {
		if !knownReasons[reason] {
			t.Fatalf("unknown reason %q (%v)", reason, err)
		}
		if got.Subject != "" || got.KeyID != "" || got.Issuer != "" {
			t.Fatalf("rejection with a non-empty result %+v", got)
		}
	} else {
		if got.Subject == "" || got.Issuer != testIssuer || got.KeyID == "" {
			t.Fatalf("accepted with an incomplete result %+v", got)
		}
		if len(tok) > DefaultMaxSize || strings.Count(tok, ".") != 2 {
			t.Fatalf("accepted a token that is not a compact JWS of sane size")
		}
	}
	for range 2 { // a miss, then a hit
		cgot, cerr := cv.Verify(tok)
		if ReasonOf(cerr) != reason {
			t.Fatalf("cached verifier says %q, verifier says %q", ReasonOf(cerr), reason)
		}
		if cerr == nil && (cgot.Subject != got.Subject || cgot.ID != got.ID || cgot.KeyID != got.KeyID) {
			t.Fatalf("cached result %+v differs from %+v", cgot, got)
		}
	}
}

// FuzzVerify feeds arbitrary strings to the verifier, seeded with every row
// of the attack table. It must never panic and keep checkOutcome's
// invariants.
func FuzzVerify(f *testing.F) {
	for _, row := range attackRows() {
		tok := row.token(f)
		if len(tok) > 2*DefaultMaxSize {
			tok = tok[:2*DefaultMaxSize] // keep the corpus small; still too large
		}
		f.Add(tok)
	}
	v, _ := newTestVerifier(f)
	cv := NewCachedVerifier(v, 64)
	f.Fuzz(func(t *testing.T, tok string) {
		checkOutcome(t, v, cv, tok)
	})
}

// FuzzVerifySigned signs arbitrary header and payload bytes with a trusted key
// before verifying, so that the fuzzer reaches the claims checks that a bad
// signature would otherwise guard.
func FuzzVerifySigned(f *testing.F) {
	k := getKeys(f).ed
	f.Add(hdr(EdDSA, k.KeyID, TypeAccess), validClaims().json())
	f.Add(hdr(EdDSA, k.KeyID, TypeAccess), validClaims().with("aud", `["a","camfleet"]`, "exp", "1.5").json())
	f.Add(hdr(EdDSA, k.KeyID, TypeAccess), validClaims().with("perms", `["camera:*","x\u0000"]`).json())
	f.Add(`{"alg":"EdDSA","kid":"`+k.KeyID+`","typ":"at+jwt","crit":["b64"]}`, `{}`)
	f.Add(hdr(EdDSA, k.KeyID, TypeAccess), `{"iss":"\ud83d\ude00","sub":"a\"b","aud":"camfleet","exp":1e3}`)
	v, _ := newTestVerifier(f)
	cv := NewCachedVerifier(v, 64)
	f.Fuzz(func(t *testing.T, header, payload string) {
		tok := forge(t, k, header, payload)
		checkOutcome(t, v, cv, tok)
		if _, err := v.Verify(tok); err == nil {
			// Whatever we accept, a standard JSON parser must accept too.
			if !json.Valid([]byte(header)) || !json.Valid([]byte(payload)) {
				t.Fatalf("accepted invalid JSON: %q %q", header, payload)
			}
		}
	})
}

// FuzzDecodeSegment compares the hand-written decoder with encoding/base64 in
// strict mode (which, unlike ours, skips "\r" and "\n", so those are removed
// from the comparison).
func FuzzDecodeSegment(f *testing.F) {
	for _, s := range []string{"", "QQ", "QR", "QUI", "QUJ", "QUJD", "_-_-", "a+b/", "AA==", "A", "\n"} {
		f.Add(s)
	}
	strict := base64.RawURLEncoding.Strict()
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\r\n") {
			return
		}
		want, werr := strict.DecodeString(s)
		n := decodedLen(len(s))
		if n < 0 {
			if werr == nil {
				t.Fatalf("%q: we refuse the length, encoding/base64 decodes it", s)
			}
			return
		}
		buf := make([]byte, n)
		got, ok := decodeSegment(buf, s)
		if ok != (werr == nil) {
			t.Fatalf("%q: ok=%v, encoding/base64 err=%v", s, ok, werr)
		}
		if ok && string(buf[:got]) != string(want) {
			t.Fatalf("%q: decoded %x, want %x", s, buf[:got], want)
		}
	})
}

// FuzzParseHeader checks the strict scanner against encoding/json: anything
// we accept is valid JSON, and an object encoding/json cannot parse is never
// accepted.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{`{}`, `{"alg":"EdDSA"}`, `{"a":[1,{"b":null}],"c":-0.5e+3}`, `{"a":"\u00e9\ud83d\ude00"}`, `{"a":1,"a":2}`, `[]`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var m map[string]json.RawMessage
		if err == nil && json.Unmarshal(b, &m) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", b)
		}
		if err == nil && h.hasAlg {
			var alg string
			if json.Unmarshal(m["alg"], &alg) != nil || alg != string(h.alg) {
				t.Fatalf("alg %q, encoding/json says %q", h.alg, alg)
			}
		}
	})
}
