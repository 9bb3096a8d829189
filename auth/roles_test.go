package auth_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// TestPermissionTable pins the permission table down cell by cell, so that
// a change to what a role may do is a deliberate change to this test too.
func TestPermissionTable(t *testing.T) {
	const A, D, M, V = 1, 2, 4, 8 // admin, developer, member, viewer
	want := map[auth.Permission]int{
		auth.ThreadsRead:    A | D | M | V,
		auth.ThreadsWrite:   A | D | M,
		auth.TasksRead:      A | D | M | V,
		auth.TasksWrite:     A | D | M,
		auth.TasksManageAll: A | D,
		auth.TasksReadAll:   A | D | V,
		auth.ToolsRegister:  A | D,
		auth.KeysManage:     A,
		auth.AuditRead:      A,
		auth.MemoryOwn:      A | D | M,
		auth.MetricsRead:    A,
	}
	if len(want) != len(auth.Permissions()) {
		t.Fatalf("the test covers %d permissions, the table has %d", len(want), len(auth.Permissions()))
	}
	bits := map[string]int{auth.Admin: A, auth.Developer: D, auth.Member: M, auth.Viewer: V}
	for _, role := range auth.Roles() {
		for _, perm := range auth.Permissions() {
			p := vigil.Principal{Tenant: "acme", User: "u", Roles: []string{role}}
			err := auth.Allowed(p, perm)
			if allowed := want[perm]&bits[role] != 0; allowed != (err == nil) {
				t.Errorf("%s %s: Allowed = %v, want allowed %v", role, perm, err, allowed)
			}
			if got := slices.Contains(auth.Grants(role), perm); got != (err == nil) {
				t.Errorf("%s %s: Grants says %v, Allowed says %v", role, perm, got, err)
			}
		}
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		name  string
		p     vigil.Principal
		perm  auth.Permission
		code  vigil.Code
		texts []string // in the message
	}{
		{"granted", vigil.Principal{Tenant: "acme", User: "u", Roles: []string{auth.Member}}, auth.TasksWrite, "", nil},
		{"any role grants", vigil.Principal{Tenant: "acme", User: "u", Roles: []string{auth.Viewer, auth.Admin}}, auth.KeysManage, "", nil},
		{"forbidden names the permission", vigil.Principal{Tenant: "acme", User: "u", Roles: []string{auth.Viewer}}, auth.ThreadsWrite, vigil.Forbidden,
			[]string{"missing permission threads:write", "role viewer"}},
		{"no role", vigil.Principal{Tenant: "acme", User: "u"}, auth.ThreadsRead, vigil.Forbidden,
			[]string{"missing permission threads:read", "no role"}},
		{"unknown roles grant nothing", vigil.Principal{Tenant: "acme", User: "u", Roles: []string{"root", "Admin"}}, auth.ThreadsRead, vigil.Forbidden,
			[]string{"threads:read"}},
		{"no tenant is no principal", vigil.Principal{User: "u", Roles: []string{auth.Admin}}, auth.ThreadsRead, vigil.Unauthorized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.Allowed(tt.p, tt.perm)
			if got := vigil.ErrorCode(err); got != tt.code {
				t.Fatalf("Allowed = %v (code %q), want code %q", err, got, tt.code)
			}
			for _, s := range tt.texts {
				if !strings.Contains(vigil.ErrorMessage(err), s) {
					t.Errorf("message %q lacks %q", vigil.ErrorMessage(err), s)
				}
			}
		})
	}
}

func TestNormalizeRoles(t *testing.T) {
	known, unknown := auth.NormalizeRoles([]string{"viewer", "x", "admin", "viewer", "x", "Member"})
	if !slices.Equal(known, []string{"admin", "viewer"}) || !slices.Equal(unknown, []string{"x", "Member"}) {
		t.Errorf("NormalizeRoles = %q, %q", known, unknown)
	}
}
