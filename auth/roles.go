package auth

import (
	"slices"
	"strings"

	"github.com/vigilhq/vigil"
)

// The roles a principal may hold within its tenant. A principal acts only
// inside its own tenant whatever its roles: admin of one tenant is nobody
// in another.
const (
	// Admin may do everything in the tenant: manage keys, read the audit
	// log, and all a developer may.
	Admin = "admin"
	// Developer registers tools and manages every task of the tenant, not
	// only its own.
	Developer = "developer"
	// Member reads and writes threads and its own tasks, and keeps its own
	// memory.
	Member = "member"
	// Viewer reads threads and tasks and changes nothing.
	Viewer = "viewer"
)

// Roles returns every role, most powerful first.
func Roles() []string { return []string{Admin, Developer, Member, Viewer} }

// ValidRole reports whether r is one of the roles.
func ValidRole(r string) bool { return slices.Contains(Roles(), r) }

// Permission names one kind of operation, as "resource:action".
type Permission string

// The permissions. Each route, MCP tool and resource requires one of them.
const (
	// ThreadsRead reads a thread, its events (SSE and replay) and its
	// session memory, and obtains a stream token for it.
	ThreadsRead Permission = "threads:read"
	// ThreadsWrite creates threads and posts events to them.
	ThreadsWrite Permission = "threads:write"
	// TasksRead lists and reads tasks and their runs.
	TasksRead Permission = "tasks:read"
	// TasksWrite creates, changes and runs tasks: one's own, unless the
	// principal also holds TasksManageAll.
	TasksWrite Permission = "tasks:write"
	// TasksManageAll extends TasksWrite to every task of the tenant.
	TasksManageAll Permission = "tasks:manage_all"
	// TasksReadAll extends TasksRead to every task of the tenant, and its
	// runs; it changes nothing TasksWrite allows.
	TasksReadAll Permission = "tasks:read_all"
	// ToolsRegister registers and unregisters plugin tools.
	ToolsRegister Permission = "tools:register"
	// KeysManage creates, lists and revokes the tenant's API keys.
	KeysManage Permission = "keys:manage"
	// AuditRead reads the tenant's audit log.
	AuditRead Permission = "audit:read"
	// MemoryOwn reads, replaces and forgets the principal's own long-term
	// profile.
	MemoryOwn Permission = "memory:own"
	// MetricsRead reads the process's operational metrics (GET /metrics):
	// counts of the whole process, across tenants, without tenant labels.
	MetricsRead Permission = "metrics:read"
)

// Permissions returns every permission, in the order of the table.
func Permissions() []Permission {
	return []Permission{
		ThreadsRead, ThreadsWrite, TasksRead, TasksWrite, TasksManageAll, TasksReadAll,
		ToolsRegister, KeysManage, AuditRead, MemoryOwn, MetricsRead,
	}
}

// grants is THE permission table: what each role may do. It is the only
// place that says so; everything else asks Allowed.
var grants = map[string][]Permission{
	Admin: Permissions(),
	Developer: {
		ThreadsRead, ThreadsWrite, TasksRead, TasksWrite, TasksManageAll, TasksReadAll,
		ToolsRegister, MemoryOwn,
	},
	Member: {ThreadsRead, ThreadsWrite, TasksRead, TasksWrite, MemoryOwn},
	Viewer: {ThreadsRead, TasksRead, TasksReadAll},
}

// Grants returns the permissions role r holds, nil for an unknown role.
// The caller may change the result.
func Grants(r string) []Permission { return slices.Clone(grants[r]) }

// Allowed returns nil if p may perform operations that need perm, and
// otherwise a *vigil.Error: Unauthorized when p has no tenant (no
// principal at all), Forbidden naming perm when none of p's roles grants
// it. REST, SSE and MCP all decide through it.
func Allowed(p vigil.Principal, perm Permission) error {
	if p.Tenant == "" {
		return vigil.Errorf(vigil.Unauthorized, "no credentials")
	}
	for _, r := range p.Roles {
		if slices.Contains(grants[r], perm) {
			return nil
		}
	}
	held := "no role"
	if len(p.Roles) > 0 {
		held = "role " + strings.Join(p.Roles, ", ")
	}
	return vigil.Errorf(vigil.Forbidden, "missing permission %s (%s)", perm, held)
}

// NormalizeRoles returns the known roles among roles, each once, most
// powerful first, and the unknown ones separately, in their given order.
func NormalizeRoles(roles []string) (known, unknown []string) {
	for _, r := range Roles() {
		if slices.Contains(roles, r) {
			known = append(known, r)
		}
	}
	for _, r := range roles {
		if !ValidRole(r) && !slices.Contains(unknown, r) {
			unknown = append(unknown, r)
		}
	}
	return known, unknown
}
