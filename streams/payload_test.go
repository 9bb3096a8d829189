package streams_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	santhosh "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

var update = flag.Bool("update", false, "rewrite golden files")

// validPayloads has at least one valid payload of every event type.
var validPayloads = []streams.Payload{
	streams.Status{Phase: streams.PhaseCallingTool, Detail: "weather.lookup"},
	streams.Status{Phase: streams.PhaseQueued},
	streams.Reasoning{Summary: "The user wants tomorrow's weather; checking the forecast first."},
	streams.TextDelta{MessageID: "msg_1", Delta: "Tomorrow in Paris"},
	streams.Text{MessageID: "msg_1", Text: "Tomorrow in Paris: 21 °C and sunny <b>&</b>."},
	streams.ToolCall{CallID: "call_1", Tool: "weather.lookup", Version: "2", Args: json.RawMessage(`{"city":"Paris","days":1}`)},
	streams.ToolResult{CallID: "call_1", Tool: "weather.lookup", Version: "2", Result: json.RawMessage(`{"temp_c":21.5,"sky":"sunny"}`), DurationMS: 412, Cached: true},
	streams.ToolResult{CallID: "call_2", Tool: "clock.now", Result: json.RawMessage(`"2026-11-22T08:00:00Z"`)},
	streams.ToolError{CallID: "call_3", Tool: "weather.lookup", Error: "days must be at most 7", Expected: json.RawMessage(`{"type":"integer","maximum":7}`), Retryable: true},
	streams.ToolError{CallID: "call_4", Tool: "mail.send", Error: "mailbox unavailable"},
	streams.Clarification{Question: "Which city do you mean?", Missing: []string{"city"}, Schema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)},
	streams.Clarification{Question: "Anything else?"},
	streams.TaskCard{Task: json.RawMessage(`{"title":"Morning weather","schedule":{"cron":"0 7 * * *","tz":"Europe/Paris"}}`), Actions: []streams.CardAction{streams.ActionConfirm, streams.ActionEdit, streams.ActionCancel}},
	streams.TaskStatus{TaskID: "tsk_1", From: "draft", To: "active"},
	streams.TaskStatus{TaskID: "tsk_1", RunID: "run_1", From: "queued", To: "running"},
	streams.Image{URL: "https://example.com/cat.png", Alt: "A cat on a keyboard"},
	streams.Image{Data: []byte("\x89PNG\r\n\x1a\n"), MIME: "image/png"},
	streams.Code{Language: "go", Code: "package main\n\nfunc main() {}\n"},
	streams.Table{Columns: []string{"city", "temp_c", "sunny"}, Rows: [][]any{{"Paris", 21.5, true}, {"Oslo", 9.0, false}}},
	streams.Audio{Data: []byte("RIFF\x00\x00\x00\x00WAVE"), MIME: "audio/wav", DurationMS: 1200},
	streams.Audio{URL: "/v1/files/f_audio"},
	streams.File{URL: "/v1/files/f_1", MIME: "text/csv", Name: "report.csv", Size: 2048},
	streams.File{Data: []byte("a,b\n1,2\n"), MIME: "text/csv", Name: "tiny.csv"},
	streams.Warning{Code: "stale_cache", Message: "Using yesterday's cached data."},
	streams.Error{Code: "rate_limited", Message: "The weather service is busy; try again in a minute.", Retryable: true},
	streams.Feedback{Rating: streams.RatingUp, Reason: "Exactly what I needed", EventID: streams.ID{Ms: 1732600000000, Seq: 3}},
	streams.Feedback{Rating: streams.RatingDown},
	streams.Done{Summary: "Answered the forecast question.", Status: streams.OutcomeSucceeded},
	streams.Done{},
}

// invalidPayload is a payload that Validate must reject, naming field.
type invalidPayload struct {
	typ, data string
	field     string // the vigil.Error's Field
	message   string // a part of its Message
}

var invalidPayloads = []invalidPayload{
	{"status", `{}`, "data.phase", "is required"},
	{"status", `{"phase":"sleeping"}`, "data.phase", `value must be one of "queued", "thinking"`},
	{"status", `{"phase":"queued","extra":1,"another":2}`, "data.another", `is not a property of status payloads (also unknown: "extra")`},
	{"status", `{"phase":3}`, "data.phase", "must be string, got number"},
	{"status", `{"Phase":"queued"}`, "data.phase", "is required"},
	{"status", `[]`, "data", "must be object, got array"},
	{"status", `null`, "data", "must be object, got null"},
	{"status", `{"phase":"queued"`, "data", "is not valid JSON"},
	{"status", `{"phase":"queued"} {}`, "data", "is not valid JSON"},
	{"status", ``, "data", "is required"},
	{"status", "{\"phase\":\"queued\",\"detail\":\"\xff\"}", "data", "is not valid UTF-8"},
	{"reasoning", `{"summary":""}`, "data.summary", "must not be empty"},
	{"text_delta", `{"message_id":"m"}`, "data.delta", "is required"},
	{"text", `{"message_id":"m","text":5}`, "data.text", "must be string, got number"},
	{"tool_call", `{"call_id":"c","tool":"t","args":[1]}`, "data.args", "must be object, got array"},
	{"tool_call", `{"call_id":"c","tool":"t","args":null}`, "data.args", "must be object, got null"},
	{"tool_call", `{"tool":"t","args":{}}`, "data.call_id", "is required"},
	{"tool_result", `{"call_id":"c","tool":"t","result":1,"duration_ms":-1,"cached":false}`, "data.duration_ms", "must be at least 0"},
	{"tool_result", `{"call_id":"c","tool":"t","result":1,"duration_ms":1.5,"cached":false}`, "data.duration_ms", "must be integer, got number"},
	{"tool_result", `{"call_id":"c","tool":"t","result":1,"duration_ms":2.0,"cached":false}`, "data.duration_ms", "must be a whole number without fraction or exponent, within 64-bit range"},
	{"tool_result", `{"call_id":"c","tool":"t","result":1,"duration_ms":1e30,"cached":false}`, "data.duration_ms", "must be a whole number without fraction or exponent, within 64-bit range"},
	{"tool_result", `{"call_id":"c","tool":"t","duration_ms":1,"cached":false}`, "data.result", "is required"},
	{"tool_error", `{"call_id":"c","tool":"t","error":"boom"}`, "data.retryable", "is required"},
	{"clarification", `{"question":"q","missing":["city","city"]}`, "data.missing", "must not repeat items"},
	{"clarification", `{"question":"q","schema":"city"}`, "data.schema", "must be object, got string"},
	{"task_card", `{"task":{},"actions":[]}`, "data.actions", "must not be empty"},
	{"task_card", `{"task":{},"actions":["confirm","delete"]}`, "data.actions.1", `value must be one of "confirm", "edit", "cancel"`},
	{"task_card", `{"actions":["confirm"]}`, "data.task", "is required"},
	{"task_status", `{"task_id":"bad id","to":"running"}`, "data.task_id", `must use only letters, digits, '_', '.' and '-', not "bad id"`},
	{"task_status", `{"task_id":"tsk_1"}`, "data.to", "is required"},
	{"task_status", `{"task_id":"tsk_1","to":"Running"}`, "data.to", "must be a lower-case state name"},
	{"image", `{"alt":"nothing to show"}`, "data", `must have exactly one of "url" and "data"`},
	{"image", `{"url":"https://example.com/a.png","data":"aGk=","mime":"image/png"}`, "data", `must have exactly one of "url" and "data"`},
	{"image", `{"url":"javascript:alert(1)"}`, "data.url", "must be an absolute http(s) URL or a path"},
	{"image", `{"url":"https://example.com/a b.png"}`, "data.url", "must be an absolute http(s) URL or a path"},
	{"image", `{"data":"aGk="}`, "data.mime", `is required when "data" is set`},
	{"image", `{"data":"not base64!","mime":"image/png"}`, "data.data", "must be base64-encoded"},
	{"image", `{"data":"aGk=","mime":"text/html"}`, "data.mime", `must be an image media type such as image/png, not "text/html"`},
	{"image", `{"data":"","mime":"image/png"}`, "data.data", "must not be empty"},
	{"code", `{"language":"go"}`, "data.code", "is required"},
	{"table", `{"columns":["a","b"],"rows":[["x","y"],["z"]]}`, "data.rows.1", "has 1 cell, want 2 (one per column)"},
	{"table", `{"columns":[],"rows":[]}`, "data.columns", "must not be empty"},
	{"table", `{"columns":["a"],"rows":["x"]}`, "data.rows.0", "must be array, got string"},
	{"audio", `{"url":"https://example.com/a.mp3","duration_ms":"long"}`, "data.duration_ms", "must be integer, got string"},
	{"audio", `{"data":"aGk=","mime":"video/mp4"}`, "data.mime", "must be an audio media type"},
	{"file", `{"url":"/v1/files/f_1"}`, "data.name", "is required"},
	{"file", `{"url":"/v1/files/f_1","name":"a.txt","size":-5}`, "data.size", "must be at least 0"},
	{"file", `{"url":"/v1/files/f_1","name":"a.txt","mime":"text/plain; charset=utf-8"}`, "data.mime", "must be a media type without parameters"},
	{"warning", `{"code":"Stale Cache","message":"m"}`, "data.code", "must be a lower-case code"},
	{"warning", `{"code":"stale_cache","message":""}`, "data.message", "must not be empty"},
	{"error", `{"code":"internal","message":"m"}`, "data.retryable", "is required"},
	{"error", `{"code":"internal","message":"m","retryable":"yes"}`, "data.retryable", "must be boolean, got string"},
	{"feedback", `{"rating":5}`, "data.rating", "must be string, got number"},
	{"feedback", `{"rating":"meh"}`, "data.rating", `value must be one of "up", "down"`},
	{"feedback", `{"rating":"up","event_id":"0-0"}`, "data.event_id", "must be an event id"},
	{"feedback", `{"rating":"up","event_id":"01-1"}`, "data.event_id", "must be an event id"},
	{"feedback", `{"rating":"up","event_id":"99999999999999999999-0"}`, "data", "cannot be decoded"},
	{"done", `{"status":"exploded"}`, "data.status", `value must be one of "succeeded"`},
	{"done", `{"summary":"s","result":1}`, "data.result", "is not a property of done payloads"},
}

// fieldOf returns err's *vigil.Error, failing the test if err is not an
// Invalid one.
func fieldOf(t *testing.T, err error) *vigil.Error {
	t.Helper()
	var ve *vigil.Error
	if !errors.As(err, &ve) || ve.Code != vigil.Invalid {
		t.Fatalf("error = %v (%T), want a vigil.Invalid *vigil.Error", err, err)
	}
	return ve
}

func TestTypes(t *testing.T) {
	want := []string{
		streams.TypeAudio, streams.TypeClarification, streams.TypeCode, streams.TypeDone,
		streams.TypeError, streams.TypeFeedback, streams.TypeFile, streams.TypeImage,
		streams.TypeReasoning, streams.TypeStatus, streams.TypeTable, streams.TypeTaskCard,
		streams.TypeTaskStatus, streams.TypeText, streams.TypeTextDelta, streams.TypeToolCall,
		streams.TypeToolError, streams.TypeToolResult, streams.TypeWarning,
	}
	got := streams.Types()
	if !slices.Equal(got, want) {
		t.Fatalf("Types() = %q\nwant %q", got, want)
	}
	got[0] = "mutated"
	if streams.Types()[0] != streams.TypeAudio {
		t.Fatal("Types() returned the registry's own slice")
	}
}

// TestEveryTypeHasSamples keeps the sample tables complete as types are
// added.
func TestEveryTypeHasSamples(t *testing.T) {
	valid, invalid := map[string]bool{}, map[string]bool{}
	for _, p := range validPayloads {
		valid[p.EventType()] = true
	}
	for _, s := range invalidPayloads {
		invalid[s.typ] = true
	}
	for _, typ := range streams.Types() {
		if !valid[typ] {
			t.Errorf("no valid sample of %q", typ)
		}
		if !invalid[typ] {
			t.Errorf("no invalid sample of %q", typ)
		}
	}
}

func TestValidPayloadsRoundTrip(t *testing.T) {
	for _, p := range validPayloads {
		t.Run(p.EventType(), func(t *testing.T) {
			e, err := streams.NewEvent(p)
			if err != nil {
				t.Fatalf("NewEvent(%#v): %v", p, err)
			}
			if e.Type != p.EventType() || !e.ID.IsZero() || e.ThreadID != "" {
				t.Fatalf("NewEvent = %+v, want type %q and no id or thread", e, p.EventType())
			}
			if err := streams.Validate(e.Type, e.Data); err != nil {
				t.Fatalf("Validate(%s): %v", e.Data, err)
			}
			got, err := streams.DecodePayload(e)
			if err != nil {
				t.Fatalf("DecodePayload(%s): %v", e.Data, err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("DecodePayload = %#v\nwant %#v", got, p)
			}
			// The event survives storage as JSON and the client-side decoder.
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var stored streams.Event
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			if got, err := streams.DecodePayload(stored); err != nil || !reflect.DeepEqual(got, p) {
				t.Fatalf("after storage: %#v, %v; want %#v", got, err, p)
			}
			posted, err := streams.DecodeEvent(clientJSON(t, e))
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", clientJSON(t, e), err)
			}
			if !reflect.DeepEqual(posted, e) {
				t.Fatalf("DecodeEvent = %+v\nwant %+v", posted, e)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	want := streams.Text{MessageID: "msg_1", Text: "hello"}
	e, err := streams.NewEvent(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := streams.Decode[streams.Text](e)
	if err != nil || got != want {
		t.Fatalf("Decode[Text] = %+v, %v; want %+v", got, err, want)
	}
	// A newer writer's extra field does not break an older reader.
	e.Data = json.RawMessage(`{"message_id":"msg_1","text":"hello","lang":"en"}`)
	if got, err := streams.Decode[streams.Text](e); err != nil || got != want {
		t.Fatalf("Decode[Text] with an unknown field = %+v, %v; want %+v", got, err, want)
	}

	if _, err := streams.Decode[streams.Status](e); fieldOf(t, err).Field != "type" {
		t.Fatalf("Decode[Status] of a text event: %v, want an error about type", err)
	}
	if _, err := streams.Decode[*streams.Text](e); err == nil {
		t.Fatal("Decode[*Text] succeeded, want an error: T must be a struct type")
	}
	e.Data = json.RawMessage(`{"text":1}`)
	if _, err := streams.Decode[streams.Text](e); fieldOf(t, err).Field != "data" {
		t.Fatalf("Decode of bad data: %v, want an error about data", err)
	}
	if _, err := streams.DecodePayload(streams.Event{Type: "nope", Data: json.RawMessage(`{}`)}); fieldOf(t, err).Field != "type" {
		t.Fatalf("DecodePayload of an unknown type: %v", err)
	}
}

func TestNewEventRejectsInvalidPayloads(t *testing.T) {
	tests := []struct {
		p     streams.Payload
		field string
	}{
		{nil, "data"},
		{(*streams.Status)(nil), "data"},
		{streams.Status{}, "data.phase"},
		{streams.Status{Phase: "sleeping"}, "data.phase"},
		{streams.ToolCall{CallID: "c", Tool: "t"}, "data.args"}, // nil args marshal as null
		{streams.Image{}, "data"},
		{streams.Image{Data: []byte("x")}, "data.mime"},
		{streams.Table{Columns: []string{"a"}, Rows: [][]any{{1, 2}}}, "data.rows.0"},
		{streams.Feedback{Rating: "meh"}, "data.rating"},
	}
	for _, tt := range tests {
		_, err := streams.NewEvent(tt.p)
		if got := fieldOf(t, err).Field; got != tt.field {
			t.Errorf("NewEvent(%#v): field %q (%v), want %q", tt.p, got, err, tt.field)
		}
	}
	// A pointer to a payload works like the payload.
	if e, err := streams.NewEvent(&streams.Status{Phase: streams.PhaseDone}); err != nil || e.Type != streams.TypeStatus {
		t.Fatalf("NewEvent(&Status) = %+v, %v", e, err)
	}
	// A table without rows has an empty rows array, not null.
	e, err := streams.NewEvent(streams.Table{Columns: []string{"a"}})
	if err != nil || string(e.Data) != `{"columns":["a"],"rows":[]}` {
		t.Fatalf("NewEvent(empty table) = %s, %v", e.Data, err)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tt := range invalidPayloads {
		t.Run(tt.typ, func(t *testing.T) {
			err := streams.Validate(tt.typ, json.RawMessage(tt.data))
			if err == nil {
				t.Fatalf("Validate(%s, %s) = nil, want an error", tt.typ, tt.data)
			}
			ve := fieldOf(t, err)
			if ve.Field != tt.field || !strings.Contains(ve.Message, tt.message) {
				t.Fatalf("Validate(%s, %s) = %q\nwant field %q, message containing %q", tt.typ, tt.data, err, tt.field, tt.message)
			}
			// The message is the same every time, although the validator
			// visits properties in map order.
			for range 5 {
				if again := streams.Validate(tt.typ, json.RawMessage(tt.data)); again.Error() != err.Error() {
					t.Fatalf("Validate is not deterministic: %q, then %q", err, again)
				}
			}
		})
	}
}

func TestValidateUnknownType(t *testing.T) {
	err := streams.Validate("sparkle", json.RawMessage(`{}`))
	ve := fieldOf(t, err)
	if ve.Field != "type" || !strings.HasPrefix(ve.Message, `unknown event type "sparkle"; known: audio, clarification, code, `) {
		t.Fatalf("Validate(sparkle) = %q", err)
	}
	long := strings.Repeat("x", 10000)
	if err := streams.Validate(long, nil); len(err.Error()) > 600 {
		t.Fatalf("the error echoes a %d-byte type in full: %d bytes", len(long), len(err.Error()))
	}
}

func TestValidateConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, p := range validPayloads {
				data, _ := json.Marshal(p)
				if err := streams.Validate(p.EventType(), data); err != nil {
					t.Error(err)
				}
			}
			for _, s := range invalidPayloads {
				if streams.Validate(s.typ, json.RawMessage(s.data)) == nil {
					t.Errorf("%s %s accepted", s.typ, s.data)
				}
			}
		})
	}
	wg.Wait()
}

// clientJSON is e as a client posts it: type, data and the optional ids,
// with no HTML escaping, so that it decodes to exactly e.
func clientJSON(t testing.TB, e streams.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Type   string          `json:"type"`
		RunID  string          `json:"run_id,omitempty"`
		TaskID string          `json:"task_id,omitempty"`
		Data   json.RawMessage `json:"data"`
	}{e.Type, e.RunID, e.TaskID, e.Data})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeEvent(t *testing.T) {
	in := `{
		"type": "feedback",
		"run_id": "run_1",
		"task_id": "tsk_1",
		"data": { "rating": "down", "reason": "wrong city", "event_id": "1732600000000-3" }
	}`
	got, err := streams.DecodeEvent([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := streams.Event{
		Type:   streams.TypeFeedback,
		RunID:  "run_1",
		TaskID: "tsk_1",
		Data:   json.RawMessage(`{"rating":"down","reason":"wrong city","event_id":"1732600000000-3"}`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeEvent = %+v\nwant %+v", got, want)
	}
	fb, err := streams.Decode[streams.Feedback](got)
	if err != nil || fb.EventID != (streams.ID{Ms: 1732600000000, Seq: 3}) {
		t.Fatalf("Decode[Feedback] = %+v, %v", fb, err)
	}
}

// invalidEvents are client-posted events DecodeEvent must reject, naming
// field ("" for an event that is not a JSON object at all).
var invalidEvents = []struct {
	in, field string
}{
	{``, ""},
	{`nope`, ""},
	{"{\"type\":\"text\",\"data\":{\"message_id\":\"m\",\"text\":\"\xc3\"}}", ""},
	{`{`, ""},
	{`[]`, ""},
	{`null`, ""},
	{`"status"`, ""},
	{`{"type":"status","data":{"phase":"queued"}} {}`, ""},
	{`{"type":"status","data":{"phase":"queued"}} x`, ""},
	{`{"type":"status","data":{"phase":"queued"},}`, ""},
	{`{"type":"status","data":{"phase":"queued"},"extra":1}`, "extra"},
	{`{"Type":"status","data":{"phase":"queued"}}`, "Type"},
	{`{"id":"1-1","type":"status","data":{"phase":"queued"}}`, "id"},
	{`{"type":"status","id":"","data":{"phase":"queued"}}`, "id"},
	{`{"type":"status","thread_id":"th_1","data":{"phase":"queued"}}`, "thread_id"},
	{`{"type":"status","ts":"2026-11-22T08:00:00Z","data":{"phase":"queued"}}`, "ts"},
	{`{"type":"status","trace_id":"abc","data":{"phase":"queued"}}`, "trace_id"},
	{`{"type":"status","type":"text","data":{"phase":"queued"}}`, "type"},
	{`{"data":{"phase":"queued"}}`, "type"},
	{`{"type":"","data":{"phase":"queued"}}`, "type"},
	{`{"type":7,"data":{"phase":"queued"}}`, "type"},
	{`{"type":"sparkle","data":{}}`, "type"},
	{`{"type":"status"}`, "data"},
	{`{"type":"status","data":null}`, "data"},
	{`{"type":"status","data":"queued"}`, "data"},
	{`{"type":"status","data":{"phase":"sleeping"}}`, "data.phase"},
	{`{"type":"status","data":{"phase":"queued"},"run_id":"run 1"}`, "run_id"},
	{`{"type":"status","data":{"phase":"queued"},"run_id":""}`, "run_id"},
	{`{"type":"status","data":{"phase":"queued"},"task_id":null}`, "task_id"},
	{`{"type":"feedback","data":{"rating":"up","event_id":"0-0"}}`, "data.event_id"},
}

func TestDecodeEventRejects(t *testing.T) {
	for _, tt := range invalidEvents {
		_, err := streams.DecodeEvent([]byte(tt.in))
		if err == nil {
			t.Errorf("DecodeEvent(%s) accepted it", tt.in)
			continue
		}
		if got := fieldOf(t, err).Field; got != tt.field {
			t.Errorf("DecodeEvent(%s) = %q, want field %q", tt.in, err, tt.field)
		}
	}
}

func TestDecodeEventClientSetID(t *testing.T) {
	_, err := streams.DecodeEvent([]byte(`{"id":"1732600000000-0","type":"status","data":{"phase":"queued"}}`))
	if ve := fieldOf(t, err); ve.Field != "id" || !strings.Contains(ve.Message, "assigned by the server") {
		t.Fatalf("client-set id: %v", err)
	}
}

func compileDocument(t *testing.T) *santhosh.Schema {
	t.Helper()
	doc, err := santhosh.UnmarshalJSON(bytes.NewReader(streams.SchemaDocument()))
	if err != nil {
		t.Fatalf("SchemaDocument is not JSON: %v", err)
	}
	c := santhosh.NewCompiler()
	c.AssertContent()
	const url = "https://example.test/events.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("SchemaDocument does not compile: %v", err)
	}
	return sch
}

func TestSchemaDocument(t *testing.T) {
	b := streams.SchemaDocument()
	var doc struct {
		Schema     string                     `json:"$schema"`
		EventTypes map[string]string          `json:"x-event-types"`
		OneOf      []json.RawMessage          `json:"oneOf"`
		Defs       map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("SchemaDocument is not JSON: %v", err)
	}
	if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %q", doc.Schema)
	}
	if len(doc.EventTypes) != 19 || len(doc.OneOf) != 19 {
		t.Errorf("%d x-event-types and %d oneOf variants, want 19", len(doc.EventTypes), len(doc.OneOf))
	}
	if _, ok := doc.Defs["Envelope"]; !ok {
		t.Error("no Envelope in $defs")
	}
	for _, typ := range streams.Types() {
		ref, ok := doc.EventTypes[typ]
		if !ok {
			t.Errorf("x-event-types lacks %q", typ)
			continue
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok || !strings.HasSuffix(name, "Data") {
			t.Errorf("x-event-types[%q] = %q, want #/$defs/<Name>Data", typ, ref)
		}
		if _, ok := doc.Defs[name]; !ok {
			t.Errorf("x-event-types[%q] = %q, which is not in $defs", typ, ref)
		}
	}
	// Each call returns its own copy.
	b[0] = 'X'
	if streams.SchemaDocument()[0] != '{' {
		t.Error("SchemaDocument returned the cached bytes themselves")
	}
}

// TestSchemaDocumentValidatesEvents checks the document a frontend gets
// against what the server enforces: every valid sample, as a stored event,
// is valid under the document, and a payload under the wrong type is not.
func TestSchemaDocumentValidatesEvents(t *testing.T) {
	sch := compileDocument(t)
	instance := func(e streams.Event) any {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		v, err := santhosh.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i, p := range validPayloads {
		e, err := streams.NewEvent(p)
		if err != nil {
			t.Fatal(err)
		}
		e.ID = streams.ID{Ms: 1732600000000, Seq: uint64(i)}
		e.ThreadID = "th_1"
		e.RunID = "run_1"
		e.TS = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
		if err := sch.Validate(instance(e)); err != nil {
			t.Errorf("%s event is invalid under SchemaDocument: %v", e.Type, err)
		}
	}
	for _, s := range invalidPayloads {
		if !json.Valid([]byte(s.data)) {
			continue
		}
		if strings.Contains(s.message, "whole number") || strings.Contains(s.message, "cannot be decoded") || strings.Contains(s.message, "one per column") || strings.Contains(s.message, "UTF-8") {
			continue // rules checked in Go: integer spelling, id range, cells per row, UTF-8
		}
		e := streams.Event{ID: streams.ID{Ms: 1}, ThreadID: "th_1", Type: s.typ, TS: time.Unix(0, 0).UTC(), Data: json.RawMessage(s.data)}
		if sch.Validate(instance(e)) == nil {
			t.Errorf("%s event with data %s is valid under SchemaDocument", s.typ, s.data)
		}
	}
	wrong := streams.Event{ID: streams.ID{Ms: 1}, ThreadID: "th_1", Type: "status", TS: time.Unix(0, 0).UTC(), Data: json.RawMessage(`{"message_id":"m","text":"hi"}`)}
	if sch.Validate(instance(wrong)) == nil {
		t.Error("a status event with text data is valid under SchemaDocument")
	}
	zero := streams.Event{ThreadID: "th_1", Type: "status", TS: time.Unix(0, 0).UTC(), Data: json.RawMessage(`{"phase":"queued"}`)}
	if sch.Validate(instance(zero)) == nil {
		t.Error("an event with the zero id 0-0 is valid under SchemaDocument")
	}
}

func TestSchemaDocumentGolden(t *testing.T) {
	got := append(streams.SchemaDocument(), '\n')
	path := filepath.Join("testdata", "schema.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./streams/ -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("SchemaDocument differs from %s; if the change is intended, run go test ./streams/ -run Golden -update and review the diff", path)
	}
}

// BenchmarkValidate measures validating typical payloads against their
// compiled schemas, as done for every event appended.
func BenchmarkValidate(b *testing.B) {
	cases := []streams.Payload{
		streams.TextDelta{MessageID: "msg_1", Delta: "Tomorrow in Paris"},
		streams.Status{Phase: streams.PhaseCallingTool, Detail: "weather.lookup"},
		streams.ToolCall{CallID: "call_1", Tool: "weather.lookup", Version: "2", Args: json.RawMessage(`{"city":"Paris","days":1,"units":"metric"}`)},
		streams.Table{Columns: []string{"city", "temp_c", "sunny"}, Rows: [][]any{{"Paris", 21.5, true}, {"Oslo", 9.0, false}, {"Rome", 24.0, true}}},
	}
	for _, p := range cases {
		data, err := json.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(p.EventType(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := streams.Validate(p.EventType(), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewEvent measures building events from typed payloads, as
// agents and workers do for every event of a run: marshaling and
// validating.
func BenchmarkNewEvent(b *testing.B) {
	cases := []streams.Payload{
		streams.TaskStatus{TaskID: "tsk_01JD3X5", RunID: "run_01JD3X6", From: "queued", To: "running"},
		streams.Status{Phase: streams.PhaseCallingTool, Detail: "weather.lookup"},
		streams.ToolCall{CallID: "call_1", Tool: "weather.lookup", Version: "2", Args: json.RawMessage(`{"city":"Paris","days":1,"units":"metric"}`)},
		streams.ToolResult{CallID: "call_1", Tool: "weather.lookup", Result: json.RawMessage(`{"temp_c":21.5,"sky":"sunny"}`), DurationMS: 412},
		streams.Text{MessageID: "msg_1", Text: "Tomorrow in Paris: 21 °C and sunny."},
		streams.Done{Summary: "Answered the forecast question.", Status: streams.OutcomeSucceeded},
		streams.Image{URL: "https://example.com/cat.png", Alt: "A cat"},
	}
	for _, p := range cases {
		b.Run(p.EventType(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := streams.NewEvent(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
