package permission

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestImplies(t *testing.T) {
	cases := []struct {
		grant, request string
		want           bool
	}{
		// Exact and list matches.
		{"camera:stream:cams/backyard", "camera:stream:cams/backyard", true},
		{"camera:stream:cams/backyard", "camera:stream:cams/frontdoor", false},
		{"camera:stream,snapshot:cams/*", "camera:snapshot:cams/backyard", true},
		{"camera:stream,snapshot:cams/*", "camera:events:cams/backyard", false},
		{"camera:stream,snapshot:cams/*", "camera:stream,snapshot:cams/backyard", true},
		{"camera:stream:cams/*", "camera:stream,snapshot:cams/backyard", false},
		// Whole-part wildcard and missing trailing parts.
		{"camera:*", "camera:stream:x", true},
		{"camera:*", "camera:stream", true},
		{"camera", "camera:stream:x", true},
		{"camera", "camera", true},
		{"camera", "cameras", false},
		{"camera:*:cams/backyard", "camera:stream:cams/backyard", true},
		{"camera:*:cams/backyard", "camera:stream:cams/frontdoor", false},
		{"*", "camera:stream:cams/backyard", true},
		{"*", "anything", true},
		{"*:*:*", "camera:stream", true},
		// Longer grants do not imply shorter requests unless the extra parts are "*".
		{"camera:stream:cams/backyard", "camera:stream", false},
		{"camera:stream:*", "camera:stream", true},
		{"camera:stream,*", "camera:events:x", true},
		// A request for "*" is granted only by "*".
		{"camera:stream", "camera:*", false},
		{"camera:*", "camera:*", true},
		// Globs inside a part.
		{"camera:stream:cams/*", "camera:stream:cams/backyard", true},
		{"camera:stream:cams/*", "camera:stream:other/backyard", false},
		{"camera:stream:cams/*", "camera:stream:cams/a/b", false},
		{"camera:stream:*/backyard", "camera:stream:garden/backyard", true},
		{"camera:stream:*/backyard", "camera:stream:garden/frontdoor", false},
		{"camera:stream:cams/back*", "camera:stream:cams/backyard", true},
		{"camera:stream:cams/*yard", "camera:stream:cams/backyard", true},
		{"camera:stream:cams/*", "camera:stream:cams/", true},
		// Case sensitivity.
		{"Camera:stream", "camera:stream", false},
		{"camera:stream:cams/Backyard", "camera:stream:cams/backyard", false},
		{"camera:STREAM", "camera:STREAM", true},
		// Different resource.
		{"camera:*", "events:read", false},
		{"camera:stream", "camera:snapshot", false},
	}
	for _, c := range cases {
		t.Run(c.grant+" => "+c.request, func(t *testing.T) {
			g, err := Parse(c.grant)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.grant, err)
			}
			r, err := Parse(c.request)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.request, err)
			}
			if got := g.Implies(r); got != c.want {
				t.Errorf("Implies = %v, want %v", got, c.want)
			}
			set, err := Compile([]string{c.grant})
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Implies(r); got != c.want {
				t.Errorf("Set.Implies = %v, want %v", got, c.want)
			}
			// Allows takes literal parts; it agrees with Implies whenever
			// the request has no lists or wildcards.
			if !strings.ContainsAny(c.request, ",*") {
				if got := set.Allows(strings.Split(c.request, ":")...); got != c.want {
					t.Errorf("Allows = %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{
		"",
		":",
		"camera:",
		":stream",
		"camera::x",
		"camera:stream,:x",
		"camera:,stream",
		"camera:stream ,snapshot",
		"camera :stream",
		" camera",
		"camera\t:stream",
		"camera:stream\n",
		"camera:\x00",
		"camera:\x7f",
		strings.Repeat("a", maxLength+1),
	} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded, want error", s)
		}
	}
	if _, err := Compile([]string{"camera:stream", "bad::"}); err == nil {
		t.Error("Compile with an invalid permission succeeded")
	}
}

func TestAllowsLiteral(t *testing.T) {
	set, err := Compile([]string{"camera:stream:cams/backyard", "events:read"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		parts []string
		want  bool
	}{
		{[]string{"camera", "stream", "cams/backyard"}, true},
		// A "*" or list in a request is literal text, never a wildcard.
		{[]string{"camera", "*", "cams/backyard"}, false},
		{[]string{"camera", "stream,snapshot", "cams/backyard"}, false},
		{[]string{"camera", "stream", "*"}, false},
		{[]string{"events", "read"}, true},
		{[]string{"events", "read", "anything"}, true},
		{[]string{"events"}, false},
		{[]string{}, false},
		{[]string{"camera", "", "cams/backyard"}, false},
	}
	for _, c := range cases {
		if got := set.Allows(c.parts...); got != c.want {
			t.Errorf("Allows(%q) = %v, want %v", c.parts, got, c.want)
		}
	}
	var empty Set
	if empty.Allows("camera") {
		t.Error("the zero Set allowed a request")
	}
	if (Permission{}).Implies(Permission{}) {
		t.Error("the zero Permission implied something")
	}
	all, _ := Compile([]string{"*"})
	if all.Allows("") {
		t.Error(`"*" allowed an empty request part`)
	}
}

func TestChecksDoNotAllocate(t *testing.T) {
	set, err := Compile([]string{"events:read", "camera:snapshot:*", "camera:stream,snapshot:cams/*"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := Parse("camera:stream:cams/backyard")
	if n := testing.AllocsPerRun(100, func() {
		if !set.Allows("camera", "stream", "cams/backyard") {
			t.Fatal("not allowed")
		}
		if !set.Implies(req) {
			t.Fatal("not implied")
		}
	}); n != 0 {
		t.Errorf("checks allocated %v times per run, want 0", n)
	}
}

func TestRoles(t *testing.T) {
	roles, err := CompileRoles(map[string][]string{
		"viewer": {"camera:snapshot:*", "events:read"},
		"admin":  {"*"},
		"family": {"camera:stream,snapshot:home/*", "events:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	perms, err := roles.Permissions("viewer", "family")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"camera:snapshot:*", "events:read", "camera:stream,snapshot:home/*"}
	if strings.Join(perms, " ") != strings.Join(want, " ") {
		t.Errorf("Permissions = %q, want %q", perms, want)
	}
	g, err := roles.Grants("family")
	if err != nil {
		t.Fatal(err)
	}
	if !g.Allows("camera", "stream", "home/door") || g.Allows("camera", "stream", "work/door") {
		t.Error("family grants are wrong")
	}
	if _, err := roles.Permissions("nobody"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if _, err := roles.Grants("viewer", "nobody"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if _, err := CompileRoles(map[string][]string{"bad": {"camera::x"}}); err == nil {
		t.Error("a role with an invalid permission compiled")
	}
	if _, err := CompileRoles(map[string][]string{"": {"camera"}}); err == nil {
		t.Error("a role with an empty name compiled")
	}
}

// TestGlobMatchAgainstRegexp compares the hand-written matcher with the
// equivalent regular expression on random inputs.
func TestGlobMatchAgainstRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab/*"
	gen := func(n int, alpha string) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		pattern := gen(7, alphabet)
		s := gen(7, "ab/")
		pieces := strings.Split(pattern, "*")
		for j := range pieces {
			pieces[j] = regexp.QuoteMeta(pieces[j])
		}
		re := regexp.MustCompile("^" + strings.Join(pieces, "[^/]*") + "$")
		if got, want := globMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	}
}

func BenchmarkAllows(b *testing.B) {
	set, err := Compile([]string{"events:read", "camera:snapshot:*", "camera:stream,snapshot:cams/*"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !set.Allows("camera", "stream", "cams/backyard") {
			b.Fatal("not allowed")
		}
	}
}

// FuzzParse: parsing never panics, a parsed permission implies itself, "*"
// implies it, and Allows agrees with Implies on literal requests.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"camera:stream,snapshot:cams/*", "*", "a::b", "a,", "x:*:y", "cams/*/x"} {
		f.Add(s, "camera:stream:cams/x")
	}
	all, _ := Parse("*")
	f.Fuzz(func(t *testing.T, grant, request string) {
		g, err := Parse(grant)
		if err != nil {
			return
		}
		if g.String() != grant || !g.Implies(g) || !all.Implies(g) {
			t.Fatalf("%q: String %q, implies itself %v, implied by * %v", grant, g.String(), g.Implies(g), all.Implies(g))
		}
		r, err := Parse(request)
		if err != nil || strings.ContainsAny(request, ",*") {
			return
		}
		set := Set{perms: []Permission{g}}
		if set.Allows(strings.Split(request, ":")...) != g.Implies(r) {
			t.Fatalf("grant %q request %q: Allows and Implies disagree", grant, request)
		}
	})
}
