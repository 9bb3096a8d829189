package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	invopop "github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
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
// is Out's; its calls need permission perm.
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
			return s.errorResult(ctx, name, err)
		}
		var in In
		if err := req.BindArguments(&in); err != nil {
			return s.errorResult(ctx, name, vigil.Errorf(vigil.Invalid, "arguments: %v", err))
		}
		res, err := fn(ctx, call[In]{req: req, p: p, in: in})
		if err != nil {
			return s.errorResult(ctx, name, err)
		}
		return res, nil
	}
	return server.ServerTool{Tool: tool, Handler: handler}
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
