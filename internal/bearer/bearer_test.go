package bearer

import "testing"

func TestToken(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer   abc", "abc", true},
		{"Bearer mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM", true},
		{"Bearer abc==", "abc==", true},
		{"Bearer a~+/b", "a~+/b", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", false},
		{"Bearer abc def", "", false},
		{"Bearer =abc", "", false},
		{"Bearer ab=c", "", false},
		{"Bearer abc\t", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
		{"Bearer a,b", "", false},
		{"Bearer \"abc\"", "", false},
	} {
		got, ok := Token(tc.header)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c==", "Basic x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := Token(h)
		if ok && (tok == "" || !isB64Token(tok)) {
			t.Fatalf("Token(%q) accepted %q", h, tok)
		}
	})
}
