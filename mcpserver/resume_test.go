package mcpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/toolsregistry"
)

// rawSession is a session-protocol client written by hand, to see the
// SSE ids and drop and resume the GET stream at will.
type rawSession struct {
	t   *testing.T
	url string
	id  string
}

func (s *rawSession) post(body string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
		req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp
}

func openSession(t *testing.T, url string) *rawSession {
	t.Helper()
	s := &rawSession{t: t, url: url}
	resp := s.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	resp.Body.Close()
	if s.id = resp.Header.Get("Mcp-Session-Id"); s.id == "" {
		t.Fatalf("initialize: %s, no session id", resp.Status)
	}
	resp = s.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	return s
}

// sse is one event of a stream.
type sse struct {
	id   string
	data string
}

// listen opens the session's GET stream, resuming after lastEventID when
// it is set, and returns its events as they come; cancel drops it.
func (s *rawSession) listen(lastEventID string) (<-chan sse, context.CancelFunc) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", s.id)
	req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		s.t.Fatalf("GET stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	out := make(chan sse, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					out <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out, cancel
}

func next(t *testing.T, c <-chan sse) sse {
	t.Helper()
	select {
	case ev, ok := <-c:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	panic("unreachable")
}

// register adds a tool to the default tenant, which announces
// tools/list_changed to its sessions.
func register(t *testing.T, reg *toolsregistry.Registry, name string) {
	t.Helper()
	err := reg.Register(toolsregistry.Tool{Tenant: "default", Name: name, Version: 1, Description: "x"},
		toolsregistry.HandlerFunc(func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
			return toolsregistry.Output{}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
}

// TestResume: a session-protocol client that loses its GET stream and
// comes back with Last-Event-ID gets the notifications it missed, exactly
// once, from the stream store, in both storage modes; in Redis mode also
// from another instance.
func TestResume(t *testing.T) {
	for mode, open := range logs(t) {
		t.Run(mode, func(t *testing.T) {
			log := open(t)
			useLog := func(o *mcpserver.Options) { o.Log = log }
			w := newWorld(t, useLog, nil)
			s := openSession(t, w.url)

			events, drop := s.listen("")
			register(t, w.reg, "one")
			first := next(t, events)
			if first.id == "" || !strings.Contains(first.data, mcp.MethodNotificationToolsListChanged) {
				t.Fatalf("first event %+v", first)
			}
			if _, err := streams.ParseID(first.id); err != nil {
				t.Fatalf("event id %q is not a stream id: %v", first.id, err)
			}
			drop()
			for range events {
			}

			// While the client is away, two more changes.
			register(t, w.reg, "two")
			register(t, w.reg, "three")
			time.Sleep(100 * time.Millisecond) // let the session's pump record them

			events, drop = s.listen(first.id)
			defer drop()
			second, third := next(t, events), next(t, events)
			if second.id == "" || third.id == "" || second.id == third.id || second.id == first.id {
				t.Fatalf("resumed ids %q %q after %q", second.id, third.id, first.id)
			}
			for _, ev := range []sse{second, third} {
				if !strings.Contains(ev.data, mcp.MethodNotificationToolsListChanged) {
					t.Fatalf("resumed event %+v", ev)
				}
			}
			// And the stream goes on live.
			register(t, w.reg, "four")
			if ev := next(t, events); !strings.Contains(ev.data, mcp.MethodNotificationToolsListChanged) || ev.id == third.id {
				t.Fatalf("live after resume: %+v", ev)
			}

			// A made-up id is refused.
			req, _ := http.NewRequest(http.MethodGet, w.url, nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Session-Id", s.id)
			req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
			req.Header.Set("Last-Event-ID", "1-0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("made-up Last-Event-ID: %s", resp.Status)
			}

			if mode != "redis" {
				return
			}
			// Another instance over the same Redis replays what it missed.
			w2 := newWorld(t, useLog, nil)
			s2 := &rawSession{t: t, url: w2.url, id: s.id}
			replayed, drop2 := s2.listen(first.id)
			defer drop2()
			var got []string
			for ev := range replayed {
				got = append(got, ev.id)
			}
			if len(got) != 3 || got[0] != second.id || got[1] != third.id {
				t.Fatalf("replayed by another instance: %v, want %s %s and the live one", got, second.id, third.id)
			}
		})
	}
}

// TestStreamsBehindMiddleware: the GET stream and POST SSE responses
// stream through httpapi's middleware, whose writer offers Flush only
// through Unwrap.
func TestStreamsBehindMiddleware(t *testing.T) {
	w := newWorld(t, nil, nil)
	s := openSession(t, w.url)
	events, drop := s.listen("")
	defer drop()
	register(t, w.reg, "flushed")
	if ev := next(t, events); !strings.Contains(ev.data, "list_changed") {
		t.Fatalf("event %+v", ev)
	}
}
