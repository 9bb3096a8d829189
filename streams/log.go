package streams

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Event is the envelope every event travels in, from the log to SSE, MCP and
// replay. Data holds the payload of the event's Type (see Payload); it is
// validated against that type's JSON schema before the event is appended.
type Event struct {
	ID       ID              `json:"id"`
	ThreadID string          `json:"thread_id"`
	RunID    string          `json:"run_id,omitempty"`
	TaskID   string          `json:"task_id,omitempty"`
	TraceID  string          `json:"trace_id,omitempty"`
	Type     string          `json:"type"`
	TS       time.Time       `json:"ts"`
	Data     json.RawMessage `json:"data"`
}

// Thread is a conversation or a task's history: the unit of ordering,
// retention and subscription. Events belong to exactly one thread.
type Thread struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Title     string    `json:"title,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// reservedPrefixes start the ids of the threads Vigil keeps for itself:
// each tenant's audit log ("audit.", package audit) and the resumable
// streams of MCP sessions ("mcp.", package mcpserver), which hold what one
// user's client was sent. Public thread ids start with "th_".
var reservedPrefixes = []string{"audit.", "mcp."}

// Reserved reports whether thread is one Vigil keeps for itself. The public
// thread routes, tools and resources answer "not found" for such a thread,
// whatever the caller's role: the audit log is read through its own route,
// and a session's stream only by its session.
func Reserved(thread string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(thread, p) {
			return true
		}
	}
	return false
}

// Page is what Log.Read returns.
type Page struct {
	// Events are the events strictly after the cursor, oldest first.
	Events []Event
	// Trimmed is the newest ID that retention removed from the thread, or the
	// zero ID if retention never removed anything. A reader whose cursor is
	// before Trimmed has missed events that no longer exist.
	Trimmed ID
	// Last is the newest ID ever appended to the thread (zero if none), as of
	// the read.
	Last ID
}

// Log is the durable, per-thread, append-only event log. store/bolt and
// store/redis implement it; streams.Hub and the HTTP and MCP layers consume
// it.
//
// Every method is scoped by tenant: a thread of one tenant is invisible to
// every other, and asking for it answers a vigil.NotFound error. Ids reaching
// a Log have passed vigil.ValidID.
//
// Implementations are safe for concurrent use by many goroutines and, in
// Redis mode, by many processes: appends to one thread from anywhere get
// strictly increasing IDs.
type Log interface {
	// CreateThread records th (th.Tenant and th.ID must be set). It returns a
	// vigil.Conflict error if the tenant already has a thread with that id.
	CreateThread(ctx context.Context, th Thread) error

	// Thread returns the thread's record, or a vigil.NotFound error.
	Thread(ctx context.Context, tenant, id string) (Thread, error)

	// Append assigns IDs to evs (in order, each after every earlier event of
	// the thread), persists them durably and only then returns their IDs. The
	// events' ID and ThreadID fields are ignored and set by the log; every
	// other field is stored as given. Either all events are appended or none.
	// Appending to a missing thread is a vigil.NotFound error. Retention may
	// then remove the thread's oldest events, recording the newest removed ID.
	Append(ctx context.Context, tenant, thread string, evs []Event) ([]ID, error)

	// Read returns up to limit events strictly after the cursor after, oldest
	// first, with the thread's retention and end positions. A limit of zero
	// returns no events, only Trimmed and Last. A missing thread is a
	// vigil.NotFound error.
	Read(ctx context.Context, tenant, thread string, after ID, limit int) (Page, error)

	// Tail is Read for followers: it returns up to limit events strictly after
	// the cursor, waiting up to wait for the first one to be appended (by
	// this process or, in Redis mode, any other). It returns no events and a
	// nil error when wait passes, and ctx.Err() when ctx ends first.
	Tail(ctx context.Context, tenant, thread string, after ID, limit int, wait time.Duration) ([]Event, error)

	// Ping reports whether the backend answers; /readyz calls it.
	Ping(ctx context.Context) error
}
