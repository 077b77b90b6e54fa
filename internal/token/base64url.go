package token

// A strict base64url decoder working on string segments of the token.
//
// encoding/base64 would need a []byte copy of each segment, accepts "\r" and
// "\n" anywhere, and accepts non-zero padding bits unless Strict is set. Here
// only the 64 URL-safe characters are valid, padding is refused, and the
// unused low bits of the last character must be zero, so that every byte
// string has exactly one accepted encoding (RFC 7515 section 2 and RFC 4648
// section 3.5).

const invalid = 0xff

var b64URLValue = func() (t [256]byte) {
	for i := range t {
		t[i] = invalid
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodedLen returns the decoded size of n base64url characters, or -1 when
// no unpadded encoding has that length.
func decodedLen(n int) int {
	if n%4 == 1 {
		return -1
	}
	return n/4*3 + n%4*3/4
}

// decodeSegment decodes s into dst, which must hold decodedLen(len(s)) bytes.
func decodeSegment(dst []byte, s string) (int, bool) {
	n := decodedLen(len(s))
	if n < 0 || len(dst) < n {
		return 0, false
	}
	di, si := 0, 0
	for ; si+4 <= len(s); si += 4 {
		a, b, c, d := b64URLValue[s[si]], b64URLValue[s[si+1]], b64URLValue[s[si+2]], b64URLValue[s[si+3]]
		if a|b|c|d == invalid || (a|b|c|d)&0xc0 != 0 {
			return 0, false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[di], dst[di+1], dst[di+2] = byte(v>>16), byte(v>>8), byte(v)
		di += 3
	}
	switch len(s) - si {
	case 2:
		a, b := b64URLValue[s[si]], b64URLValue[s[si+1]]
		if (a|b)&0xc0 != 0 || b&0x0f != 0 {
			return 0, false
		}
		dst[di] = a<<2 | b>>4
		di++
	case 3:
		a, b, c := b64URLValue[s[si]], b64URLValue[s[si+1]], b64URLValue[s[si+2]]
		if (a|b|c)&0xc0 != 0 || c&0x03 != 0 {
			return 0, false
		}
		dst[di] = a<<2 | b>>4
		dst[di+1] = b<<4 | c>>2
		di += 2
	}
	return di, true
}
