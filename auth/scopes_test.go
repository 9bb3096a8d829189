package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/toolsregistry"
)

func principal(roles ...string) vigil.Principal {
	return vigil.Principal{Tenant: "acme", User: "u", Roles: roles}
}

// TestDefaultScopes pins the default table down role by role.
func TestDefaultScopes(t *testing.T) {
	want := map[string][]string{
		auth.Admin:     {"*"},
		auth.Developer: {"*"},
		auth.Member:    {"read:*"},
		auth.Viewer:    {},
	}
	table := auth.DefaultScopes()
	for _, r := range auth.Roles() {
		if got := table.Of(principal(r)); !slices.Equal(got, want[r]) || got == nil {
			t.Errorf("%s holds %#v, want %#v", r, got, want[r])
		}
	}
	table[auth.Member] = append(table[auth.Member], "write:email")
	if got := auth.DefaultScopes().Of(principal(auth.Member)); !slices.Equal(got, []string{"read:*"}) {
		t.Errorf("changing a returned table changed the default: member holds %q", got)
	}
}

func TestScopeTableOf(t *testing.T) {
	table, err := auth.NewScopeTable(map[string][]string{
		auth.Member: {"write:notes", "read:*"},
		auth.Viewer: {"read:web", "write:notes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    vigil.Principal
		want []string
	}{
		{"union, each once, sorted", principal(auth.Viewer, auth.Member), []string{"read:*", "read:web", "write:notes"}},
		{"all covers the rest", principal(auth.Member, auth.Admin), []string{"*"}},
		{"no role holds nothing", principal(), []string{}},
		{"unknown roles hold nothing", principal("root", "Admin"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := table.Of(tt.p); !slices.Equal(got, tt.want) || got == nil {
				t.Errorf("Of = %#v, want %#v", got, tt.want)
			}
		})
	}
	none, err := auth.NewScopeTable(map[string][]string{auth.Developer: {}})
	if err != nil {
		t.Fatal(err)
	}
	if got := none.Of(principal(auth.Developer)); len(got) != 0 {
		t.Errorf("an empty override left developers with %q", got)
	}
	if got := none.Of(principal(auth.Admin)); !slices.Equal(got, []string{"*"}) {
		t.Errorf("overriding developers changed admins: %q", got)
	}
}

func TestNewScopeTableRejects(t *testing.T) {
	tests := []struct {
		override map[string][]string
		field    string
	}{
		{map[string][]string{"root": {"*"}}, "root"},
		{map[string][]string{auth.Member: {"read:*", "Read Web"}}, "member.1"},
		{map[string][]string{auth.Member: {"**"}}, "member.0"},
		{map[string][]string{auth.Member: {"read:*:web"}}, "member.0"},
		{map[string][]string{auth.Member: {""}}, "member.0"},
	}
	for _, tt := range tests {
		_, err := auth.NewScopeTable(tt.override)
		var ve *vigil.Error
		if !errors.As(err, &ve) || ve.Code != vigil.Invalid || ve.Field != tt.field {
			t.Errorf("NewScopeTable(%v) = %v, want Invalid naming %s", tt.override, err, tt.field)
		}
	}
	for _, s := range []string{"*", "read", "read:*", "read:web", "read:gh.issues", "write:email:*"} {
		if !auth.ValidScope(s) {
			t.Errorf("ValidScope(%q) = false", s)
		}
	}
}

// TestScopesAgainstRegistry checks the table with the registry's own rule:
// what each role's tasks may call among a tool that needs nothing, one
// that reads the web and one that sends mail.
func TestScopesAgainstRegistry(t *testing.T) {
	reg := toolsregistry.New(toolsregistry.Options{})
	noop := func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: json.RawMessage(`true`)}, nil
	}
	for name, scopes := range map[string][]string{"clock": nil, "fetch": {"read:web"}, "mail": {"write:email"}} {
		if err := reg.Register(toolsregistry.Tool{Name: name, Version: 1, Description: name, Scopes: scopes}, toolsregistry.HandlerFunc(noop)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{ // the tools each role may call
		auth.Admin:     "clock fetch mail",
		auth.Developer: "clock fetch mail",
		auth.Member:    "clock fetch",
		auth.Viewer:    "clock",
	}
	table := auth.DefaultScopes()
	for _, r := range auth.Roles() {
		var may []string
		for _, tool := range []string{"clock", "fetch", "mail"} {
			_, err := reg.Call(context.Background(), toolsregistry.Request{Tenant: "acme", Scopes: table.Of(principal(r)), Tool: tool})
			switch {
			case err == nil:
				may = append(may, tool)
			case vigil.ErrorCode(err) != vigil.Forbidden:
				t.Fatalf("%s calling %s: %v", r, tool, err)
			case !strings.Contains(err.Error(), `"`+map[string]string{"fetch": "read:web", "mail": "write:email"}[tool]+`"`):
				t.Errorf("%s calling %s: %q does not name the missing scope", r, tool, err)
			}
		}
		if got := strings.Join(may, " "); got != want[r] {
			t.Errorf("%s may call %q, want %q", r, got, want[r])
		}
	}
}
