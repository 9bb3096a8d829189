package mcpserver

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// addTools registers every tool the options allow.
func (s *Server) addTools() {
	tools := []server.ServerTool{
		newTool[GetEventsInput, GetEventsOutput](s, "get_events", "Read a thread's events",
			"Read a thread's events after a cursor, oldest first: a task's history (its thread_id), a conversation, a run's output. "+
				"Pass the returned next as after to read on; more says whether there are more now.",
			PermThreadsRead, readOnly, s.getEvents),
	}
	if s.opts.Registry != nil {
		tools = append(tools, s.registryTools()...)
	}
	if s.opts.Tasks != nil {
		tools = append(tools, s.taskTools()...)
	}
	s.mcp.AddTools(tools...)
}

// Limits of get_events.
const (
	defaultEventLimit = 100
	maxEventLimit     = 500
)

// GetEventsInput are the arguments of get_events.
type GetEventsInput struct {
	ThreadID string `json:"thread_id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The thread, such as a task's thread_id."`
	After    string `json:"after,omitempty" jsonschema:"pattern=^([0-9]+(-[0-9]+)?)?$" jsonschema_description:"Read events after this event id (ms-seq); empty or 0 reads from the start."`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"At most this many events; default 100."`
}

// GetEventsOutput is the result of get_events.
type GetEventsOutput struct {
	ThreadID string          `json:"thread_id" jsonschema_description:"The thread read."`
	Events   []streams.Event `json:"events" jsonschema_description:"The events after the cursor, oldest first."`
	Next     string          `json:"next" jsonschema_description:"The cursor to read on from: the last event's id, or the cursor given when there was none."`
	More     bool            `json:"more" jsonschema_description:"Whether the thread holds more events after next."`
	Missed   bool            `json:"missed,omitempty" jsonschema_description:"Whether retention removed events between the cursor and the first event returned."`
}

func (s *Server) getEvents(ctx context.Context, c call[GetEventsInput]) (*mcp.CallToolResult, error) {
	in := c.in
	if !vigil.ValidID(in.ThreadID) {
		return nil, vigil.Errorf(vigil.NotFound, "thread %q not found", in.ThreadID)
	}
	after, err := streams.ParseID(in.After)
	if err != nil {
		return nil, vigil.FieldError("after", "%v", err)
	}
	limit := in.Limit
	if limit == 0 {
		limit = defaultEventLimit
	}
	limit = min(limit, maxEventLimit)
	page, err := s.opts.Log.Read(ctx, c.p.Tenant, in.ThreadID, after, limit)
	if err != nil {
		return nil, err
	}
	out := GetEventsOutput{ThreadID: in.ThreadID, Events: page.Events, Next: after.String()}
	if out.Events == nil {
		out.Events = []streams.Event{}
	}
	if n := len(page.Events); n > 0 {
		out.Next = page.Events[n-1].ID.String()
		out.More = page.Events[n-1].ID.Less(page.Last)
	}
	out.Missed = after.Less(page.Trimmed)
	text := fmt.Sprintf("%d events of thread %s after %s; next %s", len(out.Events), in.ThreadID, after, out.Next)
	if out.More {
		text += "; more to read"
	}
	if out.Missed {
		text += "; some events after the cursor were removed by retention"
	}
	return structured(out, text), nil
}
