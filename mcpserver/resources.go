package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// The resource URIs. Each names a thing of the reader's tenant; another
// tenant's is not found.
const (
	threadEventsTemplate = "vigil://threads/{id}/events"
	taskTemplate         = "vigil://tasks/{id}"
	runTemplate          = "vigil://runs/{id}"

	threadPrefix = "vigil://threads/"
	taskPrefix   = "vigil://tasks/"
	runPrefix    = "vigil://runs/"
)

// TaskURI returns the resource URI of task id.
func TaskURI(id string) string { return taskPrefix + id }

// RunURI returns the resource URI of run id.
func RunURI(id string) string { return runPrefix + id }

// ThreadEventsURI returns the resource URI of thread id's events.
func ThreadEventsURI(id string) string { return threadPrefix + id + "/events" }

const jsonMIME = "application/json"

// addResources registers the resource templates.
func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(threadEventsTemplate, "thread-events",
		mcp.WithTemplateTitle("A thread's events"),
		mcp.WithTemplateDescription("The first events of a thread (up to 500), as get_events returns them; read on with get_events."),
		mcp.WithTemplateMIMEType(jsonMIME)), s.readThreadEvents)
	if s.opts.Tasks == nil {
		return
	}
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(taskTemplate, "task",
		mcp.WithTemplateTitle("A task"),
		mcp.WithTemplateDescription("A task with its spec, status, version and next fire time. Subscribe to hear when its status changes or a run of it changes state."),
		mcp.WithTemplateMIMEType(jsonMIME)), s.readTask)
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(runTemplate, "run",
		mcp.WithTemplateTitle("A run"),
		mcp.WithTemplateDescription("One run of a task with its status, checkpoints and result. Subscribe to hear when it changes state."),
		mcp.WithTemplateMIMEType(jsonMIME)), s.readRun)
}

// resourceID returns the id in uri, which starts with prefix and ends
// with suffix, and the principal of ctx, after checking perm.
func (s *Server) resourceID(ctx context.Context, uri, prefix, suffix, perm string) (string, error) {
	p, ok := vigil.PrincipalFrom(ctx)
	if !ok || p.Tenant == "" {
		return "", resourceError(vigil.Errorf(vigil.Unauthorized, "no principal in the request"))
	}
	if err := s.opts.Allow(p, perm); err != nil {
		return "", resourceError(err)
	}
	id, ok := strings.CutPrefix(uri, prefix)
	if ok {
		id, ok = strings.CutSuffix(id, suffix)
	}
	// Reserved threads (the audit log, sessions' streams) are no thread to
	// MCP (streams.Reserved).
	if !ok || !vigil.ValidID(id) || prefix == threadPrefix && streams.Reserved(id) {
		return "", resourceError(vigil.Errorf(vigil.NotFound, "no resource %s", uri))
	}
	return id, nil
}

// resourceError turns err into the error a resource read answers: the
// vigil code in words and the message, wrapping server.ErrResourceNotFound
// when nothing was found.
func resourceError(err error) error {
	code := vigil.ErrorCode(err)
	msg := codeText[code] + ": " + vigil.ErrorMessage(err)
	if code == vigil.NotFound {
		return fmt.Errorf("%s: %w", msg, server.ErrResourceNotFound)
	}
	return fmt.Errorf("%s", msg)
}

func jsonContents(uri string, v any) ([]mcp.ResourceContents, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("mcpserver: encode %s: %w", uri, err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: jsonMIME, Text: string(b)}}, nil
}

func (s *Server) readThreadEvents(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	id, err := s.resourceID(ctx, uri, threadPrefix, "/events", PermThreadsRead)
	if err != nil {
		return nil, err
	}
	p, _ := vigil.PrincipalFrom(ctx)
	page, err := s.opts.Log.Read(ctx, p.Tenant, id, streams.ID{}, maxEventLimit)
	if err != nil {
		return nil, s.readError(ctx, uri, err)
	}
	out := GetEventsOutput{ThreadID: id, Events: page.Events, Next: streams.ID{}.String(), Missed: !page.Trimmed.IsZero()}
	if out.Events == nil {
		out.Events = []streams.Event{}
	}
	if n := len(page.Events); n > 0 {
		out.Next = page.Events[n-1].ID.String()
		out.More = page.Events[n-1].ID.Less(page.Last)
	}
	return jsonContents(uri, out)
}

func (s *Server) readTask(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	id, err := s.resourceID(ctx, uri, taskPrefix, "", PermTasksRead)
	if err != nil {
		return nil, err
	}
	t, err := s.opts.Tasks.Get(ctx, id)
	if err != nil {
		return nil, s.readError(ctx, uri, err)
	}
	return jsonContents(uri, t.Redacted())
}

func (s *Server) readRun(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	id, err := s.resourceID(ctx, uri, runPrefix, "", PermTasksRead)
	if err != nil {
		return nil, err
	}
	r, err := s.opts.Tasks.GetRun(ctx, id)
	if err != nil {
		return nil, s.readError(ctx, uri, err)
	}
	return jsonContents(uri, r.Redacted())
}

func (s *Server) readError(ctx context.Context, uri string, err error) error {
	if c := vigil.ErrorCode(err); c == vigil.Internal || c == vigil.Unavailable {
		s.opts.Logger.ErrorContext(ctx, "mcpserver: read resource", "uri", uri, "err", err)
	}
	return resourceError(err)
}

// resourceCursor marks the cursors of resources/list, which page through
// the tenant's tasks. mcp-go decodes a cursor as base64 before Vigil sees
// it, so Vigil's cursors are base64 too.
const resourceCursor = "vigil-tasks:"

// resourcesPage is how many tasks one resources/list page shows.
const resourcesPage = 100

// listTaskResources is the after-hook of resources/list: it adds the
// caller's tasks to the (otherwise empty) list, a page at a time.
func (s *Server) listTaskResources(ctx context.Context, _ any, req *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
	p, ok := vigil.PrincipalFrom(ctx)
	if !ok || s.opts.Allow(p, PermTasksRead) != nil {
		return
	}
	after := ""
	if c := string(req.Params.Cursor); c != "" {
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil || !strings.HasPrefix(string(b), resourceCursor) {
			return
		}
		after = strings.TrimPrefix(string(b), resourceCursor)
	}
	page, err := s.opts.Tasks.List(ctx, tasks.TaskFilter{Limit: resourcesPage, After: after})
	if err != nil {
		s.opts.Logger.ErrorContext(ctx, "mcpserver: list task resources", "err", err)
		return
	}
	for _, t := range page.Tasks {
		res.Resources = append(res.Resources, mcp.Resource{
			URI: TaskURI(t.ID), Name: t.ID, Title: t.Title, MIMEType: jsonMIME,
			Description: fmt.Sprintf("%s task, %s", t.Kind, t.Status),
		})
	}
	res.NextCursor = ""
	if page.Next != "" {
		res.NextCursor = mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(resourceCursor + page.Next)))
	}
}
