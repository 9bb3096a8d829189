package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

func TestParseAuthorization(t *testing.T) {
	jwtLike := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	key := "vgl_0123456789abcdef0123_" + strings.Repeat("a", 52)
	tests := []struct {
		header string
		kind   auth.Kind
		token  string
		err    string // "" for none
	}{
		{"Bearer " + key, auth.KindAPIKey, key, ""},
		{"bearer " + key, auth.KindAPIKey, key, ""},
		{"BEARER   " + jwtLike, auth.KindJWT, jwtLike, ""},
		{"Bearer vst_abc.def", auth.KindStreamToken, "vst_abc.def", ""},
		{"Bearer abc==", 0, "", "unrecognised bearer token"},
		{"", 0, "", "no credentials"},
		{"Bearer", 0, "", "malformed bearer token"},
		{"Bearer ", 0, "", "malformed bearer token"},
		{"Bearer a b", 0, "", "malformed bearer token"},
		{"Bearer ===", 0, "", "malformed bearer token"},
		{"Bearer a=b", 0, "", "malformed bearer token"},
		{"Basic dXNlcjpwYXNz", 0, "", "unsupported authorization scheme"},
		{"Bearer\t" + key, 0, "", "unsupported authorization scheme"},
		{key, 0, "", "unsupported authorization scheme"},
		{"Bearer " + strings.Repeat("a", auth.MaxAuthorization), 0, "", "Authorization header over"},
	}
	for _, tt := range tests {
		kind, token, err := auth.ParseAuthorization(tt.header)
		if tt.err == "" {
			if err != nil || kind != tt.kind || token != tt.token {
				t.Errorf("ParseAuthorization(%.40q) = %v, %.20q, %v; want %v", tt.header, kind, token, err, tt.kind)
			}
			continue
		}
		if vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseAuthorization(%.40q) error %v, want %q", tt.header, err, tt.err)
		}
		if err != nil && len(tt.header) > 8 && strings.Contains(err.Error(), tt.header[7:]) {
			t.Errorf("ParseAuthorization(%.40q): the error quotes the credential: %v", tt.header, err)
		}
	}
}

func TestLongLived(t *testing.T) {
	now := t0
	for s, want := range map[string]bool{
		"vgl_whatever": true,
		sign(t, jwt.SigningMethodHS256, hsSecret, "", claimsAt(now)): true,
		"eyJhbGciOiJub25lIn0.e30.":                                   true,
		"vst_eyJ0IjoiYSJ9.c2ln":                                      false,
		"a.b.c":                                                      false,
		"2026-11-22":                                                 false,
		"":                                                           false,
	} {
		if got := auth.LongLived(s); got != want {
			t.Errorf("LongLived(%.30q) = %v, want %v", s, got, want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	now := t0
	keys := auth.NewKeys(newMemKeys(), auth.KeysOptions{Now: func() time.Time { return now }})
	raw, _, err := keys.Create(ctx, auth.KeySpec{Tenant: "acme", User: "alice", Roles: []string{auth.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	v := newHS(t, &now, auth.ClaimNames{})
	token := sign(t, jwt.SigningMethodHS256, hsSecret, "", claimsAt(now))

	both, err := auth.New(auth.Options{Keys: keys, JWT: v})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := both.Authenticate(ctx, "Bearer "+raw); err != nil || p.User != "alice" {
		t.Errorf("API key: %+v, %v", p, err)
	}
	if p, err := both.Authenticate(ctx, "Bearer "+token); err != nil || p.User != "alice" || p.Tenant != "acme" {
		t.Errorf("JWT: %+v, %v", p, err)
	}
	if _, err := both.Authenticate(ctx, ""); err != auth.ErrNoCredentials {
		t.Errorf("no header: %v, want ErrNoCredentials", err)
	}
	st, _, err := both.StreamToken(vigil.Principal{Tenant: "acme", User: "alice"}, "th_1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := both.Authenticate(ctx, "Bearer "+st); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), "?token=") {
		t.Errorf("stream token in the header: %v", err)
	}

	keysOnly, _ := auth.New(auth.Options{Keys: keys})
	if _, err := keysOnly.Authenticate(ctx, "Bearer "+token); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), "JWTs are not accepted") {
		t.Errorf("JWT on a keys-only server: %v", err)
	}
	jwtOnly, _ := auth.New(auth.Options{JWT: v})
	if _, err := jwtOnly.Authenticate(ctx, "Bearer "+raw); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), "API keys are not accepted") {
		t.Errorf("API key on a JWT-only server: %v", err)
	}
	if _, err := auth.New(auth.Options{StreamSecret: []byte("short")}); err == nil {
		t.Error("New accepted a short stream secret")
	}
}

func TestStreamToken(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	secret := []byte("stream secret of at least 32 bytes!!")
	a, err := auth.New(auth.Options{StreamSecret: secret, StreamTTL: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	alice := vigil.Principal{Tenant: "acme", User: "alice", Roles: []string{auth.Admin}}
	tok, exp, err := a.StreamToken(alice, "th_1")
	if err != nil || !strings.HasPrefix(tok, "vst_") || !exp.Equal(t0.Add(time.Minute)) {
		t.Fatalf("StreamToken = %q, %v, %v", tok, exp, err)
	}
	g, err := a.VerifyStreamToken(tok)
	if err != nil || g.Tenant != "acme" || g.User != "alice" || g.Thread != "th_1" || !g.Expires.Equal(exp) {
		t.Fatalf("VerifyStreamToken = %+v, %v", g, err)
	}
	if p := g.Principal(); p.Tenant != "acme" || p.User != "alice" || len(p.Roles) != 0 {
		t.Errorf("a stream token's principal %+v holds roles", p)
	}

	// Another instance with the same secret accepts it; one with another
	// secret does not.
	same, _ := auth.New(auth.Options{StreamSecret: secret, Now: clock})
	if _, err := same.VerifyStreamToken(tok); err != nil {
		t.Errorf("same secret: %v", err)
	}
	other, _ := auth.New(auth.Options{Now: clock})
	if _, err := other.VerifyStreamToken(tok); vigil.ErrorCode(err) != vigil.Unauthorized {
		t.Errorf("other secret: %v", err)
	}

	head, sig, _ := strings.Cut(tok, ".")
	forged, _, _ := other.StreamToken(vigil.Principal{Tenant: "globex", User: "eve"}, "th_1")
	fhead, _, _ := strings.Cut(forged, ".")
	for name, bad := range map[string]string{
		"payload swapped": fhead + "." + sig,
		"signature cut":   head + "." + sig[:len(sig)-2],
		"no signature":    head,
		"not a token":     "vgl_x",
		"empty":           "",
	} {
		if _, err := a.VerifyStreamToken(bad); vigil.ErrorCode(err) != vigil.Unauthorized {
			t.Errorf("%s: VerifyStreamToken = %v, want unauthorized", name, err)
		}
	}

	now = exp
	if _, err := a.VerifyStreamToken(tok); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	if _, _, err := a.StreamToken(vigil.Principal{}, "th_1"); err == nil {
		t.Error("StreamToken for no principal succeeded")
	}
	if _, _, err := a.StreamToken(alice, "a/b"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("StreamToken for a malformed thread: %v", err)
	}
}
