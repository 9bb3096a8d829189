// Package remotetest gives tests a remote MCP server to mount: mcp-go over
// streamable HTTP on a loopback httptest server, with one tool,
// add_numbers, that answers only requests carrying a token.
package remotetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Token is the Authorization header a Calc answers; send it in the mount's
// headers.
const Token = "Bearer RemoteTokenMarker-42"

// Calc is a remote MCP server with one tool, add_numbers(a, b), whose
// structured result is {"sum": a+b}. It answers 401 without Token, and 503
// while Down is set, as a server that is not up.
type Calc struct {
	// URL is its streamable HTTP endpoint.
	URL  string
	Down atomic.Bool
}

// NewCalc starts a Calc, closed when the test ends. Start it before what
// mounts it: cleanups run last first, and the mounts' open streams would
// hold its Close.
func NewCalc(t testing.TB) *Calc {
	t.Helper()
	s := server.NewMCPServer("calc", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("add_numbers", mcp.WithDescription("Adds a and b."),
		mcp.WithNumber("a", mcp.Required()), mcp.WithNumber("b", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			a, _ := req.RequireFloat("a")
			b, _ := req.RequireFloat("b")
			return mcp.NewToolResultStructured(map[string]float64{"sum": a + b}, fmt.Sprint(a+b)), nil
		})
	h := server.NewStreamableHTTPServer(s)
	c := &Calc{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case c.Down.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		case r.Header.Get("Authorization") != Token:
			http.Error(w, "who are you?", http.StatusUnauthorized)
		default:
			h.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL + "/mcp"
	return c
}
