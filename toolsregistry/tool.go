package toolsregistry

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// Global is the tenant of the tools every tenant sees: the built-in tools
// and any an operator registers for all. A tool of any other tenant is
// visible to that tenant only.
const Global = ""

// Fallback says what a call returns when its tool cannot answer: the
// handler failed or timed out, its result broke the output schema, or its
// circuit breaker is open.
type Fallback string

// The fallback policies. The zero value means FallbackError.
const (
	// FallbackError returns a structured *Error with code vigil.Unavailable
	// that the model can read: what failed, whether to retry and when.
	FallbackError Fallback = "error"
	// FallbackCached returns the last cached result of the same call, if
	// one is at most Options.MaxStale old, with Result.Stale and a
	// Result.Warning the caller emits as a warning event ("using data from
	// 08:00 yesterday"); with nothing cached it behaves as FallbackError.
	FallbackCached Fallback = "cached"
	// FallbackNone passes the handler's own error through (wrapped in an
	// *Error that keeps its code and message), for callers that want the
	// tool's words rather than a summary.
	FallbackNone Fallback = "none"
)

// Tool describes one version of a tool: what the model and the MCP client
// see (name, description, schemas) and how the registry guards its calls
// (scopes, timeout, rate limit, cache, fallback). A Tool is plain data, so
// that it can be persisted and sent to other instances; what runs the tool
// is its Handler, registered beside it.
type Tool struct {
	// Tenant owns the tool; Global ("") for a tool every tenant sees.
	Tenant string `json:"tenant,omitempty"`
	// Name matches [a-z][a-z0-9_.]* and is at most 64 bytes long; a dot
	// separates a namespace, as in github.search_repos.
	Name string `json:"name"`
	// Version is 1 or more. Versions of one name live side by side.
	Version int `json:"version"`
	// Description tells the model what the tool does and when to use it.
	Description string `json:"description"`
	// InputSchema is the JSON Schema (draft 2020-12 unless it says
	// otherwise) of the arguments, an object schema; empty means any object.
	// It may not refer to other documents.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	// OutputSchema is the JSON Schema of the result's structured value;
	// empty means the result is not checked.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	// Scopes are the permissions a caller must all hold, such as read:web.
	Scopes []string `json:"scopes,omitempty"`
	// Timeout bounds one call; zero means Options.DefaultTimeout. It is
	// capped by Options.MaxTimeout.
	Timeout time.Duration `json:"-"`
	// RateLimit is the most calls per minute across all tenants (a token
	// bucket that also allows a burst of RateLimit); zero means no limit.
	RateLimit int `json:"rate_limit,omitempty"`
	// CacheTTL is how long a result is served from the cache for the same
	// arguments; zero means results are not served from the cache (they
	// are still kept for FallbackCached).
	CacheTTL time.Duration `json:"-"`
	// Fallback is what a failed call returns; empty means FallbackError.
	Fallback Fallback `json:"fallback,omitempty"`
}

// Ref returns the tool's reference, name@version, as tasks pin it.
func (t Tool) Ref() string { return t.Name + "@" + strconv.Itoa(t.Version) }

// toolJSON is the wire form of a Tool: durations as Go duration strings.
type toolJSON struct {
	toolAlias
	Timeout  string `json:"timeout,omitempty"`
	CacheTTL string `json:"cache_ttl,omitempty"`
}

type toolAlias Tool

// MarshalJSON writes the durations as Go duration strings ("30s", "10m0s").
func (t Tool) MarshalJSON() ([]byte, error) {
	w := toolJSON{toolAlias: toolAlias(t)}
	if t.Timeout != 0 {
		w.Timeout = t.Timeout.String()
	}
	if t.CacheTTL != 0 {
		w.CacheTTL = t.CacheTTL.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes; a malformed duration is a
// vigil.Invalid error naming the field.
func (t *Tool) UnmarshalJSON(b []byte) error {
	var w toolJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = Tool(w.toolAlias)
	for _, d := range []struct {
		field string
		text  string
		to    *time.Duration
	}{{"timeout", w.Timeout, &t.Timeout}, {"cache_ttl", w.CacheTTL, &t.CacheTTL}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return vigil.FieldError(d.field, "must be a duration such as 30s or 5m, not %q", d.text)
		}
		*d.to = v
	}
	return nil
}

var (
	namePattern  = regexp.MustCompile(`^[a-z][a-z0-9_.]*$`)
	scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(:[a-z0-9_.-]+)*$`)
)

// maxNameLen bounds tool names; MCP clients show them and some cap them at 64.
const maxNameLen = 64

// check reports the first problem with t's plain fields as a vigil.Invalid
// error naming the field. Schemas are checked when they are compiled.
func (t Tool) check() error {
	switch {
	case t.Tenant != Global && !vigil.ValidID(t.Tenant):
		return vigil.FieldError("tenant", "must be 1 to 128 characters from [A-Za-z0-9_.-]")
	case !namePattern.MatchString(t.Name) || len(t.Name) > maxNameLen:
		return vigil.FieldError("name", "must match [a-z][a-z0-9_.]* and be at most %d bytes long, not %q", maxNameLen, t.Name)
	case t.Version < 1:
		return vigil.FieldError("version", "must be 1 or more, not %d", t.Version)
	case strings.TrimSpace(t.Description) == "":
		return vigil.FieldError("description", "is required: it tells the model what the tool does")
	case t.Timeout < 0:
		return vigil.FieldError("timeout", "must not be negative")
	case t.RateLimit < 0:
		return vigil.FieldError("rate_limit", "must not be negative")
	case t.CacheTTL < 0:
		return vigil.FieldError("cache_ttl", "must not be negative")
	}
	switch t.Fallback {
	case "", FallbackError, FallbackCached, FallbackNone:
	default:
		return vigil.FieldError("fallback", "must be one of none, cached, error, not %q", t.Fallback)
	}
	for i, s := range t.Scopes {
		if !scopePattern.MatchString(s) {
			return vigil.FieldError(fmt.Sprintf("scopes.%d", i), "must be a scope such as read:web, not %q", s)
		}
	}
	return nil
}

// ParseRef splits a tool reference, "name" or "name@version", into its
// name and version; the version of a bare name is 0, meaning the default
// version. A malformed reference is a vigil.Invalid error on field "tool".
func ParseRef(ref string) (name string, version int, err error) {
	name, v, versioned := strings.Cut(ref, "@")
	if versioned {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || v[0] == '0' || v[0] == '+' {
			return "", 0, vigil.FieldError("tool", "version in %q must be a whole number of 1 or more", ref)
		}
		version = n
	}
	if !namePattern.MatchString(name) || len(name) > maxNameLen {
		return "", 0, vigil.FieldError("tool", "%q is not a tool name: want [a-z][a-z0-9_.]*, optionally @version", ref)
	}
	return name, version, nil
}

// Output is what a handler returns: a structured JSON value, checked
// against the tool's output schema, and optional parts for the user.
type Output struct {
	// Value is the structured result the model reads. Empty means null.
	Value json.RawMessage
	// Parts are media for the user, each a payload of an image, table,
	// code, audio or file event (streams.Image, streams.Table, …), which
	// the caller appends to the thread as they are.
	Parts []streams.Payload
}

// Handler runs the calls of one tool version.
//
// Call gets arguments that passed the tool's input schema (after repair),
// and a context that carries the tool's timeout and the caller's values
// (principal, trace id). It returns the result or an error. An error that
// is a *vigil.Error with code vigil.Invalid is the caller's fault (the
// arguments were wrong in a way no schema says): it is returned as is and
// never trips the breaker. Any other error is a failure of the tool, which
// counts towards its breaker and triggers its fallback. Error texts are
// shown to the model, so they say what went wrong without secrets.
//
// Call is called concurrently and must return soon after ctx is done.
type Handler interface {
	Call(ctx context.Context, args json.RawMessage) (Output, error)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, args json.RawMessage) (Output, error)

// Call calls f(ctx, args).
func (f HandlerFunc) Call(ctx context.Context, args json.RawMessage) (Output, error) {
	return f(ctx, args)
}

// Definition is a tool with the handler that runs it, as Register takes
// them and Builtins returns them.
type Definition struct {
	Tool    Tool
	Handler Handler
}
