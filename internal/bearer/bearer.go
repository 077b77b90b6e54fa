// Package bearer reads a Bearer token from an HTTP Authorization header as RFC 9110 §11 and
// RFC 6750 §2.1 define it: the scheme is case-insensitive, one or more spaces follow it, and
// the token is one b64token (letters, digits and -._~+/ then optional trailing '=').
package bearer

import "strings"

// Token returns the token of an "Authorization: Bearer <token>" header value. ok is false for
// any other scheme, a missing or malformed token, or extra parameters.
func Token(header string) (tok string, ok bool) {
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" || !isB64Token(rest) {
		return "", false
	}
	return rest, true
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
