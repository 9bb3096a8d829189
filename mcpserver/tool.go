package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	invopop "github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// reflector generates the tools' input and output schemas from their Go
// structs, inline (no $ref), with additionalProperties false, so that
// mcp-go's input validation refuses unknown arguments.
var reflector = &invopop.Reflector{DoNotReference: true, Anonymous: true, Mapper: mapType}

// mapType gives the schemas of types whose JSON form is not what their Go
// structure suggests.
func mapType(t reflect.Type) *invopop.Schema {
	switch t {
	case reflect.TypeFor[streams.ID]():
		return &invopop.Schema{Type: "string", Pattern: `^[0-9]+(-[0-9]+)?$`, Description: "An event id, <milliseconds>-<sequence>."}
	case reflect.TypeFor[tasks.Duration]():
		return &invopop.Schema{Type: "string", Description: "A Go duration such as 15m, 1h or 1h30m."}
	}
	return nil
}

// schemaOf returns the JSON schema of T, a struct.
func schemaOf[T any]() json.RawMessage {
	s := reflector.Reflect(new(T))
	s.Version = ""
	s.ID = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(fmt.Sprintf("mcpserver: schema of %T: %v", *new(T), err))
	}
	return bytes.TrimSpace(buf.Bytes())
}

// hints are a tool's annotations.
type hints struct {
	readOnly, destructive, idempotent, openWorld bool
}

func (h hints) annotation(title string) mcp.ToolAnnotation {
	return mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcp.ToBoolPtr(h.readOnly),
		DestructiveHint: mcp.ToBoolPtr(h.destructive),
		IdempotentHint:  mcp.ToBoolPtr(h.idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(h.openWorld),
	}
}

var (
	readOnly   = hints{readOnly: true, idempotent: true}
	write      = hints{}
	idempotent = hints{idempotent: true}
	removes    = hints{destructive: true, idempotent: true}
)

// call is what a tool handler gets: the request, the principal it acts
// for, and the decoded arguments.
type call[In any] struct {
	req mcp.CallToolRequest
	p   vigil.Principal
	in  In
}

// toolFunc handles one tool call. It returns the result, usually made by
// structured, or an error, which becomes an isError result naming its
// vigil code.
type toolFunc[In any] func(ctx context.Context, c call[In]) (*mcp.CallToolResult, error)

// newTool makes a tool whose input schema is In's and whose output schema
// is Out's; its calls need permission perm. Refused calls, and successful
// calls of the tools in toolActions, are recorded in the audit log; a
// thread_id argument naming a reserved audit thread is not found.
func newTool[In, Out any](s *Server, name, title, description, perm string, h hints, fn toolFunc[In]) server.ServerTool {
	tool := mcp.Tool{
		Name:            name,
		Title:           title,
		Description:     description,
		RawInputSchema:  schemaOf[In](),
		RawOutputSchema: schemaOf[Out](),
		Annotations:     h.annotation(title),
	}
	handler := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := vigil.PrincipalFrom(ctx)
		if !ok || p.Tenant == "" {
			return s.errorResult(ctx, name, vigil.Errorf(vigil.Unauthorized, "no principal in the request"))
		}
		if err := s.opts.Allow(p, perm); err != nil {
			if vigil.ErrorCode(err) == vigil.Forbidden {
				s.recordAudit(ctx, p, audit.Entry{Action: audit.ActionDenied, Outcome: audit.Denied, Permission: perm, Tool: name})
			}
			return s.errorResult(ctx, name, err)
		}
		var in In
		if err := req.BindArguments(&in); err != nil {
			return s.errorResult(ctx, name, vigil.Errorf(vigil.Invalid, "arguments: %v", err))
		}
		if th := namedThread(in); streams.Reserved(th) {
			// The audit log is read with GET /v1/audit, a session's
			// stream by its session; as threads they do not exist.
			return s.errorResult(ctx, name, vigil.Errorf(vigil.NotFound, "thread %q not found", th))
		}
		res, err := fn(ctx, call[In]{req: req, p: p, in: in})
		if err != nil {
			if vigil.ErrorCode(err) == vigil.Forbidden {
				s.recordAudit(ctx, p, audit.Entry{Action: audit.ActionDenied, Outcome: audit.Denied, Tool: name})
			}
			return s.errorResult(ctx, name, err)
		}
		if action, ok := toolActions[name]; ok && !res.IsError {
			if target, changed := auditTarget(in, res.StructuredContent); changed {
				s.recordAudit(ctx, p, audit.Entry{Action: action, Outcome: audit.Succeeded, Target: target, Tool: name})
			}
		}
		return res, nil
	}
	return server.ServerTool{Tool: tool, Handler: handler}
}

// toolActions names the audit action of every tool that changes state:
// every tool not hinted read-only (TestToolActions). newTool records each
// successful call of these tools in the audit log, and every call of any
// tool refused for a missing permission.
var toolActions = map[string]string{
	"create_task":     "task.create",
	"confirm_task":    "task.confirm",
	"update_task":     "task.update",
	"pause_task":      "task.pause",
	"resume_task":     "task.resume",
	"delete_task":     "task.delete",
	"run_task":        "task.run",
	"register_tool":   "tool.register",
	"unregister_tool": "tool.unregister",
	callPluginTool:    "tool.call",
}

// auditTarget returns the id of what a successful call with arguments in
// and structured result out changed (a task id, a tool's name@version),
// and false when the call changed nothing: create_task answering
// needs_input creates no task.
func auditTarget(in, out any) (target string, changed bool) {
	switch o := out.(type) {
	case CreateTaskOutput:
		if o.Task == nil {
			return "", false
		}
		return o.Task.ID, true
	case ToolOutput:
		if o.Mount != nil {
			return o.Mount.Namespace, true
		}
		return o.Tool.Ref, true
	}
	switch i := in.(type) {
	case TaskIDInput:
		return i.ID, true
	case UpdateTaskInput:
		return i.ID, true
	case RunTaskInput:
		return i.ID, true
	case UnregisterToolInput:
		return i.Tool, true
	case CallPluginToolInput:
		return i.Tool, true
	}
	return "", true
}

// namedThread returns the thread a tool's arguments name, or "".
func namedThread(in any) string {
	if i, ok := in.(GetEventsInput); ok {
		return i.ThreadID
	}
	return ""
}

// recordTimeout bounds how long recording one audit entry may take.
const recordTimeout = 5 * time.Second

// recordAudit appends e, done by p, to the audit log of p's tenant. The
// call is answered whatever happens here, so a failure is logged, not
// returned.
func (s *Server) recordAudit(ctx context.Context, p vigil.Principal, e audit.Entry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	e.Actor, e.Roles = p.User, p.Roles
	rec := audit.Recorder{Log: s.opts.Log, Now: s.opts.Now}
	if err := rec.Record(ctx, p.Tenant, e); err != nil {
		s.opts.Logger.ErrorContext(ctx, "mcpserver: audit entry not recorded", "action", e.Action, "tool", e.Tool, "err", err)
	}
}

// structured returns a successful result: out as structured content, and
// text, short, for people and for clients that show no structure.
func structured(out any, text string) *mcp.CallToolResult {
	return mcp.NewToolResultStructured(out, text)
}

// errorResult turns err into a tool result the model can read and act on:
// isError, with a text that starts with the error's vigil code in words.
// Internal and unavailable errors are logged with their chain and shown
// without it, with the trace id to quote.
func (s *Server) errorResult(ctx context.Context, tool string, err error) (*mcp.CallToolResult, error) {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil, err // the client went away: there is nobody to answer
	}
	code := vigil.ErrorCode(err)
	msg := vigil.ErrorMessage(err)
	switch code {
	case vigil.Internal, vigil.Unavailable:
		s.opts.Logger.ErrorContext(ctx, "mcpserver: tool failed", "tool", tool, "err", err)
		if code == vigil.Internal {
			msg = "something went wrong on the server (trace " + vigil.TraceID(ctx) + ")"
		}
	}
	return mcp.NewToolResultError(codeText[code] + ": " + msg), nil
}

// codeText says each vigil code in a few words, as the start of an error
// result: what kind of failure it is, and so what the model may do.
var codeText = map[vigil.Code]string{
	vigil.Invalid:      "invalid arguments",
	vigil.Unauthorized: "not authenticated",
	vigil.Forbidden:    "not allowed",
	vigil.NotFound:     "not found",
	vigil.Conflict:     "conflict",
	vigil.TooMany:      "rate limited, try again later",
	vigil.Unavailable:  "unavailable, try again later",
	vigil.Internal:     "internal error",
}
