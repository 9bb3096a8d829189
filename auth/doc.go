// Package auth decides who a request acts for and what it may do, the same
// way for REST, SSE and MCP.
//
// # Credentials
//
// A request proves who it acts for with one of three credentials, each of
// which becomes a vigil.Principal (tenant, user, roles):
//
//   - API keys ("vgl_<id>_<secret>"), made by Keys.Create and shown once.
//     A Store holds only the key's id and the SHA-256 of its secret, with
//     the tenant, user and roles it acts as; Keys.Verify finds the record
//     by id and compares hashes in constant time. A revoked or expired key
//     is refused.
//   - JWT bearer tokens from an identity provider, checked by a JWT:
//     HS256 with a shared secret, or RS256/ES256 (and their larger
//     siblings) with keys fetched from a JWKS URL, cached, and refetched
//     when a token names a key id the cache lacks. Issuer, audience and
//     expiry (with a small leeway) are checked; MapClaims turns the claims
//     into a principal by configurable claim names.
//   - Stream tokens ("vst_…"), for browsers' EventSource, which cannot send
//     headers: short-lived, HMAC-signed, read-only, for one thread of one
//     tenant. They are the only credential ever accepted in a URL.
//
// An Authenticator holds the verifiers a deployment turned on and maps an
// Authorization header (ParseAuthorization) to a principal.
//
// # Permissions
//
// Roles (admin, developer, member, viewer) grant permissions through one
// table in this package; Allowed is the single check every edge calls, and
// its Forbidden error names the permission that was missing.
//
// Data flows one way: the transport (httpapi, mcpserver) hands credentials
// to an Authenticator, puts the principal in the request's context
// (vigil.WithPrincipal), and asks Allowed before acting; stores see only the
// tenant that came out of it.
package auth
