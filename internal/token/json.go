package token

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// A minimal, strict JSON scanner for the header and the claims.
//
// encoding/json would cost reflection and several allocations per token and
// silently accepts duplicate keys (the last one wins), which lets two parsers
// disagree about the same token. This scanner accepts exactly RFC 8259 JSON,
// requires an object at the top level, refuses duplicate member names (after
// unescaping, so "k\u0069d" is "kid") and invalid UTF-8, and limits nesting.

const maxDepth = 16

// maxMembers bounds any top-level object we parse.
const maxMembers = 64

type jsonScanner struct {
	b []byte
	i int
	// seen records where the top-level member names are, for duplicate
	// detection. Offsets rather than slices, in a fixed array: a scanner
	// holding pointers into its input (or into itself) would make the
	// escape analysis move the input and the scanner to the heap.
	seen  [maxMembers]nameSpan
	nseen int
}

// nameSpan is the raw (still escaped) text of a member name in the input.
type nameSpan struct {
	start, end int32
	escaped    bool
}

func (s *jsonScanner) sameName(a nameSpan, name []byte) bool {
	raw := s.b[a.start:a.end]
	if !a.escaped {
		return bytes.Equal(raw, name)
	}
	prev, ok := unescape(raw)
	return ok && bytes.Equal(prev, name)
}

func (s *jsonScanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// begin starts the top-level object.
func (s *jsonScanner) begin() bool {
	if !utf8.Valid(s.b) {
		return false
	}
	s.nseen = 0
	s.skipWS()
	if s.peek() != '{' {
		return false
	}
	s.i++
	return true
}

// next moves to the next member of the top-level object and returns its name
// (unescaped), leaving the scanner at the value. done is set at the closing
// brace. maxMembers bounds the object.
func (s *jsonScanner) next(limit int) (name []byte, done, ok bool) {
	s.skipWS()
	if s.nseen == 0 {
		if s.peek() == '}' {
			s.i++
			return nil, true, true
		}
	} else {
		switch s.peek() {
		case '}':
			s.i++
			return nil, true, true
		case ',':
			s.i++
			s.skipWS()
		default:
			return nil, false, false
		}
	}
	start := s.i + 1
	raw, escaped, ok := s.readString()
	if !ok {
		return nil, false, false
	}
	span := nameSpan{start: int32(start), end: int32(start + len(raw)), escaped: escaped}
	if escaped {
		if raw, ok = unescape(raw); !ok {
			return nil, false, false
		}
	}
	if s.nseen >= limit || s.nseen >= maxMembers {
		return nil, false, false
	}
	for _, prev := range s.seen[:s.nseen] {
		if s.sameName(prev, raw) {
			return nil, false, false
		}
	}
	s.seen[s.nseen] = span
	s.nseen++
	s.skipWS()
	if s.peek() != ':' {
		return nil, false, false
	}
	s.i++
	s.skipWS()
	return raw, false, true
}

// end checks that nothing but whitespace follows the top-level object.
func (s *jsonScanner) end() bool {
	s.skipWS()
	return s.i == len(s.b)
}

// readString reads a string value and returns its raw contents between the
// quotes, and whether it contains escapes to resolve with unescape.
func (s *jsonScanner) readString() (raw []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if hexValue(h) < 0 {
						return nil, false, false
					}
				}
				s.i += 6
			default:
				return nil, false, false
			}
		default:
			s.i++
		}
	}
	return nil, false, false
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func hex4(b []byte) rune {
	return rune(hexValue(b[0])<<12 | hexValue(b[1])<<8 | hexValue(b[2])<<4 | hexValue(b[3]))
}

// unescape resolves the escapes of a string already checked by readString.
// It refuses unpaired surrogates instead of replacing them, so that no two
// distinct encodings decode to the same name.
func unescape(raw []byte) ([]byte, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			out = append(out, raw[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
					return nil, false
				}
				r2 := hex4(raw[i+2 : i+6])
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return nil, false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		}
		i += 2
	}
	return out, true
}

// stringValue reads a string value and returns it unescaped.
func (s *jsonScanner) stringValue() ([]byte, bool) {
	raw, escaped, ok := s.readString()
	if !ok {
		return nil, false
	}
	if escaped {
		return unescape(raw)
	}
	return raw, true
}

// readNumber reads a number with the exact RFC 8259 grammar and returns its
// text.
func (s *jsonScanner) readNumber() ([]byte, bool) {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.peek() == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if s.digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

func (s *jsonScanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *jsonScanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// elements walks the JSON array at the current position: each is called at every element and
// must consume it, reporting whether it was well formed. The walk checks the commas and the
// closing bracket, so callers deal with elements only.
func (s *jsonScanner) elements(each func() bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	s.skipWS()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		s.skipWS()
		if !each() {
			return false
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// skipValue checks and skips any value, bounding nesting at maxDepth. Nested
// objects are checked for syntax but not for duplicate names: only the top
// level carries meaning for us.
func (s *jsonScanner) skipValue(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.readString()
		return ok
	case c == '-' || (c >= '0' && c <= '9'):
		_, ok := s.readNumber()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '[':
		return s.elements(func() bool { return s.skipValue(depth + 1) })
	case c == '{':
		s.i++
		s.skipWS()
		if s.peek() == '}' {
			s.i++
			return true
		}
		for {
			s.skipWS()
			if _, _, ok := s.readString(); !ok {
				return false
			}
			s.skipWS()
			if s.peek() != ':' {
				return false
			}
			s.i++
			s.skipWS()
			if !s.skipValue(depth + 1) {
				return false
			}
			s.skipWS()
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return true
			default:
				return false
			}
		}
	}
	return false
}
