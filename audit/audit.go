// Package audit is Vigil's audit log: for each tenant, the append-only
// record of who changed what, when, under which trace id, and of every
// request refused for a missing permission.
//
// # Data flow
//
// The edges record; nothing below them does. httpapi's guard records every
// successful request of a route that changes state, and every 403; the
// mcpserver tool wrapper records every successful call of a tool that
// changes state, and every refused one. Both call Recorder.Record, which
// appends one event to the tenant's audit thread (Thread) in the same
// streams.Log that holds every other thread, creating the thread on first
// use. GET /v1/audit reads it back with Recorder.Read, for admins.
//
// The audit thread is reserved: the thread routes and tools of the public
// API answer "not found" for every id for which Reserved is true, so the log
// can be neither read nor written through them, whatever the role. Its
// events have their own type, EventType, which is not part of the event
// protocol (streams.Types), so no client can post one to another thread
// either.
//
// Retention applies as to any thread: the audit thread keeps the store's
// newest events per thread (store.max_events_per_thread); Page.Missed says
// when entries after a reader's cursor were removed.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// ThreadPrefix starts the ids of the threads reserved for the audit log.
// Public thread ids start with "th_", so no existing thread has it.
const ThreadPrefix = "audit."

// Thread is the id of each tenant's audit thread.
const Thread = ThreadPrefix + "log"

// EventType is the type of the events in the audit thread; their data is
// an Entry without its ID, Time and TraceID, which the envelope carries.
const EventType = "audit"

// Reserved reports whether thread is reserved for the audit log. The public
// thread routes and tools answer not found for such a thread.
func Reserved(thread string) bool { return strings.HasPrefix(thread, ThreadPrefix) }

// ActionDenied is the action of an entry that records a refused request.
const ActionDenied = "access.denied"

// Outcome is how an audited request ended.
type Outcome string

// The outcomes. Failed requests other than refusals (a bad body, a task
// that does not exist) change nothing and are not audited.
const (
	Succeeded Outcome = "succeeded"
	Denied    Outcome = "denied"
)

// Entry is one record of the audit log: Actor, holding Roles, did Action
// to Target through Route (REST) or Tool (MCP), with Outcome.
type Entry struct {
	// ID is the entry's position in the audit thread, the cursor to read
	// on from; Read sets it.
	ID streams.ID `json:"id,omitzero"`
	// Time is when the entry was recorded (UTC); Record sets it.
	Time time.Time `json:"time,omitzero"`
	// TraceID is the trace id of the request, to find its log lines and the
	// events it caused; Record takes it from the context.
	TraceID string `json:"trace_id,omitempty"`

	// Actor is the user of the principal that made the request.
	Actor string `json:"actor"`
	// Roles are the principal's roles at the time.
	Roles []string `json:"roles,omitempty"`
	// Action names what was done, as "resource.verb": "task.create",
	// "key.revoke", …, or ActionDenied.
	Action string `json:"action"`
	// Target is the id of what the action changed, when there is one: a
	// task, a key, a thread, a tool reference (name@version).
	Target string `json:"target,omitempty"`
	// Outcome says whether the request succeeded or was refused.
	Outcome Outcome `json:"outcome"`
	// Status is the HTTP status of a REST request.
	Status int `json:"status,omitempty"`
	// Permission is the permission a refused request lacked, when the
	// refusal was for one.
	Permission string `json:"permission,omitempty"`
	// Route is the REST route, as registered: "POST /v1/tasks/{id}/pause".
	Route string `json:"route,omitempty"`
	// Tool is the MCP tool called: "pause_task".
	Tool string `json:"tool,omitempty"`
}

// actionPattern is the shape of action names: dot-separated lower-case
// words.
var actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// ValidAction reports whether name has the shape of an action name,
// "resource.verb" in lower case.
func ValidAction(name string) bool { return actionPattern.MatchString(name) }

// Recorder appends to and reads the tenants' audit logs in Log. It holds
// no state of its own, so a Recorder may be made where it is needed, and
// is safe for concurrent use when Log is.
type Recorder struct {
	// Log holds the audit threads. Required.
	Log streams.Log
	// Now stamps the entries. Default time.Now.
	Now func() time.Time
}

func (r *Recorder) now() time.Time {
	if r.Now == nil {
		return time.Now().UTC()
	}
	return r.Now().UTC()
}

// Record appends e to the audit log of tenant, durably, and returns once
// it is stored. It sets e's Time from the recorder's clock and its TraceID
// from ctx; e's ID, Time and TraceID as given are ignored. An entry without
// a valid action or outcome is a vigil.Invalid error.
func (r *Recorder) Record(ctx context.Context, tenant string, e Entry) error {
	if !vigil.ValidID(tenant) {
		return vigil.FieldError("tenant", "must be 1 to 128 characters from [A-Za-z0-9_.-]")
	}
	if !ValidAction(e.Action) {
		return vigil.FieldError("action", "%q is not an action name such as task.create", e.Action)
	}
	if e.Outcome != Succeeded && e.Outcome != Denied {
		return vigil.FieldError("outcome", "is %q, want %q or %q", e.Outcome, Succeeded, Denied)
	}
	now := r.now()
	e.ID, e.Time, e.TraceID = streams.ID{}, time.Time{}, ""
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode %s entry: %w", e.Action, err)
	}
	ev := streams.Event{Type: EventType, TraceID: vigil.TraceID(ctx), TS: now, Data: data}
	_, err = r.Log.Append(ctx, tenant, Thread, []streams.Event{ev})
	if vigil.ErrorCode(err) == vigil.NotFound {
		// The tenant's first entry: create the thread, which another
		// request may be doing at the same moment.
		th := streams.Thread{ID: Thread, Tenant: tenant, Title: "Audit log", CreatedAt: now}
		if err := r.Log.CreateThread(ctx, th); err != nil && vigil.ErrorCode(err) != vigil.Conflict {
			return fmt.Errorf("audit: create the audit thread of %s: %w", tenant, err)
		}
		_, err = r.Log.Append(ctx, tenant, Thread, []streams.Event{ev})
	}
	if err != nil {
		return fmt.Errorf("audit: record %s in %s: %w", e.Action, tenant, err)
	}
	return nil
}

// Limits of Read.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is what Read returns.
type Page struct {
	// Entries are the entries after the cursor, oldest first.
	Entries []Entry `json:"entries"`
	// Next is the cursor to read on from: the last entry's ID, or the
	// cursor given when there was none.
	Next streams.ID `json:"next"`
	// More says whether the log holds entries after Next.
	More bool `json:"more"`
	// Missed says whether retention removed entries after the cursor that
	// the reader has not seen.
	Missed bool `json:"missed,omitempty"`
}

// Read returns up to limit entries of tenant's audit log strictly after
// the cursor after, oldest first; a limit outside 1 to MaxLimit means
// DefaultLimit or MaxLimit. A tenant that has no audit log yet has an
// empty one.
func (r *Recorder) Read(ctx context.Context, tenant string, after streams.ID, limit int) (Page, error) {
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	out := Page{Entries: []Entry{}, Next: after}
	page, err := r.Log.Read(ctx, tenant, Thread, after, limit)
	if vigil.ErrorCode(err) == vigil.NotFound {
		return out, nil
	}
	if err != nil {
		return Page{}, fmt.Errorf("audit: read the audit log of %s: %w", tenant, err)
	}
	for _, ev := range page.Events {
		out.Next = ev.ID
		if ev.Type != EventType {
			continue // nothing else is appended there; skip rather than fail a reader
		}
		var e Entry
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return Page{}, fmt.Errorf("audit: decode entry %s of %s: %w", ev.ID, tenant, err)
		}
		e.ID, e.Time, e.TraceID = ev.ID, ev.TS, ev.TraceID
		out.Entries = append(out.Entries, e)
	}
	out.More = out.Next.Less(page.Last)
	out.Missed = after.Less(page.Trimmed)
	return out, nil
}

// ParseSince parses where a reader of the audit log starts, as GET
// /v1/audit?since= takes it:
//
//   - "" reads from the start;
//   - an entry id, "<milliseconds>-<sequence>" (a Page's Next), reads the
//     entries after it;
//   - an RFC 3339 time reads the entries appended at or after it. An
//     entry's id holds the millisecond it was appended, so the time selects
//     by that.
//
// It returns the cursor to pass to Read. Anything else is a vigil.Invalid
// error on field "since".
func ParseSince(s string) (streams.ID, error) {
	if id, err := streams.ParseID(s); err == nil {
		return id, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return streams.ID{}, vigil.FieldError("since", "%q is neither an entry id (<milliseconds>-<sequence>) nor an RFC 3339 time such as 2026-11-22T08:00:00Z", s)
	}
	ms := t.UnixMilli() // a time within a millisecond includes that whole millisecond
	if ms <= 0 {
		return streams.ID{}, nil
	}
	// The cursor just before the first id of millisecond ms.
	return streams.ID{Ms: uint64(ms) - 1, Seq: ^uint64(0)}, nil
}
