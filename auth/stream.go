package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// A stream token reads "vst_<payload>.<mac>": StreamTokenPrefix, the
// base64url JSON of a StreamGrant, a dot, and the base64url HMAC-SHA256 of
// everything before the dot. It grants reading one thread's events, and
// nothing else, until it expires.
const (
	// StreamTokenPrefix starts every stream token.
	StreamTokenPrefix = "vst_"
	// DefaultStreamTTL is how long a stream token is valid when
	// Options.StreamTTL is 0.
	DefaultStreamTTL = 5 * time.Minute
	// maxStreamToken bounds the token length verification looks at.
	maxStreamToken = 2048
)

// StreamGrant is what a stream token grants: reading the events of Thread
// in Tenant, as User, until Expires.
type StreamGrant struct {
	Tenant  string
	User    string
	Thread  string
	Expires time.Time
}

// streamPayload is a grant as a token carries it.
type streamPayload struct {
	Tenant string `json:"t"`
	User   string `json:"u"`
	Thread string `json:"th"`
	Exp    int64  `json:"exp"` // Unix seconds
}

// Principal returns the principal a stream token acts as. It holds no
// role: what the token allows is decided by the grant, not by Allowed.
func (g StreamGrant) Principal() vigil.Principal {
	return vigil.Principal{Tenant: g.Tenant, User: g.User}
}

// streamSigner signs and checks stream tokens with one HMAC key.
type streamSigner struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// sign returns a token granting p's tenant and user reading thread, and
// when it expires.
func (s streamSigner) sign(p vigil.Principal, thread string) (string, time.Time) {
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	payload, _ := json.Marshal(streamPayload{Tenant: p.Tenant, User: p.User, Thread: thread, Exp: exp.Unix()}) // cannot fail
	head := StreamTokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return head + "." + base64.RawURLEncoding.EncodeToString(s.mac(head)), exp.UTC()
}

func (s streamSigner) mac(head string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(head))
	return m.Sum(nil)
}

// verify returns the grant of token, or a vigil.Unauthorized error when it
// is malformed, forged or expired.
func (s streamSigner) verify(token string) (StreamGrant, error) {
	bad := vigil.Errorf(vigil.Unauthorized, "invalid stream token")
	if len(token) > maxStreamToken || !strings.HasPrefix(token, StreamTokenPrefix) {
		return StreamGrant{}, bad
	}
	head, sig, ok := strings.Cut(token, ".")
	if !ok {
		return StreamGrant{}, bad
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.mac(head)) {
		return StreamGrant{}, bad
	}
	payload, err := base64.RawURLEncoding.DecodeString(head[len(StreamTokenPrefix):])
	if err != nil {
		return StreamGrant{}, bad
	}
	var sp streamPayload
	if err := json.Unmarshal(payload, &sp); err != nil || !vigil.ValidID(sp.Tenant) || !vigil.ValidID(sp.Thread) || sp.User == "" {
		return StreamGrant{}, bad
	}
	g := StreamGrant{Tenant: sp.Tenant, User: sp.User, Thread: sp.Thread, Expires: time.Unix(sp.Exp, 0).UTC()}
	if !s.now().Before(g.Expires) {
		return StreamGrant{}, vigil.Errorf(vigil.Unauthorized, "stream token has expired; ask POST /v1/threads/%s/stream-token for a new one", g.Thread)
	}
	return g, nil
}
