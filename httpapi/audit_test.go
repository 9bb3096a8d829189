package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
)

// auditPage is the answer of GET /v1/audit.
type auditPage struct {
	Entries []audit.Entry `json:"entries"`
	Next    string        `json:"next"`
	More    bool          `json:"more"`
	Missed  bool          `json:"missed"`
}

// call sends one request with an Authorization header and an
// X-Request-ID (the trace id the server adopts), and decodes a JSON answer
// into out when it is not nil. It returns the status and the Location.
func call(t *testing.T, method, url, body, authz, trace string, out any) (int, string) {
	t.Helper()
	hdr := map[string]string{"Authorization": authz, "X-Request-ID": trace}
	resp := do(t, method, url, body, hdr, out)
	return resp.StatusCode, resp.Header.Get("Location")
}

// readAudit reads the caller's audit log after since.
func readAudit(t *testing.T, base, authz, query string) auditPage {
	t.Helper()
	var page auditPage
	if status, _ := call(t, "GET", base+"/v1/audit"+query, "", authz, "", &page); status != 200 {
		t.Fatalf("GET /v1/audit%s: %d", query, status)
	}
	return page
}

// TestAuditLog drives a task through its life, makes a key and has a viewer
// refused, all over HTTP, and reads the audit log back as admins of both
// tenants and as a viewer.
func TestAuditLog(t *testing.T) {
	e := serveAuth(t)
	admin := e.key(t, tenantA, "alice", auth.Admin)
	viewer := e.key(t, tenantA, "vic", auth.Viewer)
	adminB := e.key(t, tenantB, "bob", auth.Admin)
	start := time.Now()

	var task struct{ ID string }
	if status, _ := call(t, "POST", e.URL+"/v1/tasks", taskSpec, admin, "tr-create", &task); status != 201 {
		t.Fatalf("create: %d", status)
	}
	for _, step := range []struct{ method, suffix, trace string }{
		{"POST", "/confirm", "tr-confirm"},
		{"POST", "/pause", "tr-pause"},
		{"DELETE", "", "tr-delete"},
	} {
		if status, _ := call(t, step.method, e.URL+"/v1/tasks/"+task.ID+step.suffix, "", admin, step.trace, nil); status/100 != 2 {
			t.Fatalf("%s %s: %d", step.method, step.suffix, status)
		}
	}
	// A request that fails changes nothing and is not recorded.
	if status, _ := call(t, "POST", e.URL+"/v1/tasks/"+task.ID+"/pause", "", admin, "tr-gone", nil); status != 404 {
		t.Fatalf("pausing a deleted task: %d", status)
	}
	status, loc := call(t, "POST", e.URL+"/v1/keys", `{"roles":["member"],"user":"mary"}`, admin, "tr-key", nil)
	if status != 201 {
		t.Fatalf("create key: %d", status)
	}
	keyID := strings.TrimPrefix(loc, "/v1/keys/")
	if status, _ := call(t, "DELETE", e.URL+"/v1/keys/"+keyID, "", admin, "tr-revoke", nil); status != 204 {
		t.Fatalf("revoke key: %d", status)
	}
	if status, _ := call(t, "POST", e.URL+"/v1/tasks", taskSpec, viewer, "tr-denied", nil); status != 403 {
		t.Fatalf("a viewer creating a task: %d, want 403", status)
	}

	page := readAudit(t, e.URL, admin, "")
	want := []audit.Entry{
		{TraceID: "tr-create", Actor: "alice", Roles: []string{"admin"}, Action: "task.create", Target: task.ID, Outcome: audit.Succeeded, Status: 201, Route: "POST /v1/tasks"},
		{TraceID: "tr-confirm", Actor: "alice", Roles: []string{"admin"}, Action: "task.confirm", Target: task.ID, Outcome: audit.Succeeded, Status: 200, Route: "POST /v1/tasks/{id}/confirm"},
		{TraceID: "tr-pause", Actor: "alice", Roles: []string{"admin"}, Action: "task.pause", Target: task.ID, Outcome: audit.Succeeded, Status: 200, Route: "POST /v1/tasks/{id}/pause"},
		{TraceID: "tr-delete", Actor: "alice", Roles: []string{"admin"}, Action: "task.delete", Target: task.ID, Outcome: audit.Succeeded, Status: 204, Route: "DELETE /v1/tasks/{id}"},
		{TraceID: "tr-key", Actor: "alice", Roles: []string{"admin"}, Action: "key.create", Target: keyID, Outcome: audit.Succeeded, Status: 201, Route: "POST /v1/keys"},
		{TraceID: "tr-revoke", Actor: "alice", Roles: []string{"admin"}, Action: "key.revoke", Target: keyID, Outcome: audit.Succeeded, Status: 204, Route: "DELETE /v1/keys/{id}"},
		{TraceID: "tr-denied", Actor: "vic", Roles: []string{"viewer"}, Action: audit.ActionDenied, Outcome: audit.Denied, Status: 403, Permission: "tasks:write", Route: "POST /v1/tasks"},
	}
	checkEntries(t, page.Entries, want, start)
	if page.More || page.Next != page.Entries[len(page.Entries)-1].ID.String() {
		t.Errorf("next %q, more %v; want the last entry's id and no more", page.Next, page.More)
	}

	// Not for a viewer, whose refusal is recorded in turn.
	res := hit(t, "GET", e.URL+"/v1/audit", "", viewer)
	if res.status != 403 || res.apiError(t).Error.Code != "forbidden" || !strings.Contains(res.apiError(t).Error.Message, "audit:read") {
		t.Fatalf("a viewer reading the audit log: %d %s", res.status, res.body)
	}
	later := readAudit(t, e.URL, admin, "?since="+page.Next)
	checkEntries(t, later.Entries, []audit.Entry{
		{Actor: "vic", Roles: []string{"viewer"}, Action: audit.ActionDenied, Outcome: audit.Denied, Status: 403, Permission: "audit:read", Route: "GET /v1/audit"},
	}, start)

	// Tenant B's admin sees none of it.
	if b := readAudit(t, e.URL, adminB, ""); len(b.Entries) != 0 {
		t.Errorf("tenant B's audit log: %+v", b.Entries)
	}

	// Paging and since as a time.
	first := readAudit(t, e.URL, admin, "?limit=2")
	if len(first.Entries) != 2 || !first.More || first.Entries[1].Action != "task.confirm" {
		t.Fatalf("limit=2: %+v", first)
	}
	if rest := readAudit(t, e.URL, admin, "?limit=2&since="+first.Next); len(rest.Entries) != 2 || rest.Entries[0].Action != "task.pause" {
		t.Errorf("second page: %+v", rest)
	}
	if all := readAudit(t, e.URL, admin, "?since="+start.Add(-time.Second).UTC().Format(time.RFC3339)); len(all.Entries) != len(want)+1 {
		t.Errorf("since a time before everything: %d entries, want %d", len(all.Entries), len(want)+1)
	}
	if none := readAudit(t, e.URL, admin, "?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); len(none.Entries) != 0 {
		t.Errorf("since a time to come: %+v", none.Entries)
	}
	for query, field := range map[string]string{
		"?since=yesterday": "since",
		"?limit=0":         "limit",
		"?limit=x":         "limit",
		"?after=0":         "after",
	} {
		res := hit(t, "GET", e.URL+"/v1/audit"+query, "", admin)
		if res.status != 400 || res.apiError(t).Error.Field != field {
			t.Errorf("GET /v1/audit%s: %d %s, want 400 on %s", query, res.status, res.body, field)
		}
	}
}

// checkEntries compares got with want, ignoring ids, and checks that ids
// increase and times are recent.
func checkEntries(t *testing.T, got, want []audit.Entry, since time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d:\n%s", len(got), len(want), jsonOf(got))
	}
	var last streams.ID
	for i, g := range got {
		if !last.Less(g.ID) {
			t.Errorf("entry %d has id %s, not after %s", i, g.ID, last)
		}
		last = g.ID
		if g.Time.Before(since.Add(-time.Second)) || g.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("entry %d at %s, want a time of this test", i, g.Time)
		}
		w := want[i]
		w.ID, w.Time = g.ID, g.Time
		if w.TraceID == "" {
			w.TraceID = g.TraceID
			if len(g.TraceID) != 32 {
				t.Errorf("entry %d has trace id %q, want a generated one", i, g.TraceID)
			}
		}
		if jsonOf(g) != jsonOf(w) {
			t.Errorf("entry %d:\n got %s\nwant %s", i, jsonOf(g), jsonOf(w))
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAuditThreadHidden checks that no thread route reaches the reserved
// threads, the audit log and an MCP session's stream (which holds what
// one user's client was sent), for reading or writing, whatever the role,
// and that the attempts leave the audit log as it was.
func TestAuditThreadHidden(t *testing.T) {
	e := serveAuth(t)
	admin := e.key(t, tenantA, "alice", auth.Admin)
	member := e.key(t, tenantA, "mary", auth.Member)
	const mcpThread = mcpserver.ThreadPrefix + "s1"
	ctx := as(adminA)
	if err := e.backend.CreateThread(ctx, streams.Thread{ID: mcpThread, Tenant: tenantA, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.backend.Append(ctx, tenantA, mcpThread, []streams.Event{{Type: mcpserver.EventTypeMCP, Data: json.RawMessage(`{"secret":"of alice's session"}`), TS: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if status, _ := call(t, "POST", e.URL+"/v1/threads", "", admin, "", nil); status != 201 {
		t.Fatalf("create thread: %d", status) // the tenant's audit thread exists now
	}
	before := readAudit(t, e.URL, admin, "")

	bodies := map[string]string{
		"POST /v1/threads/{id}/events":   `{"type":"text","data":{"message_id":"m","text":"forged"}}`,
		"POST /v1/threads/{id}/messages": `{"text":"hello"}`,
	}
	walked := 0
	for _, r := range e.api.Routes() {
		method, pattern, _ := strings.Cut(r.Pattern, " ")
		if !strings.HasPrefix(pattern, "/v1/threads/{id}") && !strings.HasPrefix(pattern, "/v1/memory/session/{id}") {
			continue
		}
		walked++
		for _, th := range []string{audit.Thread, mcpThread} {
			path := strings.Replace(pattern, "{id}", th, 1)
			for name, authz := range map[string]string{"admin": admin, "member": member} {
				res := hit(t, method, e.URL+path, bodies[r.Pattern], authz)
				if res.status != 404 || res.apiError(t).Error.Code != "not_found" {
					t.Errorf("%s %s as %s: %d %s, want 404", method, path, name, res.status, res.body)
				}
			}
		}
	}
	if walked < 7 {
		t.Fatalf("walked %d thread routes; the route list changed shape", walked)
	}

	// Nothing reached the log: it holds what it held, no forged event.
	after := readAudit(t, e.URL, admin, "")
	if len(after.Entries) != len(before.Entries) {
		t.Errorf("the audit log changed: %d entries, then %d:\n%s", len(before.Entries), len(after.Entries), jsonOf(after.Entries))
	}
	page, err := e.backend.Read(as(adminA), tenantA, audit.Thread, streams.ID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.Type != audit.EventType {
			t.Errorf("the audit thread holds a %s event: %s", ev.Type, ev.Data)
		}
	}
	// And no client can post an audit event to a thread of its own.
	res := hit(t, "POST", e.URL+"/v1/threads/"+e.thread+"/events", `{"type":"audit","data":{"actor":"alice","action":"key.revoke","outcome":"succeeded"}}`, member)
	if res.status != 400 || res.apiError(t).Error.Field != "type" {
		t.Errorf("posting an audit event: %d %s, want 400 on type", res.status, res.body)
	}
}
