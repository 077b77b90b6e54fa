// Package permission implements Shiro-style wildcard permissions, the model
// Nightscout uses and camfleet keeps: "resource:action:instance", where each
// part is "*" or a comma list ("camera:stream,snapshot:cams/*").
//
// A permission is parsed once into a compiled form; checking a request against
// a compiled Set does not allocate, so it can run on every HTTP request.
//
// Differences from Apache Shiro's WildcardPermission, chosen on purpose:
//   - Matching is case-sensitive. Kubernetes names and namespaces are, and a
//     grant for "cams/Backyard" must not open "cams/backyard".
//   - Inside a part, "*" is also a glob: "cams/*" matches "cams/backyard".
//     A glob "*" never crosses "/", so "cams/*" does not match "cams/a/b"
//     and "*/backyard" matches the camera "backyard" in any namespace. A part
//     that is exactly "*" (or a list containing "*") matches everything.
//   - Whitespace, control characters and empty parts or subparts are refused
//     at parse time instead of being trimmed or ignored.
package permission

import (
	"errors"
	"fmt"
	"strings"
)

const (
	partDivider    = ':'
	subpartDivider = ','
	wildcard       = "*"
	// maxLength bounds what Parse accepts; real permissions are a few dozen
	// bytes, and a token's claims are size-capped well below this anyway.
	maxLength = 1024
)

// subpart is one element of a comma list.
type subpart struct {
	text string
	// glob is set when text contains "*" and must be matched as a pattern.
	glob bool
}

// part is one colon-separated level of a permission.
type part struct {
	// any is set when the part is "*" or its list contains "*".
	any  bool
	subs []subpart
}

// Permission is a parsed wildcard permission. The zero value implies nothing.
type Permission struct {
	text  string
	parts []part
}

// Parse compiles a permission string. It refuses an empty string, empty parts
// ("camera::x", "camera:") or subparts ("stream,"), and whitespace or control
// characters anywhere.
func Parse(s string) (Permission, error) {
	if s == "" {
		return Permission{}, errors.New("permission is empty")
	}
	if len(s) > maxLength {
		return Permission{}, fmt.Errorf("permission longer than %d bytes", maxLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return Permission{}, fmt.Errorf("permission %q: whitespace or control character at byte %d", s, i)
		}
	}
	// One backing array for all parts and one for all subparts: tokens are
	// compiled on every uncached verification, so allocations count.
	nParts := strings.Count(s, string(partDivider)) + 1
	parts := make([]part, 0, nParts)
	subs := make([]subpart, 0, nParts+strings.Count(s, string(subpartDivider)))
	rest := s
	for i := 1; ; i++ {
		text := rest
		if j := strings.IndexByte(rest, partDivider); j >= 0 {
			text, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		if text == "" {
			return Permission{}, fmt.Errorf("permission %q: part %d is empty", s, i)
		}
		first := len(subs)
		pt := part{}
		for more := true; more; {
			sub := text
			if j := strings.IndexByte(text, subpartDivider); j >= 0 {
				sub, text = text[:j], text[j+1:]
			} else {
				more = false
			}
			if sub == "" {
				return Permission{}, fmt.Errorf("permission %q: part %d has an empty list element", s, i)
			}
			pt.any = pt.any || sub == wildcard
			subs = append(subs, subpart{text: sub, glob: strings.Contains(sub, wildcard)})
		}
		if !pt.any {
			// The list is irrelevant once it contains "*"; dropping it keeps
			// the check a single flag test.
			pt.subs = subs[first:len(subs):len(subs)]
		}
		parts = append(parts, pt)
		if len(parts) == nParts {
			break
		}
	}
	p := Permission{text: s, parts: parts}
	return p, nil
}

// String returns the permission as it was written.
func (p Permission) String() string { return p.text }

// Implies reports whether holding p grants q: part by part, each of q's
// subparts must be matched by p's part at the same level. When p has fewer
// parts than q, the missing trailing parts imply everything ("camera" implies
// "camera:stream:cams/x"); when p has more parts, the extra ones must be "*"
// ("camera:stream:cams/x" does not imply "camera:stream").
func (p Permission) Implies(q Permission) bool {
	if len(p.parts) == 0 || len(q.parts) == 0 {
		return false
	}
	for i, qp := range q.parts {
		if i >= len(p.parts) {
			return true
		}
		pp := p.parts[i]
		if pp.any {
			continue
		}
		if qp.any {
			// A request for "every action" is granted only by "*" itself.
			return false
		}
		for _, qs := range qp.subs {
			if !pp.matches(qs.text) {
				return false
			}
		}
	}
	return p.restIsWildcard(len(q.parts))
}

// allows is Implies for a request given as literal parts, without parsing it.
func (p Permission) allows(parts []string) bool {
	if len(p.parts) == 0 {
		return false
	}
	for i, r := range parts {
		if i >= len(p.parts) {
			return true
		}
		pp := p.parts[i]
		if !pp.any && !pp.matches(r) {
			return false
		}
	}
	return p.restIsWildcard(len(parts))
}

func (p Permission) restIsWildcard(from int) bool {
	for i := from; i < len(p.parts); i++ {
		if !p.parts[i].any {
			return false
		}
	}
	return true
}

func (pt part) matches(s string) bool {
	for _, sub := range pt.subs {
		if sub.glob {
			if globMatch(sub.text, s) {
				return true
			}
		} else if sub.text == s {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern, where "*" matches any run of bytes
// other than "/". It backtracks only to the last star, so it runs in
// O(len(pattern)*len(s)) at worst and never allocates.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starPx >= 0 && s[starSx] != '/':
			// Let the last star swallow one more byte, but never a "/".
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
