package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilhq/vigil"
)

// Defaults for the zero fields of JWTOptions.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultTenantClaim = "tenant"
	DefaultUserClaim   = "sub"
	DefaultRolesClaim  = "roles"
	// MinHS256Secret is the shortest shared secret NewJWT accepts, in
	// bytes: HS256 is only as strong as its key.
	MinHS256Secret = 32
)

// ClaimNames say which claims of a JWT hold the principal. A name is
// looked up as a top-level claim first; failing that, a name with dots is
// followed through nested objects ("realm_access.roles").
type ClaimNames struct {
	Tenant string // default "tenant"
	User   string // default "sub"
	Roles  string // default "roles"
}

func (n ClaimNames) withDefaults() ClaimNames {
	if n.Tenant == "" {
		n.Tenant = DefaultTenantClaim
	}
	if n.User == "" {
		n.User = DefaultUserClaim
	}
	if n.Roles == "" {
		n.Roles = DefaultRolesClaim
	}
	return n
}

// JWTOptions configure a JWT verifier. Exactly one of HS256Secret and
// JWKSURL is set; Issuer and Audience are required.
type JWTOptions struct {
	// HS256Secret is the shared secret of HS256 tokens, at least
	// MinHS256Secret bytes. With it, only HS256 is accepted.
	HS256Secret []byte
	// JWKSURL is where the identity provider publishes its public keys.
	// With it, RS256/384/512, PS256/384/512 and ES256/384/512 are
	// accepted, each only with a key of its own kind.
	JWKSURL string

	// Issuer must equal the token's iss claim.
	Issuer string
	// Audience must be among the token's aud claim.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
	// Claims name the claims holding tenant, user and roles.
	Claims ClaimNames

	// HTTPClient fetches the JWKS. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// JWKSRefresh is how long a fetched key set is used before it is
	// fetched again. Default 1h.
	JWKSRefresh time.Duration
	// JWKSMinInterval is the shortest time between two fetches, so that
	// tokens naming unknown key ids cannot make the server hammer the
	// identity provider. Default 30s.
	JWKSMinInterval time.Duration
	// Now is the clock tokens are checked against. Default time.Now.
	Now func() time.Time
	// Logger receives failed JWKS fetches. Default slog.Default().
	Logger *slog.Logger
}

// JWT verifies bearer JWTs and maps their claims to a principal. It is
// safe for concurrent use.
type JWT struct {
	parser *jwt.Parser
	claims ClaimNames
	secret []byte
	jwks   *jwks
}

// NewJWT returns a verifier configured by opts, or an error naming what is
// missing or wrong. It does not fetch the JWKS: the first token that needs
// it does.
func NewJWT(opts JWTOptions) (*JWT, error) {
	switch {
	case (len(opts.HS256Secret) > 0) == (opts.JWKSURL != ""):
		return nil, errors.New("auth: want exactly one of an HS256 secret and a JWKS URL")
	case len(opts.HS256Secret) > 0 && len(opts.HS256Secret) < MinHS256Secret:
		return nil, fmt.Errorf("auth: the HS256 secret must be at least %d bytes", MinHS256Secret)
	case opts.Issuer == "":
		return nil, errors.New("auth: a JWT issuer is required")
	case opts.Audience == "":
		return nil, errors.New("auth: a JWT audience is required")
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = DefaultLeeway
	case opts.Leeway < 0:
		opts.Leeway = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &JWT{claims: opts.Claims.withDefaults()}
	methods := []string{"HS256"}
	if opts.JWKSURL != "" {
		methods = jwksMethods
		v.jwks = newJWKS(opts)
	} else {
		v.secret = append([]byte(nil), opts.HS256Secret...)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(opts.Now),
	)
	return v, nil
}

// Verify checks token's signature, issuer, audience and times, and returns
// the principal its claims name. Every failure of the token is a
// vigil.Unauthorized error saying which check failed; a JWKS that cannot be
// fetched is a vigil.Unavailable one.
func (v *JWT) Verify(ctx context.Context, token string) (vigil.Principal, error) {
	var fetchErr error
	keyfunc := func(t *jwt.Token) (any, error) {
		if v.jwks == nil {
			return v.secret, nil
		}
		kid, _ := t.Header["kid"].(string)
		key, err := v.jwks.key(ctx, kid, t.Method.Alg())
		if vigil.ErrorCode(err) == vigil.Unavailable {
			fetchErr = err
		}
		return key, err
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, keyfunc); err != nil {
		if fetchErr != nil {
			return vigil.Principal{}, fetchErr
		}
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "%s", jwtProblem(err))
	}
	return MapClaims(claims, v.claims)
}

// jwtProblem says in a few words why a token was refused. It names the
// failed check, never the token's content.
func jwtProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed JWT"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "JWT has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "JWT is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "JWT audience is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "JWT issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "JWT lacks a required claim (exp, iss or aud)"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		var ve *vigil.Error
		if errors.As(err, &ve) {
			return "JWT " + ve.Message
		}
		return "JWT cannot be verified"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "JWT signature or algorithm is not accepted"
	default:
		return "invalid JWT"
	}
}

// MapClaims returns the principal named by a token's claims: the tenant
// and user claims must be strings, the tenant a vigil.ValidID; a user that
// is not a valid id (an e-mail address, "auth0|42") is replaced by a
// stable one derived from it, "u_" and 40 hex digits of its SHA-256. The
// roles claim may be a list of strings or one string of roles separated by
// spaces or commas; roles Vigil does not know are dropped, and a token
// with none is a principal that may do nothing. A missing or malformed
// tenant or user is a vigil.Unauthorized error naming the claim.
func MapClaims(claims map[string]any, names ClaimNames) (vigil.Principal, error) {
	names = names.withDefaults()
	tenant, ok := claim(claims, names.Tenant).(string)
	if !ok || !vigil.ValidID(tenant) {
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "JWT claim %q must be a tenant id (1 to 128 characters from [A-Za-z0-9_.-])", names.Tenant)
	}
	user, ok := claim(claims, names.User).(string)
	if !ok || user == "" {
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "JWT claim %q must be a non-empty string", names.User)
	}
	if !vigil.ValidID(user) || strings.HasPrefix(user, derivedUserPrefix) {
		sum := sha256.Sum256([]byte(user))
		user = derivedUserPrefix + hex.EncodeToString(sum[:20])
	}
	var given []string
	switch rs := claim(claims, names.Roles).(type) {
	case string:
		given = strings.FieldsFunc(rs, func(r rune) bool { return r == ' ' || r == ',' })
	case []any:
		for _, r := range rs {
			if s, ok := r.(string); ok {
				given = append(given, s)
			}
		}
	case []string:
		given = rs
	}
	roles, _ := NormalizeRoles(given)
	return vigil.Principal{Tenant: tenant, User: user, Roles: roles}, nil
}

// derivedUserPrefix starts the users MapClaims derives from claims that are
// not valid ids. A claim that itself starts so is derived too, so that no
// token can name a derived user directly.
const derivedUserPrefix = "u_"

// claim returns the claim name of claims: the top-level claim of that
// exact name, else, for a dotted name, the value found by following its
// parts through nested objects; nil when there is neither.
func claim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	if !strings.Contains(name, ".") {
		return nil
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}
