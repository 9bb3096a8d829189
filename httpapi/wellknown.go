package httpapi

import (
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"
)

// OAuth discovery. When Options.AuthorizationServer names the issuer of
// the JWTs the server accepts, /mcp is published as an OAuth 2.0 protected
// resource (RFC 9728), so that an OAuth-capable MCP client that is turned
// away finds where to get a token:
//
//  1. every 401 of /mcp carries, in its WWW-Authenticate challenge,
//     resource_metadata: the URL of the metadata below (denied, auth.go);
//  2. the metadata is served, without credentials, at both well-known
//     paths a client may try: /.well-known/oauth-protected-resource/mcp,
//     where RFC 9728 §3.1 puts the metadata of resource <origin>/mcp, and
//     the bare /.well-known/oauth-protected-resource, which clients fall
//     back to. It says the resource is <base>/mcp, its authorization
//     server is the issuer, and tokens go in the Authorization header.
//
// The client then asks the issuer for a token (its own metadata, RFC 8414,
// is the issuer's to serve) and presents it as a JWT, checked like any
// other. Vigil is not an authorization server and issues no tokens.

// mcpPattern is the pattern MCP is mounted under (Server.Handle).
const mcpPattern = "/mcp"

// The paths of the protected resource metadata (routePermissions lists
// them as public routes).
const (
	metadataPath    = server.WellKnownProtectedResourcePath          // "/.well-known/oauth-protected-resource"
	mcpMetadataPath = server.WellKnownProtectedResourcePath + "/mcp" // RFC 9728 §3.1, for resource <origin>/mcp
)

// oauthDiscovery reports whether the server publishes /mcp as an OAuth
// protected resource: authentication is on and an authorization server
// is configured.
func (s *Server) oauthDiscovery() bool {
	return s.opts.Auth != nil && s.opts.AuthorizationServer != ""
}

// wellKnownRoutes registers the protected resource metadata routes when
// the server publishes it, and none otherwise (they answer 404 then).
//
//	GET /.well-known/oauth-protected-resource       the metadata of /mcp
//	GET /.well-known/oauth-protected-resource/mcp   the same
func (s *Server) wellKnownRoutes() {
	if !s.oauthDiscovery() {
		return
	}
	s.mux.HandleFunc("GET "+metadataPath, s.protectedResourceMetadata)
	s.mux.HandleFunc("GET "+mcpMetadataPath, s.protectedResourceMetadata)
}

// protectedResourceMetadata serves the RFC 9728 metadata of /mcp, by
// mcp-go's handler: JSON with Cache-Control no-store, and CORS headers
// that let browser clients read it. The document depends on the request's
// origin when Options.BaseURL is empty, so it is made per request.
func (s *Server) protectedResourceMetadata(w http.ResponseWriter, r *http.Request) {
	server.NewProtectedResourceMetadataHandler(server.ProtectedResourceMetadataConfig{
		Resource:               s.publicBase(r) + mcpPattern,
		AuthorizationServers:   []string{s.opts.AuthorizationServer},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Vigil",
	}).ServeHTTP(w, r)
}

// resourceMetadataURL is the URL a 401 of /mcp points OAuth clients to.
func (s *Server) resourceMetadataURL(r *http.Request) string {
	return s.publicBase(r) + mcpMetadataPath
}

// publicBase returns the URL clients reach the server at, without a
// trailing slash: Options.BaseURL, or else the origin r was sent to (its
// Host header, https when the connection is TLS). Forwarded headers are
// not trusted: behind a proxy, set server.base_url.
func (s *Server) publicBase(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return strings.TrimSuffix(s.opts.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
