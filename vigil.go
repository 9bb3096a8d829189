// Package vigil holds the vocabulary every other Vigil package shares: the
// error codes mapped to HTTP and JSON-RPC at the edge, and the request-scoped
// values (principal, trace id) that travel in a context.Context from the
// transport down to the store.
//
// Domain packages (streams, tasks, agent, …) declare their own types and the
// interfaces they consume; this package stays small on purpose so that any of
// them can import it without pulling in anything else.
package vigil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// DefaultTenant is the tenant of requests that carry no credentials while
// authentication is not configured.
const DefaultTenant = "default"

// Principal is who a request acts for. Every store key and query is scoped by
// Tenant; User and Roles refine what the principal may do inside it.
type Principal struct {
	Tenant string   `json:"tenant"`
	User   string   `json:"user"`
	Roles  []string `json:"roles,omitempty"`
}

// HasRole reports whether p holds role r.
func (p Principal) HasRole(r string) bool {
	for _, have := range p.Roles {
		if have == r {
			return true
		}
	}
	return false
}

type ctxKey int

const (
	principalKey ctxKey = iota
	traceKey
)

// WithPrincipal returns a context that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the principal carried by ctx and whether there was one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// TenantFrom returns the tenant of the principal carried by ctx, or an
// unauthorized error when ctx carries none. Handlers call it instead of
// falling back to a default, so that a missing principal never widens access.
func TenantFrom(ctx context.Context) (string, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.Tenant == "" {
		return "", Errorf(Unauthorized, "no principal in request")
	}
	return p.Tenant, nil
}

// WithTraceID returns a context that carries the trace id id.
func WithTraceID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceKey, id)
}

// TraceID returns the trace id carried by ctx, or "".
func TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceKey).(string)
	return id
}

// NewTraceID returns a fresh W3C-style trace id: 32 lower-case hex digits.
func NewTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewID returns a random identifier with the given prefix, such as "th_" or
// "run_": the prefix followed by 20 lower-case hex digits.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// ValidID reports whether s may be used as a tenant, thread, task or run id:
// 1 to 128 characters from [A-Za-z0-9_.-]. Stores build keys from ids, so
// every id that reaches a store has passed this check; it runs several
// times per run, so it is a loop rather than a regexp.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// LogHandler wraps h so that every record logged with a context carries that
// context's trace_id and tenant as attributes.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := TraceID(ctx); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	if p, ok := PrincipalFrom(ctx); ok {
		r.AddAttrs(slog.String("tenant", p.Tenant))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
