package streams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
)

// Payload is the typed content of an event: one struct per event type, each
// named after its type (Status for "status", TextDelta for "text_delta").
// EventType returns the type the payload travels under, one of the Type
// constants.
//
// The payload structs are the Go side of the protocol; the JSON schemas in
// SchemaDocument are generated from them, so the two cannot drift apart.
type Payload interface {
	EventType() string
}

// The event types. Every Event's Type is one of these; Types lists them.
const (
	TypeStatus        = "status"
	TypeReasoning     = "reasoning"
	TypeTextDelta     = "text_delta"
	TypeText          = "text"
	TypeToolCall      = "tool_call"
	TypeToolResult    = "tool_result"
	TypeToolError     = "tool_error"
	TypeClarification = "clarification"
	TypeTaskCard      = "task_card"
	TypeTaskStatus    = "task_status"
	TypeImage         = "image"
	TypeCode          = "code"
	TypeTable         = "table"
	TypeAudio         = "audio"
	TypeFile          = "file"
	TypeWarning       = "warning"
	TypeError         = "error"
	TypeFeedback      = "feedback"
	TypeDone          = "done"
)

// Phase is where a run stands, as reported by a status event.
type Phase string

// The phases of a run.
const (
	PhaseQueued       Phase = "queued"
	PhaseThinking     Phase = "thinking"
	PhaseCallingTool  Phase = "calling_tool"
	PhaseResponding   Phase = "responding"
	PhaseWaitingInput Phase = "waiting_input"
	PhaseDone         Phase = "done"
	PhaseFailed       Phase = "failed"
)

// Status is the payload of a "status" event: the run's current phase.
type Status struct {
	Phase  Phase  `json:"phase" jsonschema:"enum=queued,enum=thinking,enum=calling_tool,enum=responding,enum=waiting_input,enum=done,enum=failed" jsonschema_description:"Where the run stands."`
	Detail string `json:"detail,omitempty" jsonschema_description:"A short human-readable detail, such as the tool being called."`
}

// Reasoning is the payload of a "reasoning" event: a short summary of the
// model's reasoning, written for the user. It never carries raw chain of
// thought or secrets.
type Reasoning struct {
	Summary string `json:"summary" jsonschema:"minLength=1" jsonschema_description:"A short summary of the reasoning, shown to the user."`
}

// TextDelta is the payload of a "text_delta" event: the next piece of an
// assistant message that is being streamed. Producers skip empty pieces.
type TextDelta struct {
	MessageID string `json:"message_id" jsonschema:"minLength=1" jsonschema_description:"The message the piece belongs to; the matching text event has the same id."`
	Delta     string `json:"delta" jsonschema:"minLength=1" jsonschema_description:"The text to append to the message."`
}

// Text is the payload of a "text" event: a complete assistant message.
// When the message was streamed, it follows the message's text_delta events
// and replaces what a client assembled from them.
type Text struct {
	MessageID string `json:"message_id" jsonschema:"minLength=1" jsonschema_description:"The message's id."`
	Text      string `json:"text" jsonschema_description:"The full text of the message."`
}

// ToolCall is the payload of a "tool_call" event: the agent calls a tool.
type ToolCall struct {
	CallID  string          `json:"call_id" jsonschema:"minLength=1" jsonschema_description:"Identifies the call; its tool_result or tool_error carries the same id."`
	Tool    string          `json:"tool" jsonschema:"minLength=1" jsonschema_description:"The tool's name."`
	Version string          `json:"version,omitempty" jsonschema_description:"The tool's version, when tools are versioned."`
	Args    json.RawMessage `json:"args" jsonschema:"type=object" jsonschema_description:"The arguments, an object matching the tool's input schema."`
}

// ToolResult is the payload of a "tool_result" event: a tool call
// succeeded.
type ToolResult struct {
	CallID     string          `json:"call_id" jsonschema:"minLength=1" jsonschema_description:"The id of the tool_call this answers."`
	Tool       string          `json:"tool" jsonschema:"minLength=1" jsonschema_description:"The tool's name."`
	Version    string          `json:"version,omitempty" jsonschema_description:"The tool's version, when tools are versioned."`
	Result     json.RawMessage `json:"result" jsonschema_description:"What the tool returned: any JSON value."`
	DurationMS int64           `json:"duration_ms" jsonschema:"minimum=0" jsonschema_description:"How long the call took, in milliseconds."`
	Cached     bool            `json:"cached" jsonschema_description:"Whether the result came from a cache instead of a fresh call."`
}

// ToolError is the payload of a "tool_error" event: a tool call failed.
// It is a result the model reads and may act on (fix its arguments, retry),
// not a failure of the run.
type ToolError struct {
	CallID    string          `json:"call_id" jsonschema:"minLength=1" jsonschema_description:"The id of the tool_call this answers."`
	Tool      string          `json:"tool" jsonschema:"minLength=1" jsonschema_description:"The tool's name."`
	Version   string          `json:"version,omitempty" jsonschema_description:"The tool's version, when tools are versioned."`
	Error     string          `json:"error" jsonschema:"minLength=1" jsonschema_description:"What went wrong."`
	Expected  json.RawMessage `json:"expected,omitempty" jsonschema_description:"What the tool expected instead: a text or a JSON value such as an excerpt of its input schema."`
	Retryable bool            `json:"retryable" jsonschema_description:"Whether the same call may succeed if retried."`
}

// Clarification is the payload of a "clarification" event: the agent
// needs the user to answer a question before it can go on.
type Clarification struct {
	Question string          `json:"question" jsonschema:"minLength=1" jsonschema_description:"The question to ask the user."`
	Missing  []string        `json:"missing,omitempty" jsonschema:"uniqueItems=true" jsonschema_description:"The names of the slots the answer should fill."`
	Schema   json.RawMessage `json:"schema,omitempty" jsonschema:"type=object" jsonschema_description:"A JSON Schema of the missing slots, for a client that renders a form."`
}

// CardAction is an action a task card offers the user.
type CardAction string

// The actions a task card may offer.
const (
	ActionConfirm CardAction = "confirm"
	ActionEdit    CardAction = "edit"
	ActionCancel  CardAction = "cancel"
)

// TaskCard is the payload of a "task_card" event: a draft task shown to
// the user with the actions they can take on it.
type TaskCard struct {
	Task    json.RawMessage `json:"task" jsonschema:"type=object" jsonschema_description:"The draft task."`
	Actions []CardAction    `json:"actions" jsonschema:"minItems=1,uniqueItems=true,enum=confirm,enum=edit,enum=cancel" jsonschema_description:"The actions offered, in display order."`
}

// TaskStatus is the payload of a "task_status" event: a task or one of
// its runs changed state. With RunID set the states are run states, else
// task states; the tasks package owns both state machines.
type TaskStatus struct {
	TaskID string `json:"task_id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The task."`
	RunID  string `json:"run_id,omitempty" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The run, when a run changed state."`
	From   string `json:"from,omitempty" jsonschema:"pattern=^[a-z][a-z_]*$" jsonschema_description:"The previous state; absent for a new task or run. Task states: draft, active, paused, archived. Run states: queued, running, succeeded, failed, retrying, waiting_input, cancelled."`
	To     string `json:"to" jsonschema:"pattern=^[a-z][a-z_]*$" jsonschema_description:"The new state."`
	Detail string `json:"detail,omitempty" jsonschema:"maxLength=500" jsonschema_description:"Why, when the change needs a word; a run that stays queued because its tenant is at its limit of concurrent runs says so here, with from and to both queued."`
}

// Media events (image, audio, file) carry their content either by reference,
// in URL, or inline, in Data; exactly one of the two is set. A URL is an
// absolute http(s) URL or a path on the Vigil server, never javascript: or
// data: (inline content goes in Data), so that a client can put it in a src
// or href attribute as it is.

// Image is the payload of an "image" event.
type Image struct {
	URL  string `json:"url,omitempty" jsonschema:"oneof_required=url,format=uri-reference,pattern=^(https?://[!-~]+|/[!-~]*)$" jsonschema_description:"Where to fetch the image: an absolute http(s) URL or a path on this server."`
	Data []byte `json:"data,omitempty" jsonschema:"oneof_required=data,minLength=1" jsonschema_description:"The image itself, base64-encoded."`
	MIME string `json:"mime,omitempty" jsonschema:"pattern=^image/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$" jsonschema_description:"The image's media type; required with data."`
	Alt  string `json:"alt,omitempty" jsonschema_description:"A text alternative for the image."`
}

// Code is the payload of a "code" event: a block of source code.
type Code struct {
	Language string `json:"language,omitempty" jsonschema_description:"The language, for syntax highlighting, such as go or python."`
	Code     string `json:"code" jsonschema_description:"The code."`
}

// Table is the payload of a "table" event: rows of cells under named
// columns. Every row has one cell per column.
type Table struct {
	Columns []string `json:"columns" jsonschema:"minItems=1" jsonschema_description:"The column headings."`
	Rows    [][]any  `json:"rows" jsonschema_description:"The rows, each an array with one JSON value per column."`
}

// MarshalJSON writes a table without rows as "rows": [] rather than null.
func (t Table) MarshalJSON() ([]byte, error) {
	type plain Table
	if t.Rows == nil {
		t.Rows = [][]any{}
	}
	return json.Marshal(plain(t))
}

// Audio is the payload of an "audio" event.
type Audio struct {
	URL        string `json:"url,omitempty" jsonschema:"oneof_required=url,format=uri-reference,pattern=^(https?://[!-~]+|/[!-~]*)$" jsonschema_description:"Where to fetch the audio: an absolute http(s) URL or a path on this server."`
	Data       []byte `json:"data,omitempty" jsonschema:"oneof_required=data,minLength=1" jsonschema_description:"The audio itself, base64-encoded."`
	MIME       string `json:"mime,omitempty" jsonschema:"pattern=^audio/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$" jsonschema_description:"The audio's media type; required with data."`
	DurationMS int64  `json:"duration_ms,omitempty" jsonschema:"minimum=0" jsonschema_description:"The length of the audio in milliseconds."`
}

// File is the payload of a "file" event: a file offered for download.
type File struct {
	URL  string `json:"url,omitempty" jsonschema:"oneof_required=url,format=uri-reference,pattern=^(https?://[!-~]+|/[!-~]*)$" jsonschema_description:"Where to fetch the file: an absolute http(s) URL or a path on this server."`
	Data []byte `json:"data,omitempty" jsonschema:"oneof_required=data,minLength=1" jsonschema_description:"The file itself, base64-encoded."`
	MIME string `json:"mime,omitempty" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$" jsonschema_description:"The file's media type, without parameters; required with data."`
	Name string `json:"name" jsonschema:"minLength=1" jsonschema_description:"The file name to show and to save under."`
	Size int64  `json:"size,omitempty" jsonschema:"minimum=0" jsonschema_description:"The size in bytes, when known."`
}

// Warning is the payload of a "warning" event: a degradation the user
// should know of, such as "using yesterday's cached data". The run goes on.
type Warning struct {
	Code    string `json:"code" jsonschema:"pattern=^[a-z][a-z0-9_.]*$" jsonschema_description:"A stable machine-readable code, such as stale_cache."`
	Message string `json:"message" jsonschema:"minLength=1" jsonschema_description:"What the user should know, in their terms."`
}

// Error is the payload of an "error" event: the run or turn failed.
type Error struct {
	Code      string `json:"code" jsonschema:"pattern=^[a-z][a-z0-9_.]*$" jsonschema_description:"A stable machine-readable code, such as rate_limited or internal."`
	Message   string `json:"message" jsonschema:"minLength=1" jsonschema_description:"What went wrong, in the user's terms."`
	Retryable bool   `json:"retryable" jsonschema_description:"Whether trying again may succeed."`
}

// Rating is a user's verdict on an answer: thumbs up or down.
type Rating string

// The ratings. A thumbs up or down is what chat clients offer; a finer scale
// would be asked for rarely and compared poorly across users.
const (
	RatingUp   Rating = "up"
	RatingDown Rating = "down"
)

// Feedback is the payload of a "feedback" event, which clients post.
type Feedback struct {
	Rating  Rating `json:"rating" jsonschema:"enum=up,enum=down" jsonschema_description:"Thumbs up or down."`
	Reason  string `json:"reason,omitempty" jsonschema_description:"Why, in the user's words."`
	EventID ID     `json:"event_id,omitzero" jsonschema_description:"The event the feedback is about; absent for the thread as a whole."`
}

// Outcome is how a run or turn ended, as reported by a done event.
type Outcome string

// The outcomes.
const (
	OutcomeSucceeded    Outcome = "succeeded"
	OutcomeFailed       Outcome = "failed"
	OutcomeCancelled    Outcome = "cancelled"
	OutcomeWaitingInput Outcome = "waiting_input"
)

// Done is the payload of a "done" event: a run or turn ended. It is the
// last event of the turn.
type Done struct {
	Summary string  `json:"summary,omitempty" jsonschema_description:"A short summary of the result."`
	Status  Outcome `json:"status,omitempty" jsonschema:"enum=succeeded,enum=failed,enum=cancelled,enum=waiting_input" jsonschema_description:"How the run or turn ended."`
}

// EventType implements Payload.
func (Status) EventType() string { return TypeStatus }

// EventType implements Payload.
func (Reasoning) EventType() string { return TypeReasoning }

// EventType implements Payload.
func (TextDelta) EventType() string { return TypeTextDelta }

// EventType implements Payload.
func (Text) EventType() string { return TypeText }

// EventType implements Payload.
func (ToolCall) EventType() string { return TypeToolCall }

// EventType implements Payload.
func (ToolResult) EventType() string { return TypeToolResult }

// EventType implements Payload.
func (ToolError) EventType() string { return TypeToolError }

// EventType implements Payload.
func (Clarification) EventType() string { return TypeClarification }

// EventType implements Payload.
func (TaskCard) EventType() string { return TypeTaskCard }

// EventType implements Payload.
func (TaskStatus) EventType() string { return TypeTaskStatus }

// EventType implements Payload.
func (Image) EventType() string { return TypeImage }

// EventType implements Payload.
func (Code) EventType() string { return TypeCode }

// EventType implements Payload.
func (Table) EventType() string { return TypeTable }

// EventType implements Payload.
func (Audio) EventType() string { return TypeAudio }

// EventType implements Payload.
func (File) EventType() string { return TypeFile }

// EventType implements Payload.
func (Warning) EventType() string { return TypeWarning }

// EventType implements Payload.
func (Error) EventType() string { return TypeError }

// EventType implements Payload.
func (Feedback) EventType() string { return TypeFeedback }

// EventType implements Payload.
func (Done) EventType() string { return TypeDone }

// checker is implemented by payloads with rules a JSON schema cannot state.
// Validate calls check after the schema passed; the error's Field is relative
// to the event ("data.rows.2").
type checker interface {
	check() *vigil.Error
}

func (t Table) check() *vigil.Error {
	for i, row := range t.Rows {
		if len(row) != len(t.Columns) {
			return vigil.FieldError(fmt.Sprintf("data.rows.%d", i),
				"has %s, want %d (one per column)", plural(len(row), "cell"), len(t.Columns))
		}
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// NewEvent returns an event of p's type carrying p as its data, validated
// against the type's schema. The log assigns ID and ThreadID on append; the
// caller sets RunID, TaskID, TraceID and TS as it needs. An invalid payload
// is a vigil.Invalid error naming the field ("data.phase"), the error
// Validate gives for its JSON. Most payload types are checked on the Go
// value rather than the JSON, which is cheaper (see typedcheck.go).
func NewEvent(p Payload) (Event, error) {
	if p == nil || isNilPointer(p) {
		return Event{}, vigil.FieldError("data", "is required")
	}
	typ := p.EventType()
	data, err := json.Marshal(p)
	if err != nil {
		return Event{}, fmt.Errorf("streams: encode %s payload: %w", typ, err)
	}
	ty, err := lookup(typ)
	if err != nil {
		return Event{}, err
	}
	if !ty.accepts(p) {
		if err := ty.validate(data); err != nil {
			return Event{}, err
		}
	}
	return Event{Type: typ, Data: data}, nil
}

// accepts reports whether p is a value of ty's payload struct (or a
// pointer to one) that its typed check accepts, so that its JSON needs no
// validation. False means the JSON must be validated.
func (ty *eventType) accepts(p Payload) bool {
	if ty.typed == nil {
		return false
	}
	v := reflect.ValueOf(p)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	return v.Type() == ty.goType && ty.typed(v)
}

func isNilPointer(p Payload) bool {
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Decode returns e's data as the payload type T, one of the payload structs
// (Status, not *Status). It is a vigil.Invalid error if e is not of
// T's type. Decode does not validate: events are validated before they are
// appended, and decoding tolerates fields it does not know, so that a
// process reads events written by a newer version.
func Decode[T Payload](e Event) (T, error) {
	var p T
	if reflect.TypeFor[T]().Kind() != reflect.Struct {
		return p, fmt.Errorf("streams: Decode[%s]: want a payload struct type", reflect.TypeFor[T]())
	}
	if e.Type != p.EventType() {
		return p, vigil.FieldError("type", "is %q, want %q", e.Type, p.EventType())
	}
	if err := json.Unmarshal(e.Data, &p); err != nil {
		return p, vigil.FieldError("data", "cannot decode %s payload: %v", e.Type, err)
	}
	return p, nil
}

// DecodePayload returns e's data as the payload struct of e's type (a
// Status for a "status" event, …), for a consumer that switches on the
// payload's Go type. Like Decode it does not validate. An unknown type is a
// vigil.Invalid error.
func DecodePayload(e Event) (Payload, error) {
	ty, err := lookup(e.Type)
	if err != nil {
		return nil, err
	}
	v := reflect.New(ty.goType)
	if err := json.Unmarshal(e.Data, v.Interface()); err != nil {
		return nil, vigil.FieldError("data", "cannot decode %s payload: %v", e.Type, err)
	}
	return v.Elem().Interface().(Payload), nil
}

// DecodeEvent parses an event a client posted: a JSON object with "type"
// and "data" and, optionally, "run_id" and "task_id". The payload is
// validated against its type's schema, and Data is returned compacted.
//
// It is strict, because what it accepts is stored and replayed to every
// subscriber: unknown fields, repeated fields, trailing data and the fields
// the server assigns ("id", "thread_id", "ts", "trace_id") are rejected
// rather than ignored, so a client that believes it set them learns that it
// did not. Every error is a vigil.Invalid error, naming the field at fault
// when there is one ("id", "data.phase").
func DecodeEvent(b []byte) (Event, error) {
	fields, err := decodeObject(b)
	if err != nil {
		return Event{}, err
	}
	var e Event
	for _, f := range fields {
		switch f.name {
		case "type":
			if err := json.Unmarshal(f.value, &e.Type); err != nil {
				return Event{}, vigil.FieldError("type", "must be a string")
			}
		case "data":
			e.Data = f.value
		case "run_id", "task_id":
			var id string
			if err := json.Unmarshal(f.value, &id); err != nil || string(f.value) == "null" {
				return Event{}, vigil.FieldError(f.name, "must be a string")
			}
			if !vigil.ValidID(id) {
				return Event{}, vigil.FieldError(f.name, "must be 1 to 128 characters from [A-Za-z0-9_.-]")
			}
			if f.name == "run_id" {
				e.RunID = id
			} else {
				e.TaskID = id
			}
		case "id", "ts":
			return Event{}, vigil.FieldError(f.name, "is assigned by the server when the event is appended; do not send it")
		case "thread_id":
			return Event{}, vigil.FieldError(f.name, "is taken from the request path; do not send it")
		case "trace_id":
			return Event{}, vigil.FieldError(f.name, "is taken from the request's trace context; do not send it")
		default:
			return Event{}, vigil.FieldError(f.name, "is not an event field")
		}
	}
	if e.Type == "" {
		return Event{}, vigil.FieldError("type", "is required")
	}
	if e.Data == nil {
		return Event{}, vigil.FieldError("data", "is required")
	}
	if err := Validate(e.Type, e.Data); err != nil {
		return Event{}, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, e.Data); err != nil {
		return Event{}, vigil.FieldError("data", "is not valid JSON")
	}
	e.Data = buf.Bytes()
	return e, nil
}

type field struct {
	name  string
	value json.RawMessage
}

// decodeObject splits a JSON object into its fields in order, rejecting
// anything else, repeated names and trailing data. Names are compared
// exactly: encoding/json would match "Type" to a field tagged "type".
func decodeObject(b []byte) ([]field, error) {
	notJSON := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return vigil.Errorf(vigil.Invalid, "event is not a valid JSON object: it ends too early")
		}
		return vigil.Errorf(vigil.Invalid, "event is not a valid JSON object: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, vigil.Errorf(vigil.Invalid, "event is required: the body is empty")
	}
	if !utf8.Valid(b) {
		return nil, vigil.Errorf(vigil.Invalid, "event is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, notJSON(err)
	}
	if tok != json.Delim('{') {
		return nil, vigil.Errorf(vigil.Invalid, "event must be a JSON object")
	}
	var fields []field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notJSON(err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, notJSON(fmt.Errorf("unexpected %v", tok))
		}
		if seen[name] {
			return nil, vigil.FieldError(name, "appears more than once")
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notJSON(err)
		}
		fields = append(fields, field{name, v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, notJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, vigil.Errorf(vigil.Invalid, "event is not a valid JSON object: data after the closing brace")
	}
	return fields, nil
}
