package auth_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// parseMessages are every message ParseAuthorization may fail with: none
// of them quotes the header.
var parseMessages = []string{
	auth.ErrNoCredentials.Message,
	"Authorization header over 8192 bytes",
	"unsupported authorization scheme; want Authorization: Bearer <token>",
	"malformed bearer token",
	"unrecognised bearer token; want an API key (vgl_…) or a JWT",
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "bearer x", "Bearer vgl_0123456789abcdef0123_" + strings.Repeat("a", 52),
		"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "Bearer vst_e30.c2ln", "Basic dXNlcjpwYXNz",
		"Bearer a b", "Bearer ==", "Bearer a==", "Bearer  \t x", "BEARER ../..", "Bearer é", "Bearer a.b.c.d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		kind, token, err := auth.ParseAuthorization(header)
		if err != nil {
			if vigil.ErrorCode(err) != vigil.Unauthorized {
				t.Fatalf("error code %q, want unauthorized", vigil.ErrorCode(err))
			}
			if !slices.Contains(parseMessages, vigil.ErrorMessage(err)) {
				t.Fatalf("unexpected message %q", vigil.ErrorMessage(err))
			}
			if kind != 0 || token != "" {
				t.Fatalf("an error with kind %v and token %q", kind, token)
			}
			return
		}
		if len(header) > auth.MaxAuthorization || !strings.EqualFold(header[:7], "bearer ") {
			t.Fatalf("accepted %q", header)
		}
		if token == "" || !strings.HasSuffix(header, token) || strings.TrimLeft(header[7:], " ") != token {
			t.Fatalf("token %q is not what follows the scheme in %q", token, header)
		}
		for i := 0; i < len(token); i++ {
			if c := token[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("token %q holds byte %#x", token, c)
			}
		}
		switch kind {
		case auth.KindAPIKey:
			if !strings.HasPrefix(token, auth.KeyPrefix) {
				t.Fatalf("API key %q without the prefix", token)
			}
		case auth.KindStreamToken:
			if !strings.HasPrefix(token, auth.StreamTokenPrefix) {
				t.Fatalf("stream token %q without the prefix", token)
			}
		case auth.KindJWT:
			if strings.Count(token, ".") != 2 {
				t.Fatalf("JWT %q without three segments", token)
			}
		default:
			t.Fatalf("kind %v for %q", kind, token)
		}
	})
}

func FuzzClaimsMapping(f *testing.F) {
	seeds := []struct{ claims, tenant, user, roles string }{
		{`{"tenant":"acme","sub":"alice","roles":["admin","viewer"]}`, "", "", ""},
		{`{"tenant":"acme","sub":"auth0|42","roles":"member developer,viewer"}`, "", "", ""},
		{`{"https://x/t":"acme","email":"a@b.c","realm_access":{"roles":["developer",7,null]}}`, "https://x/t", "email", "realm_access.roles"},
		{`{"org":{"id":"globex"},"sub":"u_123","roles":["Admin","root"]}`, "org.id", "", ""},
		{`{"tenant":"a/b","sub":"x"}`, "", "", ""},
		{`{"tenant":"acme","sub":""}`, "", "", ""},
		{`{"tenant":["acme"],"sub":"x"}`, "", "", ""},
		{`{"a":{"b":{"c":"d"}},"sub":"x"}`, "a.b.c", "", "a.b"},
		{`{"tenant":"acme","sub":"` + strings.Repeat("u", 200) + `"}`, "", "", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.claims), s.tenant, s.user, s.roles)
	}
	f.Fuzz(func(t *testing.T, data []byte, tenantName, userName, rolesName string) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		names := auth.ClaimNames{Tenant: tenantName, User: userName, Roles: rolesName}
		p, err := auth.MapClaims(claims, names)
		again, err2 := auth.MapClaims(claims, names)
		if (err == nil) != (err2 == nil) || p.Tenant != again.Tenant || p.User != again.User || !slices.Equal(p.Roles, again.Roles) {
			t.Fatalf("not deterministic: %+v, %v then %+v, %v", p, err, again, err2)
		}
		if err != nil {
			if vigil.ErrorCode(err) != vigil.Unauthorized {
				t.Fatalf("error code %q, want unauthorized", vigil.ErrorCode(err))
			}
			return
		}
		if !vigil.ValidID(p.Tenant) || !vigil.ValidID(p.User) {
			t.Fatalf("principal %+v has an invalid tenant or user", p)
		}
		known, unknown := auth.NormalizeRoles(p.Roles)
		if len(unknown) > 0 || !slices.Equal(known, p.Roles) {
			t.Fatalf("roles %q are not known, unique and in table order", p.Roles)
		}
		// A user claim that is already a plain id is kept as it is.
		if userName == "" {
			userName = auth.DefaultUserClaim
		}
		if u, ok := claims[userName].(string); ok && vigil.ValidID(u) && !strings.HasPrefix(u, "u_") && p.User != u {
			t.Fatalf("user claim %q became %q", u, p.User)
		}
	})
}
