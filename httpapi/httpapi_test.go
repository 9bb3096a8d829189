package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"
	backoff "gopkg.in/cenkalti/backoff.v1"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
)

// storeConfigs returns a store config per backend: a bolt file in a
// temporary directory, and Redis under a key prefix of the test's own. Open
// the Redis config twice to get two instances sharing one Redis.
func storeConfigs(t *testing.T, maxLen int) map[string]config.Store {
	t.Helper()
	return map[string]config.Store{
		config.DriverBolt: {Driver: config.DriverBolt, DataDir: t.TempDir(), MaxEventsPerThread: maxLen},
		config.DriverRedis: {Driver: config.DriverRedis, MaxEventsPerThread: maxLen, Redis: config.Redis{
			URL: redistest.URL(t), Prefix: redistest.Prefix(t), MaxFollowers: 64,
		}},
	}
}

// eachBackend runs fn once per backend, as subtests named after it.
func eachBackend(t *testing.T, maxLen int, fn func(t *testing.T, c config.Store)) {
	for _, name := range []string{config.DriverBolt, config.DriverRedis} {
		t.Run(name, func(t *testing.T) { fn(t, storeConfigs(t, maxLen)[name]) })
	}
}

// instance is one API server over one open backend.
type instance struct {
	*httptest.Server
	log  streams.Log
	logs *bytes.Buffer // the server's JSON log lines
}

func open(t *testing.T, c config.Store) store.Backend {
	t.Helper()
	b, err := store.Open(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func serve(t *testing.T, b store.Backend, opts httpapi.Options) *instance {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(vigil.LogHandler(slog.NewJSONHandler(logs, nil)))
	opts.Log, opts.Logger = b, logger
	if opts.Hub == nil {
		opts.Hub = streams.NewHub(b, streams.HubOptions{Logger: logger, Wait: time.Second})
	}
	srv := httptest.NewServer(httpapi.New(opts))
	t.Cleanup(srv.Close)
	return &instance{Server: srv, log: b, logs: &logs.Buffer}
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// plainClient opens a connection per request, so tests that cut a server's
// connections never cut one of these.
var plainClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// do sends a request and decodes a JSON answer into out (when not nil),
// returning the response.
func do(t *testing.T, method, url string, body string, hdr map[string]string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, b, err)
		}
	}
	return resp
}

func createThread(t *testing.T, base string) string {
	t.Helper()
	var th streams.Thread
	if resp := do(t, "POST", base+"/v1/threads", `{"title":"test"}`, nil, &th); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create thread: %s", resp.Status)
	}
	return th.ID
}

func postText(t *testing.T, base, thread string, text string) streams.Event {
	t.Helper()
	var e streams.Event
	body := fmt.Sprintf(`{"type":"text","data":{"message_id":"m1","text":%q}}`, text)
	if resp := do(t, "POST", base+"/v1/threads/"+thread+"/events", body, nil, &e); resp.StatusCode != http.StatusCreated {
		t.Fatalf("post event: %s", resp.Status)
	}
	return e
}

type apiError struct {
	Error struct {
		Code, Message, Field string
	}
}

func TestThreadsAndEvents(t *testing.T) {
	eachBackend(t, 0, func(t *testing.T, c config.Store) {
		srv := serve(t, open(t, c), httpapi.Options{})
		id := createThread(t, srv.URL)
		if !strings.HasPrefix(id, "th_") {
			t.Errorf("thread id %q lacks th_ prefix", id)
		}
		var th streams.Thread
		if resp := do(t, "GET", srv.URL+"/v1/threads/"+id, "", nil, &th); resp.StatusCode != 200 || th.Title != "test" || th.Tenant != vigil.DefaultTenant {
			t.Errorf("get thread: %s %+v", resp.Status, th)
		}

		var ids []streams.ID
		for i := range 5 {
			ids = append(ids, postText(t, srv.URL, id, fmt.Sprint("hello ", i)).ID)
		}
		for i := 1; i < len(ids); i++ {
			if !ids[i-1].Less(ids[i]) {
				t.Fatalf("ids not increasing: %v", ids)
			}
		}

		var rp struct {
			Thread streams.Thread
			Events []streams.Event
			Last   streams.ID
		}
		if resp := do(t, "GET", srv.URL+"/v1/threads/"+id+"/replay", "", nil, &rp); resp.StatusCode != 200 {
			t.Fatalf("replay: %s", resp.Status)
		}
		if len(rp.Events) != 5 || rp.Last != ids[4] || rp.Thread.ID != id {
			t.Fatalf("replay: %d events, last %v, thread %q", len(rp.Events), rp.Last, rp.Thread.ID)
		}
		for i, e := range rp.Events {
			var d streams.Text
			if err := json.Unmarshal(e.Data, &d); err != nil || d.Text != fmt.Sprint("hello ", i) || e.ID != ids[i] || e.ThreadID != id {
				t.Errorf("event %d: %+v (%v)", i, e, err)
			}
		}
		// ?after= replays strictly after the cursor.
		if do(t, "GET", srv.URL+"/v1/threads/"+id+"/replay?after="+ids[2].String(), "", nil, &rp); len(rp.Events) != 2 || rp.Events[0].ID != ids[3] {
			t.Errorf("replay after %v: %d events", ids[2], len(rp.Events))
		}
	})
}

func TestErrors(t *testing.T) {
	c := storeConfigs(t, 0)[config.DriverBolt]
	srv := serve(t, open(t, c), httpapi.Options{})
	th := createThread(t, srv.URL)
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code, field, message     string
	}{
		{"missing thread", "GET", "/v1/threads/th_nope", "", nil, 404, "not_found", "", "th_nope"},
		{"malformed thread id", "GET", "/v1/threads/a%20b", "", nil, 404, "not_found", "", ""},
		{"stream of missing thread", "GET", "/v1/threads/th_nope/events", "", nil, 404, "not_found", "", ""},
		{"replay of missing thread", "GET", "/v1/threads/th_nope/replay", "", nil, 404, "not_found", "", ""},
		{"append to missing thread", "POST", "/v1/threads/th_nope/events", `{"type":"text","data":{"message_id":"m","text":"x"}}`, nil, 404, "not_found", "", ""},
		{"bad cursor in query", "GET", "/v1/threads/" + th + "/events?after=abc", "", nil, 400, "invalid", "after", "abc"},
		{"bad cursor in header", "GET", "/v1/threads/" + th + "/events", "", map[string]string{"Last-Event-ID": "1-x"}, 400, "invalid", "Last-Event-ID", ""},
		{"bad cursor on replay", "GET", "/v1/threads/" + th + "/replay?after=-1", "", nil, 400, "invalid", "after", ""},
		{"unknown event type", "POST", "/v1/threads/" + th + "/events", `{"type":"nope","data":{}}`, nil, 400, "invalid", "type", "unknown event type"},
		{"bad payload", "POST", "/v1/threads/" + th + "/events", `{"type":"status","data":{"phase":"sleeping"}}`, nil, 400, "invalid", "data.phase", ""},
		{"not json", "POST", "/v1/threads/" + th + "/events", `{"type":`, nil, 400, "invalid", "", ""},
		{"unknown thread field", "POST", "/v1/threads", `{"titel":"x"}`, nil, 400, "invalid", "", "titel"},
		{"no such route", "GET", "/v1/nope", "", nil, 404, "not_found", "", ""},
		{"wrong method", "DELETE", "/v1/threads/" + th + "/replay", "", nil, 405, "method_not_allowed", "", "allowed: GET"},
		{"unescaped placeholders", "GET", "/v1/threads/" + th + "/replay?after=x", "", nil, 400, "invalid", "after", "<milliseconds>-<sequence>"},
		{"title too long", "POST", "/v1/threads", `{"title":"` + strings.Repeat("é", 201) + `"}`, nil, 400, "invalid", "title", "200 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e apiError
			resp := do(t, tc.method, srv.URL+tc.path, tc.body, tc.hdr, &e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("got %d %+v; want %d %s field %q message containing %q", resp.StatusCode, e.Error, tc.status, tc.code, tc.field, tc.message)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
	var th2 streams.Thread
	if resp := do(t, "POST", srv.URL+"/v1/threads", `{"title":"`+strings.Repeat("é", 200)+`"}`, nil, &th2); resp.StatusCode != 201 {
		t.Errorf("a 200-character title: %s", resp.Status)
	}
	if resp := do(t, "PUT", srv.URL+"/v1/threads", "", nil, nil); resp.Header.Get("Allow") != "POST" {
		t.Errorf("405 Allow header %q", resp.Header.Get("Allow"))
	}
	// Nothing that failed was appended.
	var rp struct{ Events []streams.Event }
	do(t, "GET", srv.URL+"/v1/threads/"+th+"/replay", "", nil, &rp)
	if len(rp.Events) != 0 {
		t.Errorf("failed requests appended %d events", len(rp.Events))
	}
}

func TestTraceID(t *testing.T) {
	c := storeConfigs(t, 0)[config.DriverBolt]
	srv := serve(t, open(t, c), httpapi.Options{})
	th := createThread(t, srv.URL)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	var e streams.Event
	resp := do(t, "POST", srv.URL+"/v1/threads/"+th+"/events", `{"type":"feedback","data":{"rating":"up"}}`,
		map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01"}, &e)
	if resp.StatusCode != 201 || e.TraceID != trace || resp.Header.Get("X-Request-ID") != trace {
		t.Fatalf("status %s, event trace %q, header %q", resp.Status, e.TraceID, resp.Header.Get("X-Request-ID"))
	}
	resp = do(t, "GET", srv.URL+"/healthz", "", map[string]string{"X-Request-ID": "req-42"}, nil)
	if got := resp.Header.Get("X-Request-ID"); got != "req-42" {
		t.Errorf("X-Request-ID echoed as %q", got)
	}
	resp = do(t, "GET", srv.URL+"/healthz", "", map[string]string{"X-Request-ID": "bad id"}, nil)
	if got := resp.Header.Get("X-Request-ID"); len(got) != 32 {
		t.Errorf("malformed request id not replaced: %q", got)
	}
	var found bool
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		if strings.Contains(line, `"path":"/v1/threads/`+th+`/events"`) {
			found = strings.Contains(line, `"trace_id":"`+trace+`"`) && strings.Contains(line, `"tenant":"default"`)
		}
	}
	if !found {
		t.Errorf("no access log line with the trace id and tenant:\n%s", srv.logs)
	}
}

func TestHealthAndSchema(t *testing.T) {
	c := storeConfigs(t, 0)[config.DriverBolt]
	b, err := store.Open(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, b, httpapi.Options{})
	if resp := do(t, "GET", srv.URL+"/readyz", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("readyz: %s", resp.Status)
	}
	var doc map[string]any
	resp := do(t, "GET", srv.URL+"/v1/schema/events", "", nil, &doc)
	raw, _ := json.Marshal(doc)
	for _, typ := range streams.Types() {
		if !strings.Contains(string(raw), `"`+typ+`"`) {
			t.Errorf("schema document lacks type %q", typ)
		}
	}
	if resp.StatusCode != 200 || len(streams.Types()) != 19 {
		t.Errorf("schema: %s, %d types", resp.Status, len(streams.Types()))
	}
	b.Close()
	if resp := do(t, "GET", srv.URL+"/readyz", "", nil, nil); resp.StatusCode != 503 {
		t.Errorf("readyz with a closed store: %s", resp.Status)
	}
	if resp := do(t, "GET", srv.URL+"/healthz", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("healthz: %s", resp.Status)
	}
}

// frame is one SSE message or comment as read off the wire.
type frame struct {
	id, event, data, comment string
}

// readFrames reads an SSE body into frames until it ends.
func readFrames(body io.Reader, out chan<- frame) {
	defer close(out)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var f frame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if f != (frame{}) {
				out <- f
			}
			f = frame{}
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		}
	}
}

func stream(t *testing.T, url string, hdr map[string]string) (<-chan frame, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan frame, 1024)
	go readFrames(resp.Body, ch)
	return ch, resp
}

func next(t *testing.T, ch <-chan frame) frame {
	t.Helper()
	select {
	case f, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return frame{}
}

func TestSSEFramesAndHeartbeat(t *testing.T) {
	eachBackend(t, 0, func(t *testing.T, c config.Store) {
		srv := serve(t, open(t, c), httpapi.Options{Heartbeat: 50 * time.Millisecond})
		th := createThread(t, srv.URL)
		first := postText(t, srv.URL, th, "before")

		ch, resp := stream(t, srv.URL+"/v1/threads/"+th+"/events", nil)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		f := next(t, ch)
		if f.id != first.ID.String() || f.event != "text" || !strings.Contains(f.data, `"before"`) {
			t.Fatalf("first frame %+v", f)
		}
		var env streams.Event
		if err := json.Unmarshal([]byte(f.data), &env); err != nil || env.ID != first.ID || env.ThreadID != th {
			t.Fatalf("data is not the envelope: %v %+v", err, env)
		}
		live := postText(t, srv.URL, th, "live")
		for f = next(t, ch); f.comment == "ping"; f = next(t, ch) {
		}
		if f.id != live.ID.String() {
			t.Fatalf("live frame %+v, want id %v", f, live.ID)
		}
		if f = next(t, ch); f.comment != "ping" {
			t.Fatalf("idle stream sent %+v, want a heartbeat", f)
		}
	})
}

func TestSSERetentionGap(t *testing.T) {
	eachBackend(t, 10, func(t *testing.T, c config.Store) {
		srv := serve(t, open(t, c), httpapi.Options{})
		th := createThread(t, srv.URL)
		var evs []streams.Event
		for i := range 40 {
			evs = append(evs, postText(t, srv.URL, th, fmt.Sprint(i)))
		}
		page, err := srv.log.Read(context.Background(), vigil.DefaultTenant, th, streams.ID{}, 100)
		if err != nil || page.Trimmed.IsZero() || len(page.Events) == 0 {
			t.Fatalf("retention did not trim: %v %+v", err, page.Trimmed)
		}
		// A cursor older than retention: a warning naming where replay starts, then the rest.
		ch, _ := stream(t, srv.URL+"/v1/threads/"+th+"/events", map[string]string{"Last-Event-ID": evs[0].ID.String()})
		f := next(t, ch)
		if f.event != "warning" || f.id != page.Trimmed.String() || !strings.Contains(f.data, streams.WarningReplayGap) || !strings.Contains(f.data, page.Events[0].ID.String()) {
			t.Fatalf("want a replay_gap warning with id %v naming %v, got %+v", page.Trimmed, page.Events[0].ID, f)
		}
		if f = next(t, ch); f.id != page.Events[0].ID.String() {
			t.Fatalf("after the warning got %+v, want %v", f, page.Events[0].ID)
		}
		// A cursor at the trim point itself (resuming after the warning) is not warned again.
		ch, _ = stream(t, srv.URL+"/v1/threads/"+th+"/events?after="+page.Trimmed.String(), nil)
		if f = next(t, ch); f.event == "warning" || f.id != page.Events[0].ID.String() {
			t.Fatalf("cursor at trim point got %+v", f)
		}
	})
}

func TestReplayAsSSE(t *testing.T) {
	eachBackend(t, 0, func(t *testing.T, c config.Store) {
		srv := serve(t, open(t, c), httpapi.Options{})
		th := createThread(t, srv.URL)
		for i := range 1200 { // more than one page of history
			if i%400 == 0 || i == 1199 {
				postText(t, srv.URL, th, fmt.Sprint(i))
				continue
			}
			if _, err := srv.log.Append(context.Background(), vigil.DefaultTenant, th, []streams.Event{textEvent(i)}); err != nil {
				t.Fatal(err)
			}
		}
		ch, _ := stream(t, srv.URL+"/v1/threads/"+th+"/replay", map[string]string{"Accept": "text/event-stream"})
		n := 0
		for f := range ch { // the replay ends by itself
			if f.event != "text" {
				t.Fatalf("frame %+v", f)
			}
			n++
		}
		if n != 1200 {
			t.Fatalf("replayed %d events, want 1200", n)
		}
	})
}

func textEvent(i int) streams.Event {
	e, err := streams.NewEvent(streams.Text{MessageID: "m", Text: fmt.Sprint(i)})
	if err != nil {
		panic(err)
	}
	e.TS = time.Now().UTC()
	return e
}

// TestResumeExactlyOnce drops an r3labs/sse client's connection again and
// again while events are appended; the client reconnects with Last-Event-ID
// and must see every event exactly once, in order. In Redis mode the client
// watches instance B while events are appended through instance A.
func TestResumeExactlyOnce(t *testing.T) {
	configs := storeConfigs(t, 0)
	for _, tc := range []struct {
		name        string
		c           config.Store
		twoInstance bool
	}{
		{"bolt", configs[config.DriverBolt], false},
		{"redis", configs[config.DriverRedis], false},
		{"redis/two instances", configs[config.DriverRedis], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := serve(t, open(t, tc.c), httpapi.Options{})
			b := a
			if tc.twoInstance {
				b = serve(t, open(t, tc.c), httpapi.Options{})
			}
			th := createThread(t, a.URL)
			const total = 300

			var mu sync.Mutex
			var got []streams.ID
			var dupes int
			client := sse.NewClient(b.URL + "/v1/threads/" + th + "/events")
			client.ReconnectStrategy = backoff.NewConstantBackOff(20 * time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					_ = client.SubscribeRawWithContext(ctx, func(msg *sse.Event) {
						id, err := streams.ParseID(string(msg.ID))
						if err != nil || len(msg.Data) == 0 {
							return
						}
						mu.Lock()
						if n := len(got); n > 0 && !got[n-1].Less(id) {
							dupes++
						}
						got = append(got, id)
						mu.Unlock()
					})
				}
			}()

			var sent []streams.ID
			for i := range total {
				sent = append(sent, postText(t, a.URL, th, fmt.Sprint(i)).ID)
				if i%50 == 25 {
					b.CloseClientConnections() // drop mid-stream
				}
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n >= total || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			// One more event flushes out any late duplicate before we count.
			sent = append(sent, postText(t, a.URL, th, "last").ID)
			for time.Now().Before(deadline) {
				mu.Lock()
				caughtUp := len(got) > 0 && got[len(got)-1] == sent[len(sent)-1]
				mu.Unlock()
				if caughtUp {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if dupes != 0 || len(got) != len(sent) {
				t.Fatalf("received %d events (%d out of order or repeated), sent %d", len(got), dupes, len(sent))
			}
			for i := range sent {
				if got[i] != sent[i] {
					t.Fatalf("event %d: got %v, sent %v", i, got[i], sent[i])
				}
			}
		})
	}
}
