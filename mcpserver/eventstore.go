package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// EventTypeMCP is the type of the events EventStore appends: one MCP
// message written to a session's SSE stream. Such events live only on the
// reserved "mcp." threads; they are not part of Vigil's event protocol
// (streams.Types) and no client of the events API needs to read them.
const EventTypeMCP = "mcp_message"

// ThreadPrefix starts the id of the reserved thread that holds a session's
// stream events: ThreadPrefix + the mcp-go session id.
const ThreadPrefix = "mcp."

// replayBatch is how many events one read of a replay returns.
const replayBatch = 256

// EventStoreOptions configure an EventStore. Log is required.
type EventStoreOptions struct {
	// Log stores the events, in the reserved thread of each session.
	Log streams.Log
	// Now stamps the events; default time.Now.
	Now func() time.Time
	// Tenant returns the tenant that owns session-protocol session id, when
	// the caller knows it. mcp-go records some messages (those of a GET
	// stream) with a context that carries no principal; for those the
	// store asks Tenant. nil means only the context is asked.
	Tenant func(sessionID string) (string, bool)
}

// EventStore is mcp-go's server.EventStore on Vigil's streams.Log, so that
// a session-protocol client that lost its SSE connection resumes with
// Last-Event-ID and gets every message it missed, in both storage modes and
// across instances (Redis).
//
// Each session's messages go, in order, to one thread of the session's
// tenant, ThreadPrefix + session id, created on the first message. An event
// holds the message and the id of the SSE stream it was written to; its
// streams.ID ("ms-seq", unique in the thread) is the SSE event id. A replay
// reads the thread after that id and sends the events of the same stream.
// PurgeSession appends a marker after which no id of the session resumes.
// Retention applies as to any thread: a client that was away for longer
// than the thread keeps events gets ErrUnknownEventID and starts afresh.
//
// The tenant of a store or replay is the principal's in ctx, else
// EventStoreOptions.Tenant's; a replay for a session of another tenant
// finds nothing. EventStore is safe for concurrent use.
type EventStore struct {
	log    streams.Log
	now    func() time.Time
	tenant func(string) (string, bool)

	created sync.Map // tenant + "/" + thread → struct{}: threads known to exist
}

var _ server.EventStore = (*EventStore)(nil)

// NewEventStore returns an EventStore over opts.Log.
func NewEventStore(opts EventStoreOptions) *EventStore {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &EventStore{log: opts.Log, now: opts.Now, tenant: opts.Tenant}
}

// record is the data of an EventTypeMCP event.
type record struct {
	Stream  string          `json:"stream,omitempty"`
	Message json.RawMessage `json:"message,omitempty"`
	// Purged marks the end of the session: no event id before it resumes.
	Purged bool `json:"purged,omitempty"`
}

// tenantFor returns the tenant whose thread holds session sessionID's
// events: the principal's in ctx, else the one the session was opened by.
func (es *EventStore) tenantFor(ctx context.Context, sessionID string) (string, error) {
	if p, ok := vigil.PrincipalFrom(ctx); ok && p.Tenant != "" {
		return p.Tenant, nil
	}
	if es.tenant != nil {
		if t, ok := es.tenant(sessionID); ok {
			return t, nil
		}
	}
	return "", vigil.Errorf(vigil.Unauthorized, "no tenant for MCP session %s", sessionID)
}

func threadOf(sessionID string) (string, error) {
	th := ThreadPrefix + sessionID
	if !vigil.ValidID(th) {
		return "", vigil.Errorf(vigil.Invalid, "MCP session id %q cannot name a thread", sessionID)
	}
	return th, nil
}

// StoreEvent implements server.EventStore: it appends message to the
// session's thread and returns the event's id.
func (es *EventStore) StoreEvent(ctx context.Context, sessionID, streamID string, message json.RawMessage) (string, error) {
	tenant, err := es.tenantFor(ctx, sessionID)
	if err != nil {
		return "", err
	}
	th, err := threadOf(sessionID)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(record{Stream: streamID, Message: message})
	if err != nil {
		return "", fmt.Errorf("mcpserver: encode stream event: %w", err)
	}
	if err := es.ensureThread(ctx, tenant, th); err != nil {
		return "", err
	}
	ids, err := es.append(ctx, tenant, th, data)
	if err != nil {
		return "", err
	}
	return ids.String(), nil
}

func (es *EventStore) append(ctx context.Context, tenant, th string, data []byte) (streams.ID, error) {
	ev := streams.Event{Type: EventTypeMCP, TS: es.now().UTC(), Data: data}
	ids, err := es.log.Append(ctx, tenant, th, []streams.Event{ev})
	if err != nil {
		return streams.ID{}, fmt.Errorf("mcpserver: store stream event in %s: %w", th, err)
	}
	return ids[0], nil
}

// ensureThread creates the session's thread unless it is known to exist.
func (es *EventStore) ensureThread(ctx context.Context, tenant, th string) error {
	key := tenant + "/" + th
	if _, ok := es.created.Load(key); ok {
		return nil
	}
	err := es.log.CreateThread(ctx, streams.Thread{ID: th, Tenant: tenant, Title: "MCP session stream", CreatedAt: es.now().UTC()})
	if err != nil && vigil.ErrorCode(err) != vigil.Conflict {
		return fmt.Errorf("mcpserver: create stream thread %s: %w", th, err)
	}
	es.created.Store(key, struct{}{})
	return nil
}

// ReplayEventsAfter implements server.EventStore: it calls send for every
// event after lastEventID on lastEventID's stream, oldest first, and
// returns that stream's id. An id the session's thread does not hold (made
// up, trimmed by retention, purged, or of another tenant) is an error
// wrapping server.ErrUnknownEventID, and nothing is sent.
func (es *EventStore) ReplayEventsAfter(ctx context.Context, sessionID, lastEventID string, send func(eventID string, message json.RawMessage) error) (string, error) {
	unknown := fmt.Errorf("%w: %s", server.ErrUnknownEventID, lastEventID)
	tenant, err := es.tenantFor(ctx, sessionID)
	if err != nil {
		return "", unknown
	}
	th, err := threadOf(sessionID)
	if err != nil {
		return "", unknown
	}
	last, err := streams.ParseID(lastEventID)
	if err != nil || last.IsZero() {
		return "", unknown
	}
	// Find the event itself: the first event after its predecessor.
	page, err := es.log.Read(ctx, tenant, th, before(last), 1)
	switch {
	case vigil.ErrorCode(err) == vigil.NotFound:
		return "", unknown
	case err != nil:
		return "", fmt.Errorf("mcpserver: replay %s: %w", th, err)
	case len(page.Events) == 0 || page.Events[0].ID != last:
		return "", unknown
	}
	first, err := decodeRecord(page.Events[0])
	if err != nil || first.Purged {
		return "", unknown
	}
	stream := first.Stream

	// Collect first, so that a purge marker found on the way sends nothing.
	type pending struct {
		id  string
		msg json.RawMessage
	}
	var out []pending
	for cursor := last; ; {
		page, err := es.log.Read(ctx, tenant, th, cursor, replayBatch)
		if err != nil {
			return "", fmt.Errorf("mcpserver: replay %s: %w", th, err)
		}
		for _, e := range page.Events {
			r, err := decodeRecord(e)
			if err != nil {
				continue
			}
			if r.Purged {
				return "", unknown
			}
			if r.Stream == stream {
				out = append(out, pending{e.ID.String(), r.Message})
			}
		}
		if len(page.Events) < replayBatch {
			break
		}
		cursor = page.Events[len(page.Events)-1].ID
	}
	for _, p := range out {
		if err := send(p.id, p.msg); err != nil {
			return "", err
		}
	}
	return stream, nil
}

// PurgeSession implements server.EventStore: it marks the end of the
// session in its thread, after which none of its event ids resumes. (The
// thread itself stays until retention or the tenant's data is removed:
// streams.Log has no deletion.)
func (es *EventStore) PurgeSession(ctx context.Context, sessionID string) error {
	tenant, err := es.tenantFor(ctx, sessionID)
	if err != nil {
		return nil // never stored anything
	}
	th, err := threadOf(sessionID)
	if err != nil {
		return nil
	}
	key := tenant + "/" + th
	if _, ok := es.created.Load(key); !ok {
		if _, err := es.log.Thread(ctx, tenant, th); vigil.ErrorCode(err) == vigil.NotFound {
			return nil
		} else if err != nil {
			return fmt.Errorf("mcpserver: purge %s: %w", th, err)
		}
	}
	data, _ := json.Marshal(record{Purged: true})
	if _, err := es.append(ctx, tenant, th, data); err != nil {
		return err
	}
	es.created.Delete(key)
	return nil
}

func decodeRecord(e streams.Event) (record, error) {
	var r record
	if e.Type != EventTypeMCP {
		return r, errors.New("not an MCP stream event")
	}
	err := json.Unmarshal(e.Data, &r)
	return r, err
}

// before returns the largest ID smaller than id (id is not zero): the
// cursor whose next event is id itself.
func before(id streams.ID) streams.ID {
	if id.Seq > 0 {
		return streams.ID{Ms: id.Ms, Seq: id.Seq - 1}
	}
	return streams.ID{Ms: id.Ms - 1, Seq: ^uint64(0)}
}
