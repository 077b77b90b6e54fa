package issuer_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
)

// TestStockOAuthClient: golang.org/x/oauth2, given only the token_endpoint that discovery
// advertises, logs in with the password grant, refreshes through a TokenSource once the token
// has expired, and gets invalid_grant for a reused refresh token, which revokes the family.
func TestStockOAuthClient(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	disc := s.do(http.MethodGet, s.path(".well-known/openid-configuration"), "")
	endpoint := str(disc.body["token_endpoint"])
	if endpoint != s.path("token") {
		t.Fatalf("token_endpoint %q", endpoint)
	}
	if grants, _ := disc.body["grant_types_supported"].([]any); len(grants) != 2 {
		t.Errorf("grant_types_supported %v", disc.body["grant_types_supported"])
	}
	conf := &oauth2.Config{ClientID: "phone", Endpoint: oauth2.Endpoint{TokenURL: endpoint, AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.Background()
	first, err := conf.PasswordCredentialsToken(ctx, "alice", alicePass)
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	if first.AccessToken == "" || first.RefreshToken == "" || first.TokenType != "Bearer" || first.Expiry.IsZero() {
		t.Fatalf("token %+v", first)
	}
	if u := s.do(http.MethodGet, s.path("userinfo"), "", "Authorization", first.Type()+" "+first.AccessToken); u.status != http.StatusOK || str(u.body["sub"]) != "alice" {
		t.Fatalf("userinfo with the OAuth token: %d %s", u.status, u.raw)
	}
	if _, err := conf.PasswordCredentialsToken(ctx, "alice", "wrong"); !isOAuthError(err, "invalid_grant", http.StatusBadRequest) {
		t.Errorf("wrong password: %v", err)
	}

	// The access token expires (server clock and client alike); the TokenSource refreshes.
	s.clock.Step(16 * time.Minute)
	expired := *first
	expired.Expiry = time.Now().Add(-time.Minute)
	second, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh through the TokenSource: %v", err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatal("the refresh did not give a new pair")
	}
	// The first refresh token again: reuse, refused and the family revoked.
	if _, err := conf.TokenSource(ctx, &expired).Token(); !isOAuthError(err, "invalid_grant", http.StatusBadRequest) {
		t.Errorf("reused refresh token: %v", err)
	}
	newer := *second
	newer.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(ctx, &newer).Token(); !isOAuthError(err, "invalid_grant", http.StatusBadRequest) {
		t.Errorf("after reuse the family's newest refresh token must fail too: %v", err)
	}
}

func isOAuthError(err error, code string, status int) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code && re.Response.StatusCode == status &&
		re.Response.Header.Get("Cache-Control") == "no-store"
}

// TestTokenEndpointErrors: RFC 6749 §5.2 error codes for what a client can get wrong.
func TestTokenEndpointErrors(t *testing.T) {
	s := newService(t, bcrypt.MinCost, false)
	form := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, ctype, body, code string
	}{
		{"unknown grant", form, "grant_type=client_credentials", "unsupported_grant_type"},
		{"no grant", form, "username=alice&password=x", "invalid_request"},
		{"no password", form, "grant_type=password&username=alice", "invalid_request"},
		{"no refresh token", form, "grant_type=refresh_token", "invalid_request"},
		{"JSON body", "application/json", `{"grant_type":"password"}`, "invalid_request"},
		{"bad refresh token", form, "grant_type=refresh_token&refresh_token=abc.def.ghi", "invalid_grant"},
	} {
		r := s.do(http.MethodPost, s.path("token"), tc.body, "Content-Type", tc.ctype)
		if r.status != http.StatusBadRequest || str(r.body["error"]) != tc.code || str(r.body["error_description"]) == "" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	ok := s.do(http.MethodPost, s.path("token"), "grant_type=password&username=bob&password="+bobPass+"&scope=openid", "Content-Type", form)
	if ok.status != http.StatusOK || str(ok.body["access_token"]) == "" || str(ok.body["token_type"]) != "Bearer" || ok.body["expires_in"] == nil || ok.header.Get("Cache-Control") != "no-store" {
		t.Errorf("password grant with a scope: %d %s %v", ok.status, ok.raw, ok.header)
	}
}
