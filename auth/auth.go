package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// Kind is the kind of a bearer token, told by its form.
type Kind int

// The kinds of bearer token.
const (
	KindAPIKey      Kind = iota + 1 // "vgl_…"
	KindJWT                         // three base64url segments
	KindStreamToken                 // "vst_…"
)

// String names the kind for messages: "API key", "JWT", "stream token".
func (k Kind) String() string {
	switch k {
	case KindAPIKey:
		return "API key"
	case KindJWT:
		return "JWT"
	case KindStreamToken:
		return "stream token"
	}
	return "unknown"
}

// MaxAuthorization is the longest Authorization header ParseAuthorization
// reads, in bytes.
const MaxAuthorization = 8 << 10

// ErrNoCredentials is the error of a request that carries no credentials
// at all, as opposed to bad ones: HTTP answers it with a bare
// WWW-Authenticate challenge.
var ErrNoCredentials = vigil.Errorf(vigil.Unauthorized, "no credentials; send Authorization: Bearer <API key or JWT>")

// ParseAuthorization parses an Authorization header of the form
// "Bearer <token>" (the scheme in any case, RFC 6750's token syntax) and
// tells the token's kind by its form. An empty header is ErrNoCredentials;
// anything else it cannot read is a vigil.Unauthorized error that never
// quotes the header, which may hold a secret.
func ParseAuthorization(header string) (Kind, string, error) {
	if header == "" {
		return 0, "", ErrNoCredentials
	}
	if len(header) > MaxAuthorization {
		return 0, "", vigil.Errorf(vigil.Unauthorized, "Authorization header over %d bytes", MaxAuthorization)
	}
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return 0, "", vigil.Errorf(vigil.Unauthorized, "unsupported authorization scheme; want Authorization: Bearer <token>")
	}
	token = strings.TrimLeft(token, " ")
	if !isB64Token(token) {
		return 0, "", vigil.Errorf(vigil.Unauthorized, "malformed bearer token")
	}
	switch {
	case strings.HasPrefix(token, KeyPrefix):
		return KindAPIKey, token, nil
	case strings.HasPrefix(token, StreamTokenPrefix):
		return KindStreamToken, token, nil
	case strings.Count(token, ".") == 2:
		return KindJWT, token, nil
	}
	return 0, "", vigil.Errorf(vigil.Unauthorized, "unrecognised bearer token; want an API key (%s…) or a JWT", KeyPrefix)
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// LongLived reports whether s looks like a long-lived credential, an API
// key or a JWT, well formed or not. Such credentials are never accepted in
// a URL, where proxies, logs and browser history keep them.
func LongLived(s string) bool {
	if LooksLikeKey(s) {
		return true
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	head, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return false
	}
	var h map[string]any
	return json.Unmarshal(head, &h) == nil && h["alg"] != nil
}

// Options configure an Authenticator. The zero value accepts no bearer
// credential at all (only stream tokens it signed itself).
type Options struct {
	// Keys verifies API keys; nil refuses them.
	Keys *Keys
	// JWT verifies JWTs; nil refuses them.
	JWT *JWT
	// StreamSecret is the HMAC key of stream tokens, at least 32 bytes.
	// Every instance serving the same clients needs the same one. Nil
	// means a random key of this Authenticator's own: its tokens work only
	// on this process, until it stops.
	StreamSecret []byte
	// StreamTTL is how long a stream token is valid. Default 5 minutes.
	StreamTTL time.Duration
	// Now is the clock of stream tokens. Default time.Now.
	Now func() time.Time
}

// MinStreamSecret is the shortest Options.StreamSecret New accepts.
const MinStreamSecret = 32

// Authenticator turns credentials into principals. It is safe for
// concurrent use.
type Authenticator struct {
	keys   *Keys
	jwt    *JWT
	stream streamSigner
}

// New returns an Authenticator configured by opts.
func New(opts Options) (*Authenticator, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StreamTTL <= 0 {
		opts.StreamTTL = DefaultStreamTTL
	}
	key := append([]byte(nil), opts.StreamSecret...)
	switch {
	case len(key) == 0:
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	case len(key) < MinStreamSecret:
		return nil, errors.New("auth: the stream token secret must be at least 32 bytes")
	}
	return &Authenticator{
		keys:   opts.Keys,
		jwt:    opts.JWT,
		stream: streamSigner{key: key, ttl: opts.StreamTTL, now: opts.Now},
	}, nil
}

// Authenticate returns the principal an Authorization header's bearer
// token acts as. No header is ErrNoCredentials; a token of a kind this
// Authenticator does not accept, or one that fails verification, is a
// vigil.Unauthorized error saying why; a backend that does not answer (the
// key store, the JWKS) is its own error, so that it is not mistaken for
// bad credentials. Stream tokens are refused here: they are accepted only
// in the URL of the routes they are for (see VerifyStreamToken).
func (a *Authenticator) Authenticate(ctx context.Context, header string) (vigil.Principal, error) {
	kind, token, err := ParseAuthorization(header)
	if err != nil {
		return vigil.Principal{}, err
	}
	switch kind {
	case KindAPIKey:
		if a.keys == nil {
			return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "API keys are not accepted by this server")
		}
		return a.keys.Verify(ctx, token)
	case KindJWT:
		if a.jwt == nil {
			return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "JWTs are not accepted by this server")
		}
		return a.jwt.Verify(ctx, token)
	default:
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "a stream token is accepted only as ?token= on GET /v1/threads/{id}/events and /replay")
	}
}

// StreamToken returns a stream token granting p's tenant and user reading
// thread's events, and when it expires. The caller has checked that p may
// read the thread and that it exists.
func (a *Authenticator) StreamToken(p vigil.Principal, thread string) (string, time.Time, error) {
	if !vigil.ValidID(p.Tenant) || p.User == "" {
		return "", time.Time{}, vigil.Errorf(vigil.Unauthorized, "no principal to grant a stream token to")
	}
	if !vigil.ValidID(thread) {
		return "", time.Time{}, vigil.Errorf(vigil.NotFound, "thread %q not found", thread)
	}
	tok, exp := a.stream.sign(p, thread)
	return tok, exp, nil
}

// VerifyStreamToken returns the grant of a stream token this
// Authenticator (or one sharing its StreamSecret) signed, or a
// vigil.Unauthorized error when it is malformed, forged or expired.
func (a *Authenticator) VerifyStreamToken(token string) (StreamGrant, error) {
	return a.stream.verify(token)
}
