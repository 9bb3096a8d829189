package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilhq/vigil"
)

// jwksMethods are the algorithms accepted with keys from a JWKS.
var jwksMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// maxJWKS caps the size of a fetched key set.
const maxJWKS = 1 << 20

// jwks is a cached JSON Web Key Set. key serves from the cache while it is
// fresh; a stale cache, or a key id it lacks, makes it fetch again, at most
// once per minInterval. Fetches run one at a time, outside the lock that
// guards the cache, so that tokens with known keys are not held up by a
// fetch when a stale key can serve them.
type jwks struct {
	url         string
	client      *http.Client
	refresh     time.Duration
	minInterval time.Duration
	now         func() time.Time
	logger      *slog.Logger

	fetching sync.Mutex // held by the one fetch under way

	mu        sync.Mutex
	keys      []jwk
	fetchedAt time.Time // of the keys; zero before the first success
	triedAt   time.Time // of the last fetch, successful or not
}

// jwk is one usable public key of the set.
type jwk struct {
	kid string
	alg string // "" when the set does not say
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

func newJWKS(opts JWTOptions) *jwks {
	j := &jwks{
		url: opts.JWKSURL, client: opts.HTTPClient, now: opts.Now,
		refresh: opts.JWKSRefresh, minInterval: opts.JWKSMinInterval, logger: opts.Logger,
	}
	if j.logger == nil {
		j.logger = slog.Default()
	}
	if j.client == nil {
		j.client = &http.Client{Timeout: 10 * time.Second}
	}
	if j.refresh <= 0 {
		j.refresh = time.Hour
	}
	if j.minInterval <= 0 {
		j.minInterval = 30 * time.Second
	}
	return j
}

// key returns the verification key for a token signed with alg under key
// id kid: one key, or for a token without kid every key of the set that
// fits alg (a jwt.VerificationKeySet). A key the set lacks is a
// vigil.Unauthorized error; a set that was never fetched and cannot be is
// a vigil.Unavailable one.
func (j *jwks) key(ctx context.Context, kid, alg string) (any, error) {
	keys, fresh := j.cached()
	k, missing, err := pick(keys, kid, alg)
	if fresh && !missing {
		return k, err // found, or present but unfit: fetching again would not help
	}
	// Stale, or the key is missing: fetch. When another fetch is under way
	// and a stale key fits, use it rather than wait.
	if !j.fetching.TryLock() {
		if err == nil {
			return k, nil
		}
		j.fetching.Lock()
	}
	defer j.fetching.Unlock()
	// The fetch we waited for may have brought the key.
	if keys, fresh = j.cached(); fresh {
		if k, missing, err := pick(keys, kid, alg); !missing {
			return k, err
		}
	}
	if j.due() {
		// A client that hangs up must not cut the fetch short: the next
		// one is minInterval away.
		fetched, err := j.fetch(context.WithoutCancel(ctx))
		if err != nil {
			// The keys we have keep serving; the identity provider may be
			// back by the next fetch.
			j.logger.WarnContext(ctx, "cannot fetch the JWKS", "url", j.url, "err", err)
		} else {
			j.mu.Lock()
			j.keys, j.fetchedAt = fetched, j.now()
			j.mu.Unlock()
		}
	}
	j.mu.Lock()
	keys, never := j.keys, j.fetchedAt.IsZero()
	j.mu.Unlock()
	if never {
		return nil, vigil.Errorf(vigil.Unavailable, "cannot fetch the JWKS to verify the token")
	}
	k, _, err = pick(keys, kid, alg)
	return k, err
}

// due reports whether a fetch may start now, and if so records it as
// tried.
func (j *jwks) due() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	if !j.triedAt.IsZero() && now.Sub(j.triedAt) < j.minInterval {
		return false
	}
	j.triedAt = now
	return true
}

// cached returns the cached keys and whether they are fresh.
func (j *jwks) cached() ([]jwk, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.keys, !j.fetchedAt.IsZero() && j.now().Sub(j.fetchedAt) < j.refresh
}

// pick chooses the key for kid and alg among keys. missing reports that
// the set has no key of that id (or, without kid, none for alg), which a
// fetch might change, as opposed to a key that is there but unfit for alg.
func pick(keys []jwk, kid, alg string) (key any, missing bool, err error) {
	if kid == "" {
		var set jwt.VerificationKeySet
		for _, k := range keys {
			if fits(k, alg) {
				set.Keys = append(set.Keys, k.key)
			}
		}
		if len(set.Keys) == 0 {
			return nil, true, vigil.Errorf(vigil.Unauthorized, "has no key id and the JWKS has no %s key", alg)
		}
		return set, false, nil
	}
	for _, k := range keys {
		if k.kid == kid {
			if !fits(k, alg) {
				return nil, false, vigil.Errorf(vigil.Unauthorized, "key %q is not a %s key", kid, alg)
			}
			return k.key, false, nil
		}
	}
	return nil, true, vigil.Errorf(vigil.Unauthorized, "key id %q is not in the JWKS", kid)
}

// fits reports whether k may verify a token signed with alg: the set's own
// alg, when it gives one, must be alg, and the key's type and curve must be
// those alg uses.
func fits(k jwk, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return want != nil && key.Curve == want
	}
	return false
}

// fetch reads and parses the key set. Keys it cannot use (other types,
// encryption keys, short RSA moduli, points off their curve) are skipped.
func (j *jwks) fetch(ctx context.Context) ([]jwk, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: jwks: %s answered %s", j.url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	if len(b) > maxJWKS {
		return nil, fmt.Errorf("auth: jwks: %s sent over %d bytes", j.url, maxJWKS)
	}
	return parseJWKS(b)
}

// parseJWKS parses a JSON Web Key Set (RFC 7517) and returns its usable
// signature keys.
func parseJWKS(b []byte) ([]jwk, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	var keys []jwk
	for _, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key any
		switch k.Kty {
		case "RSA":
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err1 != nil || err2 != nil || n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
				continue
			}
			key = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[k.Crv]
			if curve == nil {
				continue
			}
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			size := (curve.Params().BitSize + 7) / 8
			if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
				continue
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
			if err != nil {
				continue
			}
			key = pub
		default:
			continue
		}
		keys = append(keys, jwk{kid: k.Kid, alg: k.Alg, key: key})
	}
	return keys, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}
