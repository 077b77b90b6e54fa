package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"
)

// attackRow is one hostile or borderline token and the exact outcome the
// verifier must give; want "" means the token is accepted.
type attackRow struct {
	name  string
	token func(t testing.TB) string
	want  Reason
}

// hs256 forges an HMAC-SHA256 token keyed with bytes an attacker knows.
func hs256(header, payload string, key []byte) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

// unsigned builds a token with the given raw signature bytes.
func unsigned(header, payload string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(sig)
}

// withHeader signs valid claims under a header with extra members appended.
func withHeader(k SigningKey, extra string) func(testing.TB) string {
	return func(t testing.TB) string {
		h := strings.TrimSuffix(hdr(k.Algorithm, k.KeyID, TypeAccess), "}") + "," + extra + "}"
		return forge(t, k, h, validClaims().json())
	}
}

// withClaims signs the given claims under a valid header.
func withClaims(c claimSet) func(testing.TB) string {
	return func(t testing.TB) string {
		k := getKeys(t).ed
		return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), c.json())
	}
}

// editSegment applies f to segment i (0 header, 1 payload, 2 signature) of a
// valid EdDSA token.
func editSegment(i int, f func(string) string) func(testing.TB) string {
	return func(t testing.TB) string {
		parts := strings.SplitN(validToken(t, getKeys(t).ed), ".", 3)
		parts[i] = f(parts[i])
		return strings.Join(parts, ".")
	}
}

func attackRows() []attackRow {
	return append(namedAttackRows(), alphabetRows()...)
}

// alphabetRows puts "+", "/" and "=" into each segment of a valid token: the
// standard base64 alphabet and padding are refused everywhere.
func alphabetRows() []attackRow {
	var rows []attackRow
	for i, seg := range []string{"header", "payload", "signature"} {
		for _, ch := range []string{"+", "/"} {
			rows = append(rows, attackRow{
				name:  fmt.Sprintf("%q at the start of the %s", ch, seg),
				token: editSegment(i, func(s string) string { return ch + s[1:] }),
				want:  ReasonMalformed,
			})
		}
		rows = append(rows, attackRow{
			name:  fmt.Sprintf("one %q of padding after the %s", "=", seg),
			token: editSegment(i, func(s string) string { return s + "=" }),
			want:  ReasonMalformed,
		})
	}
	return rows
}

func namedAttackRows() []attackRow {
	c := validClaims()
	hour := time.Hour
	return []attackRow{
		// Baselines: otherwise-valid tokens for every allowed algorithm.
		{"valid EdDSA", func(t testing.TB) string { return validToken(t, getKeys(t).ed) }, ""},
		{"valid ES256", func(t testing.TB) string { return validToken(t, getKeys(t).es) }, ""},
		{"valid RS256", func(t testing.TB) string { return validToken(t, getKeys(t).rs) }, ""},

		// alg none in every spelling, with an empty signature.
		{"alg none", func(t testing.TB) string {
			return unsigned(hdr("none", getKeys(t).ed.KeyID, TypeAccess), c.json(), nil)
		}, ReasonUnsupportedAlgorithm},
		{"alg None", func(t testing.TB) string {
			return unsigned(hdr("None", getKeys(t).ed.KeyID, TypeAccess), c.json(), nil)
		}, ReasonUnsupportedAlgorithm},
		{"alg NONE", func(t testing.TB) string {
			return unsigned(hdr("NONE", getKeys(t).ed.KeyID, TypeAccess), c.json(), nil)
		}, ReasonUnsupportedAlgorithm},
		{"alg none without kid", func(t testing.TB) string {
			return unsigned(`{"alg":"none","typ":"at+jwt"}`, c.json(), nil)
		}, ReasonUnsupportedAlgorithm},
		{"alg empty", func(t testing.TB) string {
			return unsigned(hdr("", getKeys(t).ed.KeyID, TypeAccess), c.json(), nil)
		}, ReasonUnsupportedAlgorithm},
		{"alg missing", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, fmt.Sprintf(`{"kid":%q,"typ":"at+jwt"}`, getKeys(t).ed.KeyID), c.json())
		}, ReasonUnsupportedAlgorithm},
		{"alg lower-case eddsa", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr("eddsa", k.KeyID, TypeAccess), c.json())
		}, ReasonUnsupportedAlgorithm},

		// HMAC keyed with our public key (the classic key-confusion attack).
		{"HS256 keyed with the Ed25519 public key", func(t testing.TB) string {
			k := getKeys(t).ed
			return hs256(hdr("HS256", k.KeyID, TypeAccess), c.json(), []byte(k.Signer.Public().(ed25519.PublicKey)))
		}, ReasonUnsupportedAlgorithm},
		{"HS256 keyed with the RSA public key PEM", func(t testing.TB) string {
			k := getKeys(t).rs
			der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			return hs256(hdr("HS256", k.KeyID, TypeAccess), c.json(), pemKey)
		}, ReasonUnsupportedAlgorithm},

		// Algorithm taken from the key, not from the header.
		{"alg RS256 over a valid ES256 signature", func(t testing.TB) string {
			k := getKeys(t).es
			// A genuine ES256 signature over the header as sent.
			input := b64.EncodeToString([]byte(hdr(RS256, k.KeyID, TypeAccess))) + "." + b64.EncodeToString([]byte(c.json()))
			sig, err := signInput(k, []byte(input))
			if err != nil {
				t.Fatal(err)
			}
			return input + "." + b64.EncodeToString(sig)
		}, ReasonAlgorithmMismatch},
		{"alg ES256 naming the EdDSA key", func(t testing.TB) string {
			k := getKeys(t)
			return forge(t, k.es, hdr(ES256, k.ed.KeyID, TypeAccess), c.json())
		}, ReasonAlgorithmMismatch},

		// kid.
		{"no kid", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, `{"alg":"EdDSA","typ":"at+jwt"}`, c.json())
		}, ReasonMissingKeyID},
		{"empty kid", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, hdr(EdDSA, "", TypeAccess), c.json())
		}, ReasonMissingKeyID},
		{"kid not a string", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, `{"alg":"EdDSA","kid":7,"typ":"at+jwt"}`, c.json())
		}, ReasonMalformed},
		{"unknown kid", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, hdr(EdDSA, "no-such-key", TypeAccess), c.json())
		}, ReasonUnknownKey},
		{"kid with a path", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, hdr(EdDSA, "../../../../etc/passwd", TypeAccess), c.json())
		}, ReasonUnknownKey},
		{"kid with SQL", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, hdr(EdDSA, "x' UNION SELECT key FROM keys WHERE '1'='1", TypeAccess), c.json())
		}, ReasonUnknownKey},
		{"kid 4 KiB long", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, hdr(EdDSA, strings.Repeat("k", 4096), TypeAccess), c.json())
		}, ReasonUnknownKey},

		// Headers that choose or carry a key, or change processing.
		{"jku", withHeader(getKeys(nil).ed, `"jku":"https://evil.example/jwks.json"`), ReasonForbiddenHeader},
		{"x5u", withHeader(getKeys(nil).ed, `"x5u":"https://evil.example/cert.pem"`), ReasonForbiddenHeader},
		{"embedded jwk", func(t testing.TB) string {
			// The attacker signs with their own key and embeds it.
			attacker, err := GenerateSigningKey(EdDSA)
			if err != nil {
				t.Fatal(err)
			}
			x := b64.EncodeToString([]byte(attacker.Signer.Public().(ed25519.PublicKey)))
			h := fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"at+jwt","jwk":{"kty":"OKP","crv":"Ed25519","x":%q}}`, attacker.KeyID, x)
			return forge(t, attacker, h, c.json())
		}, ReasonForbiddenHeader},
		{"embedded jwk with our kid", withHeader(getKeys(nil).ed, `"jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`), ReasonForbiddenHeader},
		{"x5c", withHeader(getKeys(nil).ed, `"x5c":["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]`), ReasonForbiddenHeader},
		{"crit with an unknown name", withHeader(getKeys(nil).ed, `"crit":["exp-unknown"],"exp-unknown":true`), ReasonForbiddenHeader},
		{"empty crit", withHeader(getKeys(nil).ed, `"crit":[]`), ReasonForbiddenHeader},
		{"b64 false", withHeader(getKeys(nil).ed, `"b64":false,"crit":["b64"]`), ReasonForbiddenHeader},
		{"b64 false without crit", withHeader(getKeys(nil).ed, `"b64":false`), ReasonForbiddenHeader},
		{"forbidden name spelled with an escape", withHeader(getKeys(nil).ed, `"j\u006bu":"https://evil.example/"`), ReasonForbiddenHeader},
		{"PBES2 header on a three-part token", withHeader(getKeys(nil).ed, `"p2c":2147483647,"p2s":"c2FsdA"`), ReasonForbiddenHeader},
		{"unknown harmless header ignored", withHeader(getKeys(nil).ed, `"x5t":"abc","note":{"a":[1,2,{"b":null}]}`), ""},

		// typ.
		{"refresh token as access token", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeRefresh), c.json())
		}, ReasonWrongType},
		{"typ missing", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, fmt.Sprintf(`{"alg":"EdDSA","kid":%q}`, k.KeyID), c.json())
		}, ReasonWrongType},
		{"typ JWT", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, "JWT"), c.json())
		}, ReasonWrongType},
		{"typ application/at+jwt", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, "application/at+jwt"), c.json())
		}, ""},
		{"typ AT+JWT", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, "AT+JWT"), c.json())
		}, ""},

		// exp.
		{"expired beyond leeway", withClaims(c.with("exp", num(testNow.Add(-testLeeway-time.Second)), "iat", num(testNow.Add(-hour)), "nbf", num(testNow.Add(-hour)))), ReasonExpired},
		{"expired exactly at leeway", withClaims(c.with("exp", num(testNow.Add(-testLeeway)), "iat", num(testNow.Add(-hour)), "nbf", num(testNow.Add(-hour)))), ReasonExpired},
		{"expired within leeway", withClaims(c.with("exp", num(testNow.Add(-testLeeway+time.Second)), "iat", num(testNow.Add(-hour)), "nbf", num(testNow.Add(-hour)))), ""},
		{"exp missing", withClaims(c.without("exp")), ReasonMissingExpiry},
		{"exp a string", withClaims(c.with("exp", q(num(testNow.Add(hour))))), ReasonBadClaim},
		{"exp 1e300", withClaims(c.with("exp", "1e300")), ReasonBadClaim},
		{"exp with an exponent", withClaims(c.with("exp", "1.9e9")), ReasonBadClaim},
		{"exp null", withClaims(c.with("exp", "null")), ReasonBadClaim},
		{"exp negative", withClaims(c.with("exp", "-1")), ReasonBadClaim},
		{"exp past year 9999", withClaims(c.with("exp", "253402300800")), ReasonBadClaim},
		{"exp with a fraction", withClaims(c.with("exp", num(testNow.Add(hour))+".5")), ""},
		{"exp leading zero (invalid JSON)", withClaims(c.with("exp", "0"+num(testNow.Add(hour)))), ReasonMalformed},
		{"exp duplicated", func(t testing.TB) string {
			k := getKeys(t).ed
			p := strings.TrimSuffix(c.json(), "}") + `,"exp":` + num(testNow.Add(100*hour)) + "}"
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), p)
		}, ReasonMalformed},

		// nbf, iat, lifetime.
		{"nbf an hour ahead", withClaims(c.with("nbf", num(testNow.Add(hour)), "exp", num(testNow.Add(2*hour)))), ReasonNotYetValid},
		{"nbf within leeway", withClaims(c.with("nbf", num(testNow.Add(testLeeway-time.Second)))), ""},
		{"iat an hour ahead", withClaims(c.with("iat", num(testNow.Add(hour)), "exp", num(testNow.Add(2*hour)))), ReasonIssuedInFuture},
		{"exp - iat of a year", withClaims(c.with("exp", num(testNow.Add(365*24*hour-time.Minute)), "iat", num(testNow.Add(-time.Minute)))), ReasonLifetimeTooLong},
		{"exp a year ahead without iat", withClaims(c.without("iat").with("exp", num(testNow.Add(365*24*hour)))), ReasonLifetimeTooLong},
		{"exp - iat at the maximum", withClaims(c.with("iat", num(testNow.Add(-time.Minute)), "exp", num(testNow.Add(testMaxLife-time.Minute)))), ""},
		{"exp - iat one second over", withClaims(c.with("iat", num(testNow.Add(-time.Minute)), "exp", num(testNow.Add(testMaxLife-time.Minute+time.Second)))), ReasonLifetimeTooLong},

		// iss.
		{"iss wrong", withClaims(c.with("iss", q("https://evil.example"))), ReasonWrongIssuer},
		{"iss with a trailing slash", withClaims(c.with("iss", q(testIssuer+"/"))), ReasonWrongIssuer},
		{"iss null", withClaims(c.with("iss", "null")), ReasonBadClaim},
		{"iss missing", withClaims(c.without("iss")), ReasonWrongIssuer},
		{"iss an array", withClaims(c.with("iss", "["+q(testIssuer)+"]")), ReasonBadClaim},

		// aud.
		{"aud wrong", withClaims(c.with("aud", q("someone-else"))), ReasonWrongAudience},
		{"aud missing", withClaims(c.without("aud")), ReasonWrongAudience},
		{"aud empty string", withClaims(c.with("aud", `""`)), ReasonWrongAudience},
		{"aud empty array", withClaims(c.with("aud", `[]`)), ReasonWrongAudience},
		{"aud array containing ours", withClaims(c.with("aud", `["someone-else","`+testAudience+`"]`)), ""},
		{"aud array without ours", withClaims(c.with("aud", `["someone-else","camfleet2"]`)), ReasonWrongAudience},
		{"aud array with a number", withClaims(c.with("aud", `["`+testAudience+`",7]`)), ReasonBadClaim},
		{"aud differing in case", withClaims(c.with("aud", q(strings.ToUpper(testAudience)))), ReasonWrongAudience},

		// sub.
		{"sub missing", withClaims(c.without("sub")), ReasonMissingClaim},
		{"sub empty", withClaims(c.with("sub", `""`)), ReasonMissingClaim},
		{"sub a number", withClaims(c.with("sub", `42`)), ReasonBadClaim},

		// perms.
		{"perms invalid", withClaims(c.with("perms", `["camera::x"]`)), ReasonBadClaim},
		{"perms not an array", withClaims(c.with("perms", q("camera:*"))), ReasonBadClaim},

		// Signature.
		{"payload edited with the old signature", func(t testing.TB) string {
			k := getKeys(t).ed
			h, _, s := segments(validToken(t, k))
			evil := c.with("sub", q("admin"), "perms", `["*"]`).json()
			return h + "." + b64.EncodeToString([]byte(evil)) + "." + s
		}, ReasonBadSignature},
		{"header edited with the old signature", func(t testing.TB) string {
			k := getKeys(t).ed
			_, p, s := segments(validToken(t, k))
			h := b64.EncodeToString([]byte(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"at+jwt","x":1}`, k.KeyID)))
			return h + "." + p + "." + s
		}, ReasonBadSignature},
		{"signature stripped", editSegment(2, func(string) string { return "" }), ReasonBadSignature},
		{"signature truncated", editSegment(2, func(s string) string {
			raw, _ := b64.DecodeString(s)
			return b64.EncodeToString(raw[:32])
		}), ReasonBadSignature},
		{"signature cut mid-character", editSegment(2, func(s string) string { return s[:len(s)-5] }), ReasonMalformed},
		{"signature of another key", func(t testing.TB) string {
			other, err := GenerateSigningKey(EdDSA)
			if err != nil {
				t.Fatal(err)
			}
			k := getKeys(t).ed
			return forge(t, other, hdr(EdDSA, k.KeyID, TypeAccess), c.json())
		}, ReasonBadSignature},
		{"ES256 r=s=0", func(t testing.TB) string {
			k := getKeys(t).es
			return unsigned(hdr(ES256, k.KeyID, TypeAccess), c.json(), make([]byte, 64))
		}, ReasonBadSignature},
		{"ES256 DER signature", func(t testing.TB) string {
			k := getKeys(t).es
			input := b64.EncodeToString([]byte(hdr(ES256, k.KeyID, TypeAccess))) + "." + b64.EncodeToString([]byte(c.json()))
			digest := sha256.Sum256([]byte(input))
			der, err := ecdsa.SignASN1(rand.Reader, k.Signer.(*ecdsa.PrivateKey), digest[:])
			if err != nil {
				t.Fatal(err)
			}
			return input + "." + b64.EncodeToString(der)
		}, ReasonBadSignature},
		{"RS256 signature one byte short", func(t testing.TB) string {
			k := getKeys(t).rs
			h, p, s := segments(validToken(t, k))
			sig, _ := b64.DecodeString(s)
			return h + "." + p + "." + b64.EncodeToString(sig[1:])
		}, ReasonBadSignature},

		// Structure.
		{"two segments", func(t testing.TB) string {
			h, p, _ := segments(validToken(t, getKeys(t).ed))
			return h + "." + p
		}, ReasonMalformed},
		{"four segments", func(t testing.TB) string { return validToken(t, getKeys(t).ed) + ".AAAA" }, ReasonMalformed},
		{"trailing dot", func(t testing.TB) string { return validToken(t, getKeys(t).ed) + "." }, ReasonMalformed},
		{"empty header segment", editSegment(0, func(string) string { return "" }), ReasonMalformed},
		{"empty payload segment", editSegment(1, func(string) string { return "" }), ReasonMalformed},
		{"empty token", func(testing.TB) string { return "" }, ReasonMalformed},
		{"Bearer prefix left in", func(t testing.TB) string { return "Bearer " + validToken(t, getKeys(t).ed) }, ReasonMalformed},
		{"JWE compact", func(t testing.TB) string {
			h := b64.EncodeToString([]byte(fmt.Sprintf(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":%q}`, getKeys(t).rs.KeyID)))
			return h + ".AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"
		}, ReasonMalformed},
		{"JWE PBES2 with a huge p2c", func(testing.TB) string { return pbes2JWE }, ReasonMalformed},
		{"JWS JSON general serialization", func(t testing.TB) string {
			h, p, s := segments(validToken(t, getKeys(t).ed))
			return fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p, h, s)
		}, ReasonMalformed},
		{"JWS JSON flattened serialization", func(t testing.TB) string {
			h, p, s := segments(validToken(t, getKeys(t).ed))
			return fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, p, h, s)
		}, ReasonMalformed},
		{"header not an object", func(t testing.TB) string {
			return forge(t, getKeys(t).ed, `["EdDSA"]`, c.json())
		}, ReasonMalformed},
		{"header with duplicate alg", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, fmt.Sprintf(`{"alg":"none","alg":"EdDSA","kid":%q,"typ":"at+jwt"}`, k.KeyID), c.json())
		}, ReasonMalformed},
		{"header with duplicate kid spelled with an escape", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, fmt.Sprintf(`{"alg":"EdDSA","kid":"x","k\u0069d":%q,"typ":"at+jwt"}`, k.KeyID), c.json())
		}, ReasonMalformed},
		{"header with trailing data", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess)+"{}", c.json())
		}, ReasonMalformed},
		{"header with invalid UTF-8", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"at+jwt","x":"\xff"}`, k.KeyID), c.json())
		}, ReasonMalformed},
		{"payload not an object", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), `"alice"`)
		}, ReasonMalformed},
		{"payload with a lone surrogate in a name", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), strings.TrimSuffix(c.json(), "}")+`,"\ud800":1}`)
		}, ReasonMalformed},
		{"payload nested too deep", func(t testing.TB) string {
			k := getKeys(t).ed
			deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), strings.TrimSuffix(c.json(), "}")+`,"x":`+deep+"}")
		}, ReasonMalformed},

		// Canonical base64url only.
		{"padding in header", editSegment(0, func(s string) string { return s + "=" }), ReasonMalformed},
		{"padding in payload", editSegment(1, func(s string) string { return s + "==" }), ReasonMalformed},
		{"padding in signature", editSegment(2, func(s string) string { return s + "==" }), ReasonMalformed},
		{"standard alphabet + in header", editSegment(0, func(s string) string { return "+" + s[1:] }), ReasonMalformed},
		{"standard alphabet / in payload", editSegment(1, func(s string) string { return s[:5] + "/" + s[6:] }), ReasonMalformed},
		{"standard alphabet signature", editSegment(2, func(s string) string {
			raw, _ := b64.DecodeString(s)
			return base64.StdEncoding.EncodeToString(raw)
		}), ReasonMalformed},
		{"non-canonical trailing bits in signature", editSegment(2, func(s string) string {
			// 64 bytes encode to 86 characters whose last one carries 4
			// unused bits; setting one keeps the bytes but not the text.
			last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", s[len(s)-1])
			return s[:len(s)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
		}), ReasonMalformed},
		{"impossible segment length", editSegment(1, func(s string) string { return s + "A" + strings.Repeat("A", (4-(len(s)+1)%4+1)%4) }), ReasonMalformed},
		{"newline inside", editSegment(1, func(s string) string { return s[:8] + "\n" + s[8:] }), ReasonMalformed},
		{"space inside", editSegment(1, func(s string) string { return s[:8] + " " + s[8:] }), ReasonMalformed},

		// Size.
		{"1 MiB token", func(t testing.TB) string {
			k := getKeys(t).ed
			big := c.with("pad", q(strings.Repeat("A", 1<<20))).json()
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), big)
		}, ReasonTooLarge},

		// Nesting.
		{"nested JWS with cty", func(t testing.TB) string {
			k := getKeys(t).ed
			inner := validToken(t, k)
			return forge(t, k, fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"at+jwt","cty":"JWT"}`, k.KeyID), inner)
		}, ReasonForbiddenHeader},
		{"nested JWS without cty", func(t testing.TB) string {
			k := getKeys(t).ed
			return forge(t, k, hdr(EdDSA, k.KeyID, TypeAccess), validToken(t, k))
		}, ReasonMalformed},

		// Revocation.
		{"revoked jti", withClaims(c.with("jti", q("revoked-id"))), ReasonRevoked},
		{"jti absent", withClaims(c.without("jti")), ""},
	}
}

// pbes2JWE is a JWE whose header asks for PBES2 with two billion PBKDF2
// iterations: a verifier that derived a key from it would spin for minutes.
var pbes2JWE = b64.EncodeToString([]byte(`{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","p2c":2147483647,"p2s":"c2FsdHNhbHRzYWx0"}`)) +
	".QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"

func TestAttackTable(t *testing.T) {
	v, _ := newTestVerifier(t)
	cv := NewCachedVerifier(v, 0)
	seen := map[string]bool{}
	for _, row := range attackRows() {
		if seen[row.name] {
			t.Fatalf("duplicate row %q", row.name)
		}
		seen[row.name] = true
		t.Run(row.name, func(t *testing.T) {
			tok := row.token(t)
			for _, check := range []struct {
				name   string
				verify func(string) (Verified, error)
			}{{"Verifier", v.Verify}, {"CachedVerifier", cv.Verify}, {"CachedVerifier again", cv.Verify}} {
				got, err := check.verify(tok)
				if reason := ReasonOf(err); reason != row.want {
					t.Fatalf("%s: reason %q, want %q (err %v)", check.name, reason, row.want, err)
				}
				if err != nil {
					if got.Subject != "" || got.KeyID != "" {
						t.Errorf("%s: rejection returned a non-empty result", check.name)
					}
					if strings.Contains(err.Error(), tok) && tok != "" {
						t.Errorf("%s: error message contains the token", check.name)
					}
					continue
				}
				if got.Subject == "" || got.Issuer != testIssuer || got.KeyID == "" {
					t.Errorf("%s: accepted with an incomplete result %+v", check.name, got)
				}
			}
		})
	}
}

// TestJWERejectedBeforeAnyWork shows that a JWE, including PBES2 with a huge
// iteration count, is refused by the segment scan alone: nothing is decoded,
// so nothing is allocated and no key derivation can happen.
func TestJWERejectedBeforeAnyWork(t *testing.T) {
	v, _ := newTestVerifier(t)
	var err error
	allocs := testing.AllocsPerRun(100, func() { _, err = v.Verify(pbes2JWE) })
	if ReasonOf(err) != ReasonMalformed {
		t.Fatalf("reason %q, want %q", ReasonOf(err), ReasonMalformed)
	}
	if allocs != 0 {
		t.Errorf("rejecting a JWE allocated %v times; it must stop before decoding anything", allocs)
	}
	// The same holds for any structurally wrong token: rejection is free.
	for _, tok := range []string{"", "a.b", "a.b.c.d", `{"payload":"x"}`, strings.Repeat("A", DefaultMaxSize+1)} {
		if n := testing.AllocsPerRun(10, func() { _, err = v.Verify(tok) }); n != 0 {
			t.Errorf("rejecting %.20q allocated %v times", tok, n)
		}
	}
}

func TestNonExpiring(t *testing.T) {
	noExp := withClaims(validClaims().without("exp"))
	farExp := withClaims(validClaims().with("exp", num(testNow.Add(3*365*24*time.Hour))))
	expired := withClaims(validClaims().with("exp", num(testNow.Add(-time.Hour)), "iat", num(testNow.Add(-2*time.Hour))))

	cfg, _ := testConfig(t)
	strict, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowNonExpiring = true
	lenient, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		v    *Verifier
		tok  func(testing.TB) string
		want Reason
	}{
		{"no exp, not allowed", strict, noExp, ReasonMissingExpiry},
		{"no exp, allowed", lenient, noExp, ""},
		{"exp beyond max lifetime, allowed non-expiring", lenient, farExp, ReasonLifetimeTooLong},
		{"expired, allowed non-expiring", lenient, expired, ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.v.Verify(c.tok(t))
			if ReasonOf(err) != c.want {
				t.Fatalf("reason %q, want %q", ReasonOf(err), c.want)
			}
			if err == nil && c.name == "no exp, allowed" && !got.Expiry.IsZero() {
				t.Errorf("non-expiring token has expiry %v", got.Expiry)
			}
		})
	}
}

// TestRefreshVerifier checks that a verifier configured for refresh tokens
// accepts them and refuses access tokens: the types never cross.
func TestRefreshVerifier(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.Type = TypeRefresh
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := getKeys(t).ed
	if _, err := v.Verify(forge(t, k, hdr(EdDSA, k.KeyID, TypeRefresh), validClaims().json())); err != nil {
		t.Errorf("refresh token refused: %v", err)
	}
	if _, err := v.Verify(validToken(t, k)); ReasonOf(err) != ReasonWrongType {
		t.Errorf("access token as refresh token: reason %q, want %q", ReasonOf(err), ReasonWrongType)
	}
}
