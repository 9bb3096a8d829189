package main

import (
	"encoding/base64"
	"fmt"
	"log/slog"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
)

// newAuth returns the authenticator the auth section asks for (nil with
// mode none, which leaves every request to the local admin of the default
// tenant), the API key service over the backend (always: an admin manages
// keys before turning them on), and a line for the startup log saying
// which credentials are accepted.
func newAuth(c config.Config, backend store.Backend, logger *slog.Logger) (*auth.Authenticator, *auth.Keys, string, error) {
	keys := auth.NewKeys(backend, auth.KeysOptions{})
	a := c.Auth
	if !a.AcceptsKeys() && !a.AcceptsJWT() {
		return nil, keys, "none: every request acts for tenant " + vigil.DefaultTenant + "; loopback only", nil
	}
	opts := auth.Options{StreamTTL: a.StreamTokenTTL}
	desc := "mode " + a.Mode
	if a.AcceptsKeys() {
		opts.Keys = keys
	}
	if a.AcceptsJWT() {
		j := a.JWT
		leeway := j.Leeway
		if leeway == 0 {
			leeway = -1 // auth.leeway 0s means none; JWTOptions' zero is its default
		}
		v, err := auth.NewJWT(auth.JWTOptions{
			HS256Secret: []byte(j.HS256Secret), JWKSURL: j.JWKSURL,
			Issuer: j.Issuer, Audience: j.Audience, Leeway: leeway,
			Claims: auth.ClaimNames{Tenant: j.TenantClaim, User: j.UserClaim, Roles: j.RolesClaim},
			Logger: logger,
		})
		if err != nil {
			return nil, nil, "", fmt.Errorf("auth.jwt: %w", err)
		}
		opts.JWT = v
		if j.JWKSURL != "" {
			desc += ", JWTs signed by the keys at " + j.JWKSURL
		} else {
			desc += ", HS256 JWTs"
		}
		desc += " from " + j.Issuer + " for " + j.Audience
	}
	if a.StreamSecret != "" {
		secret, err := base64.StdEncoding.DecodeString(a.StreamSecret)
		if err != nil {
			return nil, nil, "", fmt.Errorf("auth.stream_secret: %w", err) // Validate rules this out
		}
		opts.StreamSecret = secret
	} else if c.Store.Driver == config.DriverRedis {
		logger.Warn("auth.stream_secret is not set: a stream token works only on the instance that issued it; set VIGIL_AUTH_STREAM_SECRET on every instance")
	}
	authn, err := auth.New(opts)
	if err != nil {
		return nil, nil, "", err
	}
	return authn, keys, desc, nil
}
