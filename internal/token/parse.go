package token

import "bytes"

// Header and claims parsing on top of the strict scanner. Both return one of
// the preallocated rejections, never a wrapped error, so that the reason is
// exact and a rejection costs no allocation.

const (
	// maxHeaderMembers bounds the header: ours has three members.
	maxHeaderMembers = 16
	// maxClaimMembers bounds the claims of an already authenticated token.
	maxClaimMembers = 64
	// maxPerms bounds the "perms" claim.
	maxPerms = 256
	// maxNumericDate is 9999-12-31T23:59:59Z: anything later is not a date a
	// real issuer writes, and bounding it keeps time arithmetic in range.
	maxNumericDate = 253402300799
)

// header is what the verifier needs from the JOSE header. The byte slices
// point into the decoded header.
type header struct {
	alg, kid, typ          []byte
	hasAlg, hasKid, hasTyp bool
	forbidden              bool
}

// forbiddenHeader reports header parameters we refuse outright (RFC 8725
// section 3): the ones that let a token name or carry its own key (jku, x5u,
// jwk, x5c), change processing (crit, b64), or belong to JWE or nested tokens
// (cty, enc, zip and the key agreement and PBES2 parameters).
func forbiddenHeader(name []byte) bool {
	switch string(name) {
	case "jku", "x5u", "jwk", "x5c", "crit", "b64",
		"cty", "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c":
		return true
	}
	return false
}

// parseHeader returns the header by value: results written through a pointer
// would make the decoded buffer escape to the heap.
func parseHeader(b []byte) (h header, _ error) {
	s := jsonScanner{b: b}
	if !s.begin() {
		return h, errMalformed
	}
	for {
		name, done, ok := s.next(maxHeaderMembers)
		if !ok {
			return h, errMalformed
		}
		if done {
			break
		}
		switch string(name) {
		case "alg":
			h.alg, ok = s.stringValue()
			h.hasAlg = true
		case "kid":
			h.kid, ok = s.stringValue()
			h.hasKid = true
		case "typ":
			h.typ, ok = s.stringValue()
			h.hasTyp = true
		default:
			if forbiddenHeader(name) {
				h.forbidden = true
			}
			ok = s.skipValue(0)
		}
		if !ok {
			return h, errMalformed
		}
	}
	if !s.end() {
		return h, errMalformed
	}
	return h, nil
}

// claims holds the registered claims of a verified payload. Byte slices point
// into the decoded payload.
type claims struct {
	iss, sub, jti          []byte
	hasIss, hasSub, hasJti bool
	exp, nbf, iat          int64
	hasExp, hasNbf, hasIat bool
	hasAud, audMatches     bool
	perms                  []string
	subjectClaim           string
	audiences              []string
}

func parseClaims(b []byte, c *claims) error {
	s := jsonScanner{b: b}
	if !s.begin() {
		return errMalformed
	}
	var bad bool // a claim of the wrong type; reported once the JSON is known good
	for {
		name, done, ok := s.next(maxClaimMembers)
		if !ok {
			return errMalformed
		}
		if done {
			break
		}
		var good bool
		switch {
		case string(name) == "iss":
			c.iss, ok, good = s.optString()
			c.hasIss = true
		case string(name) == c.subjectClaim:
			c.sub, ok, good = s.optString()
			c.hasSub = true
		case string(name) == "jti":
			c.jti, ok, good = s.optString()
			c.hasJti = true
		case string(name) == "exp":
			c.exp, ok, good = s.numericDate()
			c.hasExp = true
		case string(name) == "nbf":
			c.nbf, ok, good = s.numericDate()
			c.hasNbf = true
		case string(name) == "iat":
			c.iat, ok, good = s.numericDate()
			c.hasIat = true
		case string(name) == "aud":
			ok, good = s.audience(c)
			c.hasAud = true
		case string(name) == "perms":
			ok, good = s.permissions(c)
		default:
			ok, good = s.skipValue(0), true
		}
		if !ok {
			return errMalformed
		}
		bad = bad || !good
	}
	if !s.end() {
		return errMalformed
	}
	if bad {
		return errBadClaim
	}
	return nil
}

// optString reads a value that must be a string. ok is false for invalid
// JSON; good is false for valid JSON of another type (null included).
func (s *jsonScanner) optString() (v []byte, ok, good bool) {
	if s.peek() != '"' {
		return nil, s.skipValue(0), false
	}
	v, ok = s.stringValue()
	return v, ok, true
}

// numericDate reads an RFC 7519 NumericDate: a non-negative number of
// seconds up to maxNumericDate. A fraction is allowed and truncated; an
// exponent is refused, since no issuer writes one and 1e300 must not slip
// through as "far future".
func (s *jsonScanner) numericDate() (v int64, ok, good bool) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, s.skipValue(0), false
	}
	text, ok := s.readNumber()
	if !ok {
		return 0, false, false
	}
	if bytes.ContainsAny(text, "eE-") {
		return 0, true, false
	}
	for i, d := range text {
		switch {
		case d == '.':
			return v, true, true
		case i >= 12:
			return 0, true, false
		}
		v = v*10 + int64(d-'0')
	}
	return v, true, v <= maxNumericDate
}

// audience reads "aud" as a string or an array of strings and records whether
// any of them is one of ours.
func (s *jsonScanner) audience(c *claims) (ok, good bool) {
	switch s.peek() {
	case '"':
		v, ok := s.stringValue()
		c.audMatches = c.audMatches || audienceMatches(v, c.audiences)
		return ok, true
	case '[':
	default:
		return s.skipValue(0), false
	}
	good = true
	n := 0
	ok = s.elements(func() bool {
		if n++; n > maxPerms {
			return false
		}
		if s.peek() != '"' {
			good = false
			return s.skipValue(1)
		}
		v, ok := s.stringValue()
		c.audMatches = c.audMatches || (ok && audienceMatches(v, c.audiences))
		return ok
	})
	return ok, ok && good
}

func audienceMatches(v []byte, ours []string) bool {
	for _, a := range ours {
		if string(v) == a {
			return true
		}
	}
	return false
}

// permissions reads "perms" as an array of strings; more than maxPerms entries, or one that is
// not a string, make the claim bad.
func (s *jsonScanner) permissions(c *claims) (ok, good bool) {
	if s.peek() != '[' {
		return s.skipValue(0), false
	}
	good = true
	ok = s.elements(func() bool {
		if s.peek() != '"' {
			good = false
			return s.skipValue(1)
		}
		v, ok := s.stringValue()
		if ok && len(c.perms) < maxPerms {
			c.perms = append(c.perms, string(v))
		} else if ok {
			good = false
		}
		return ok
	})
	return ok, ok && good
}
