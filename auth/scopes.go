package auth

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/vigilhq/vigil"
)

// A scope names what a tool call may touch, as "action:resource"
// ("read:web", "write:email"). Tools declare the scopes they need
// (toolsregistry.Tool.Scopes); a task's run calls a tool only if the
// task's owner holds every one of them. A held scope covers a needed one
// when they are equal; "action:*" covers every scope of that action
// ("read:*" covers "read:web"); AllScopes covers every scope.
//
// Permissions decide what a principal may ask of the server while it is
// there; scopes decide what its tasks may do later, when it is not. Runs
// happen while the owner is offline, so the owner's scopes are recorded on
// the task (tasks.Task.OwnerScopes) whenever the owner creates, updates or
// confirms it, and every tool call of its runs holds those.

// AllScopes is the scope that covers every other.
const AllScopes = "*"

// ScopeTable says which scopes each role holds for its tasks' tool calls,
// as Grants says which permissions it holds for its requests. A role the
// table does not name holds no scope.
type ScopeTable map[string][]string

// defaultScopes is THE default scope table. A member holds every read
// scope, which covers the built-in tools (http_get needs read:web; the
// others need none) and any plugin tool that only reads; a tool that
// writes or sends on the owner's behalf needs a developer's task, or a
// table that grants its scope. A viewer owns no tasks.
var defaultScopes = ScopeTable{
	Admin:     {AllScopes},
	Developer: {AllScopes},
	Member:    {"read:*"},
	Viewer:    {},
}

// DefaultScopes returns the default scope table:
//
//	admin      *
//	developer  *
//	member     read:*
//	viewer     (none)
//
// The caller may change the result.
func DefaultScopes() ScopeTable {
	t := make(ScopeTable, len(defaultScopes))
	for r, s := range defaultScopes {
		t[r] = slices.Clone(s)
	}
	return t
}

// NewScopeTable returns the default table with the roles override names
// replaced whole: {"member": ["read:*", "write:notes"]} changes members
// only, and an empty list takes every scope from the role. An unknown role
// or an invalid scope is a vigil.Invalid error naming it ("member.1").
func NewScopeTable(override map[string][]string) (ScopeTable, error) {
	t := DefaultScopes()
	for _, r := range slices.Sorted(maps.Keys(override)) {
		if !ValidRole(r) {
			return nil, vigil.FieldError(r, "is not a role; roles are %s", strings.Join(Roles(), ", "))
		}
		for i, s := range override[r] {
			if !ValidScope(s) {
				return nil, vigil.FieldError(fmt.Sprintf("%s.%d", r, i), "must be a scope such as read:web, read:* or *, not %q", s)
			}
		}
		t[r] = slices.Clone(override[r])
	}
	return t, nil
}

// Of returns the scopes p holds: those of all its roles, each once,
// sorted, or just AllScopes when a role holds it. A principal whose roles
// hold none gets an empty list, never nil, so that "holds nothing" is
// told apart from "never recorded" (see tasks.Task.Scopes).
func (t ScopeTable) Of(p vigil.Principal) []string {
	held := []string{}
	for _, r := range p.Roles {
		for _, s := range t[r] {
			if s == AllScopes {
				return []string{AllScopes}
			}
			if !slices.Contains(held, s) {
				held = append(held, s)
			}
		}
	}
	slices.Sort(held)
	return held
}

// scopePattern is what a tool may declare (toolsregistry checks the same
// syntax) and what a role may hold besides AllScopes: lower-case words
// joined by ':', of which the last may be '*'.
var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(:[a-z0-9_.-]+)*(:\*)?$`)

// ValidScope reports whether a role may hold s: AllScopes, a scope such
// as "read:web", or a family such as "read:*".
func ValidScope(s string) bool { return s == AllScopes || scopePattern.MatchString(s) }
