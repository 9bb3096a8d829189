package toolsregistry

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/vigilhq/vigil"
)

// PluginKind says what serves a plugin tool.
type PluginKind string

// The kinds of plugin.
const (
	// PluginHTTP is one tool served over HTTP by its author: every call is
	// a POST signed with the plugin's secret (see NewHTTPHandler).
	PluginHTTP PluginKind = "http"
	// PluginMCP is a remote MCP server, reached by URL over streamable
	// HTTP, whose tools are mounted under a namespace (see Sync.Mount and
	// Registry.Mount).
	PluginMCP PluginKind = "mcp"
)

// Plugin is a plugin tool version as the store keeps it: the Tool the
// registry shows and what serves it. Its secrets are sealed (AES-256-GCM,
// see Sync), so that neither the store's bytes nor its change messages
// hold them in clear. A Plugin is plain data; Sync turns it into a
// registered tool with a handler.
//
// The store keys a plugin by Tool.Tenant, Tool.Name and Tool.Version. The
// tenant is never Global: plugins belong to a tenant; global tools are
// built in. A remote MCP server (kind mcp) is kept as the RemoteSpec of a
// mount: Tool.Name is its namespace, Tool.Scopes and Tool.Timeout its
// scopes and timeout, and the fields below the rest.
type Plugin struct {
	// Tool is the tool as registered: name, version, schemas, limits.
	Tool Tool `json:"tool"`
	// Kind says what serves the tool.
	Kind PluginKind `json:"kind"`
	// URL is where an HTTP plugin's calls are POSTed, or the endpoint of a
	// remote MCP server.
	URL string `json:"url,omitempty"`
	// Namespace is the prefix a remote MCP server's tools are mounted under
	// (namespace.tool). Kind mcp only.
	Namespace string `json:"namespace,omitempty"`
	// Command starts a remote MCP server over stdio instead of URL (the
	// program and its arguments). Kind mcp only, and never set by Sync: a
	// command runs a program on Vigil's host, which a tenant may not do.
	Command []string `json:"command,omitempty"`
	// Sealed holds the plugin's secrets (the HMAC secret; a remote MCP
	// server's headers and environment), sealed to this plugin's tenant,
	// name and version.
	Sealed []byte `json:"sealed,omitempty"`
	// Rev is the store revision that stored the plugin, set by the store;
	// a later registration of the same name and version has a higher one.
	Rev uint64 `json:"rev,omitempty"`
}

// Ref returns the plugin's reference, name@version.
func (p Plugin) Ref() string { return p.Tool.Ref() }

// PluginChange is one change to the stored plugins, as PutPlugin and
// DeletePlugin return it and WatchPlugins reports it. Exactly one of Put,
// Deleted and Resync is set.
type PluginChange struct {
	// Rev is the store revision the change made; revisions grow by one
	// with every change, in the order the changes took effect.
	Rev uint64 `json:"rev"`
	// Put is the plugin stored, with its Rev.
	Put *Plugin `json:"put,omitempty"`
	// Deleted names the plugin versions removed.
	Deleted *PluginDeletion `json:"deleted,omitempty"`
	// Resync says that changes may have been missed (a watch connected
	// again after losing its connection): the watcher should reload every
	// plugin with ListPlugins. Rev is 0.
	Resync bool `json:"resync,omitempty"`
}

// PluginDeletion is what a DeletePlugin removed: versions of one tool.
type PluginDeletion struct {
	Tenant   string `json:"tenant"`
	Name     string `json:"name"`
	Versions []int  `json:"versions"`
}

// PluginStore persists plugin tools and tells every instance that shares
// the store about each change, so that all their registries hold the same
// plugins. store/bolt and store/redis implement it; store/storetest holds
// its conformance suite.
//
// Every method is safe for concurrent use, from any number of processes
// sharing the store. Errors carry vigil codes: Invalid for a tenant that is
// not a vigil.ValidID (Global included) or a malformed name or reference,
// Conflict and NotFound as each method says; a store that cannot be reached
// answers Unavailable.
type PluginStore interface {
	// PutPlugin stores p under a new revision and returns the change, with
	// the plugin as stored (p.Rev is ignored and set). Versions are
	// immutable: it is a Conflict error if the tenant has that name and
	// version already, and then nothing changes.
	PutPlugin(ctx context.Context, p Plugin) (PluginChange, error)
	// DeletePlugin removes tenant's plugin ref, "name@version" for one
	// version or a bare name for every version, under a new revision, and
	// returns the change. It is a NotFound error when nothing matches.
	DeletePlugin(ctx context.Context, tenant, ref string) (PluginChange, error)
	// ListPlugins returns every stored plugin of every tenant, sorted by
	// tenant, name and version, and the revision they are current as of:
	// the list holds exactly the changes up to it.
	ListPlugins(ctx context.Context) ([]Plugin, uint64, error)
	// WatchPlugins reports every change made through any store sharing
	// the data, this one included, in revision order, once it returns:
	// changes made after WatchPlugins returns are all reported, unless a
	// Resync says some may have been missed. The channel is closed when
	// ctx is done or the store is closed. A watcher that falls behind is
	// not waited for by writers.
	WatchPlugins(ctx context.Context) (<-chan PluginChange, error)
}

// PluginSpec is a plugin tool as a tenant registers it, over REST
// (POST /v1/tools, whose body it is) or MCP (register_tool): an HTTP tool
// (Sync.Register), or a remote MCP server to mount (kind mcp, Sync.Mount).
// Durations are Go duration strings ("10s"), as in a Tool's JSON.
//
// A remote MCP server takes Namespace (or Name, the same), URL, and
// optionally Headers, Description, Scopes and Timeout; Version may only be
// 1. Command and Env are refused: a command runs a program on Vigil's host,
// which only an operator may do (Registry.Mount).
type PluginSpec struct {
	// Kind is what serves the tool; empty means PluginHTTP.
	Kind PluginKind `json:"kind,omitempty"`
	// Name, Version and the fields after Secret are the Tool's; Version 0
	// means 1.
	Name        string `json:"name,omitempty"`
	Version     int    `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
	// URL is where Vigil POSTs each call (kind http), or the remote MCP
	// server's streamable HTTP endpoint (kind mcp).
	URL string `json:"url,omitempty"`
	// Secret is the HMAC key that signs each call, at least MinSecretLen
	// bytes. It is sealed before it is stored and never shown again.
	Secret       string          `json:"secret,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Scopes       []string        `json:"scopes,omitempty"`
	Timeout      string          `json:"timeout,omitempty"`
	RateLimit    int             `json:"rate_limit,omitempty"`
	CacheTTL     string          `json:"cache_ttl,omitempty"`
	Fallback     Fallback        `json:"fallback,omitempty"`
	// Namespace, Command, Headers and Env describe a remote MCP server
	// (kind mcp, see RemoteSpec); Headers are sealed like Secret, and
	// Command and Env are refused.
	Namespace string            `json:"namespace,omitempty"`
	Command   []string          `json:"command,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

// MinSecretLen is the shortest HMAC secret a plugin may have.
const MinSecretLen = 16

// plugin turns s into tenant's Plugin (without Sealed and Rev) and the
// secrets to seal into it, checking the fields that are the spec's own;
// the Tool's fields are checked when it is registered.
func (s PluginSpec) plugin(tenant string) (Plugin, pluginSecrets, error) {
	if !vigil.ValidID(tenant) {
		return Plugin{}, pluginSecrets{}, vigil.FieldError("tenant", "must be a tenant id: plugin tools belong to a tenant")
	}
	t := Tool{
		Tenant: tenant, Name: s.Name, Version: s.Version, Description: s.Description,
		InputSchema: s.InputSchema, OutputSchema: s.OutputSchema, Scopes: s.Scopes,
		RateLimit: s.RateLimit, Fallback: s.Fallback,
	}
	if t.Version == 0 {
		t.Version = 1
	}
	var err error
	if t.Timeout, err = parseDuration("timeout", s.Timeout); err != nil {
		return Plugin{}, pluginSecrets{}, err
	}
	if t.CacheTTL, err = parseDuration("cache_ttl", s.CacheTTL); err != nil {
		return Plugin{}, pluginSecrets{}, err
	}
	p := Plugin{Tool: t, Kind: s.Kind, URL: s.URL}
	switch p.Kind {
	case "", PluginHTTP:
		p.Kind = PluginHTTP
	case PluginMCP:
		return s.remote(p)
	default:
		return Plugin{}, pluginSecrets{}, vigil.FieldError("kind", "must be http or mcp, not %q", s.Kind)
	}
	if s.Namespace != "" || len(s.Command) > 0 || len(s.Headers) > 0 || len(s.Env) > 0 {
		return Plugin{}, pluginSecrets{}, vigil.FieldError("namespace", "namespace, command, headers and env are for kind mcp only")
	}
	if len(s.Secret) < MinSecretLen {
		return Plugin{}, pluginSecrets{}, vigil.FieldError("secret", "must be at least %d characters: calls are signed with it", MinSecretLen)
	}
	return p, pluginSecrets{Secret: []byte(s.Secret)}, nil
}

// remote completes p, made from s's common fields, as the remote MCP
// server s describes: the stored Tool is named after the namespace, at
// version 1, and the headers are the secrets to seal.
func (s PluginSpec) remote(p Plugin) (Plugin, pluginSecrets, error) {
	fail := func(field, format string, args ...any) (Plugin, pluginSecrets, error) {
		return Plugin{}, pluginSecrets{}, vigil.FieldError(field, format, args...)
	}
	switch {
	case len(s.Command) > 0:
		return fail("command", "is not allowed: a command would run a program on Vigil's host; give the url of a remote MCP server")
	case len(s.Env) > 0:
		return fail("env", "applies to a command only, which is not allowed")
	case s.Secret != "":
		return fail("secret", "does not apply to kind mcp: send the remote's credentials in headers")
	case len(s.InputSchema) > 0:
		return fail("input_schema", "does not apply to kind mcp: the remote MCP server gives each tool's schemas")
	case len(s.OutputSchema) > 0:
		return fail("output_schema", "does not apply to kind mcp: the remote MCP server gives each tool's schemas")
	case s.RateLimit != 0:
		return fail("rate_limit", "does not apply to kind mcp")
	case s.CacheTTL != "":
		return fail("cache_ttl", "does not apply to kind mcp")
	case s.Fallback != "":
		return fail("fallback", "does not apply to kind mcp")
	case s.Version != 0 && s.Version != 1:
		return fail("version", "must be 1 or absent for kind mcp: the remote's tools change with the server, not by version")
	case s.Name != "" && s.Namespace != "" && s.Name != s.Namespace:
		return fail("namespace", "must equal name when both are given")
	}
	p.Kind = PluginMCP
	p.Namespace = cmp.Or(s.Namespace, s.Name)
	p.Tool.Name = p.Namespace
	spec := RemoteSpec{
		Tenant: p.Tool.Tenant, Namespace: p.Namespace, URL: s.URL, Headers: s.Headers,
		Scopes: p.Tool.Scopes, Timeout: p.Tool.Timeout,
	}
	if err := spec.check(); err != nil {
		return Plugin{}, pluginSecrets{}, err
	}
	return p, pluginSecrets{Headers: maps.Clone(s.Headers)}, nil
}

// remoteSpec is the spec of the mount of the remote MCP server p, with the
// headers sec holds and guard.
func (p Plugin) remoteSpec(sec pluginSecrets, guard *Guard) RemoteSpec {
	return RemoteSpec{
		Tenant: p.Tool.Tenant, Namespace: p.Namespace, URL: p.URL, Headers: maps.Clone(sec.Headers),
		Scopes: slices.Clone(p.Tool.Scopes), Timeout: p.Tool.Timeout, Guard: guard,
	}
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, vigil.FieldError(field, "must be a duration such as 30s or 5m, not %q", s)
	}
	return d, nil
}

// pluginSecrets are the parts of a plugin that are sealed at rest.
type pluginSecrets struct {
	Secret  []byte            `json:"secret,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

// sealer seals and opens plugin secrets under one AES-256-GCM key.
//
// Sealed layout: version (1 byte) | key id (4 bytes) | nonce (12 bytes) |
// ciphertext and tag. The additional data binds the sealed bytes to the
// plugin's tenant, name and version, so that they cannot be moved onto
// another plugin.
type sealer struct {
	id   [sealKeyIDLen]byte
	aead cipher.AEAD
}

const (
	sealVersion  = 1
	sealKeyIDLen = 4
	sealNonceLen = 12
	sealHeader   = 1 + sealKeyIDLen + sealNonceLen
	// PluginKeySize is the size of the key Sync seals secrets under.
	PluginKeySize = 32
)

// newSealer derives the plugin secrets key from key (32 bytes, such as
// the memory key) with HKDF-SHA256, so that plugin secrets and what else
// the key protects never share an AES key.
func newSealer(key []byte) (*sealer, error) {
	if len(key) != PluginKeySize {
		return nil, fmt.Errorf("toolsregistry: plugin key must be %d bytes, got %d", PluginKeySize, len(key))
	}
	derived, err := hkdf.Key(sha256.New, key, nil, "vigil plugin secrets v1", PluginKeySize)
	if err != nil {
		return nil, fmt.Errorf("toolsregistry: derive the plugin key: %w", err)
	}
	block, err := aes.NewCipher(derived)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &sealer{aead: aead}
	sum := sha256.Sum256(append([]byte("vigil plugin key id\x00"), derived...))
	copy(s.id[:], sum[:])
	return s, nil
}

func sealData(t Tool) []byte {
	return []byte("vigil/plugin/v1\x00" + t.Tenant + "\x00" + t.Name + "\x00" + strconv.Itoa(t.Version))
}

// seal encrypts sec for the plugin tool t with a fresh random nonce.
func (s *sealer) seal(t Tool, sec pluginSecrets) ([]byte, error) {
	plain, err := json.Marshal(sec)
	if err != nil {
		return nil, err
	}
	out := make([]byte, sealHeader, sealHeader+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], s.id[:])
	if _, err := rand.Read(out[1+sealKeyIDLen : sealHeader]); err != nil {
		return nil, fmt.Errorf("toolsregistry: seal plugin secrets: %w", err)
	}
	return s.aead.Seal(out, out[1+sealKeyIDLen:sealHeader], plain, sealData(t)), nil
}

// errUnseal is wrapped by every failure to open a plugin's secrets.
var errUnseal = errors.New("cannot open the plugin's secrets")

// open decrypts the secrets sealed for the plugin tool t.
func (s *sealer) open(t Tool, sealed []byte) (pluginSecrets, error) {
	if len(sealed) < sealHeader || sealed[0] != sealVersion {
		return pluginSecrets{}, fmt.Errorf("%w: not sealed secrets (%d bytes)", errUnseal, len(sealed))
	}
	if id := sealed[1 : 1+sealKeyIDLen]; string(id) != string(s.id[:]) {
		return pluginSecrets{}, fmt.Errorf("%w: sealed under key %s, but the configured key is %s",
			errUnseal, hex.EncodeToString(id), hex.EncodeToString(s.id[:]))
	}
	plain, err := s.aead.Open(nil, sealed[1+sealKeyIDLen:sealHeader], sealed[sealHeader:], sealData(t))
	if err != nil {
		return pluginSecrets{}, fmt.Errorf("%w: authentication failed: the data was altered or belongs to another plugin", errUnseal)
	}
	var sec pluginSecrets
	if err := json.Unmarshal(plain, &sec); err != nil {
		return pluginSecrets{}, fmt.Errorf("%w: %v", errUnseal, err)
	}
	return sec, nil
}
