package streams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	invopop "github.com/invopop/jsonschema"
	santhosh "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/vigilhq/vigil"
)

// The JSON schemas of the protocol are generated from the payload structs
// with invopop/jsonschema, assembled into one document (SchemaDocument), and
// that document is compiled with santhosh-tekuri/jsonschema, so what is
// served to frontends is exactly what Validate enforces. All of it happens
// once, when the package is initialized; validating then only walks a
// compiled schema.

// schemaID is the $id of the protocol's schema document. It names the
// document; nothing fetches it.
const schemaID = "https://github.com/vigilhq/vigil/streams/events.schema.json"

// payloads lists every event type with a one-line description for its
// schema. Adding a type here is all it takes to register it.
var payloads = []struct {
	p    Payload
	desc string
}{
	{Status{}, "The run's current phase."},
	{Reasoning{}, "A short summary of the model's reasoning, for the user."},
	{TextDelta{}, "The next piece of an assistant message being streamed."},
	{Text{}, "A complete assistant message."},
	{ToolCall{}, "The agent calls a tool."},
	{ToolResult{}, "A tool call succeeded."},
	{ToolError{}, "A tool call failed; the model reads the error and may retry."},
	{Clarification{}, "The agent needs the user to answer a question."},
	{TaskCard{}, "A draft task and the actions the user can take on it."},
	{TaskStatus{}, "A task or one of its runs changed state."},
	{Image{}, "An image, by URL or inline."},
	{Code{}, "A block of source code."},
	{Table{}, "A table: rows of cells under named columns, one cell per column."},
	{Audio{}, "A piece of audio, by URL or inline."},
	{File{}, "A file offered for download, by URL or inline."},
	{Warning{}, "A degradation the user should know of; the run goes on."},
	{Error{}, "The run or turn failed."},
	{Feedback{}, "The user's rating of an answer or of the thread (posted by clients)."},
	{Done{}, "The run or turn ended."},
}

// envelopeDocs describes the Event fields in the schema document.
var envelopeDocs = map[string]string{
	"":         "The envelope every event travels in. Its data matches the payload schema of its type; x-event-types maps each type to that schema.",
	"ID":       "The event's position in its thread's log, <milliseconds>-<sequence>, strictly increasing within the thread. It is the SSE id and the resume cursor.",
	"ThreadID": "The thread the event belongs to.",
	"RunID":    "The run that produced the event, if any.",
	"TaskID":   "The task the event concerns, if any.",
	"TraceID":  "The trace of the request that produced the event, for correlating logs.",
	"Type":     "The event type, which selects the schema of data.",
	"TS":       "When the event was appended (RFC 3339, UTC).",
	"Data":     "The payload; its schema depends on type.",
}

// idPattern matches the canonical form of a non-zero ID, as the log writes
// it: no leading zeros, and never "0-0", which is before every event.
const idPattern = `^([1-9][0-9]{0,19}-(0|[1-9][0-9]{0,19})|0-[1-9][0-9]{0,19})$`

// eventType is a registered event type.
type eventType struct {
	name   string
	goType reflect.Type
	def    string           // name of the payload schema in $defs
	schema *santhosh.Schema // the compiled payload schema
	// decode says whether Validate must decode a payload into goType after
	// the schema passed: a payload with numbers or IDs can be valid JSON
	// Schema and still not fit its Go field (2.0 or 1e30 for an int64), and
	// a checker has rules to check on the decoded value. For the other
	// types the schema already guarantees decoding succeeds.
	decode bool
	// oneOf names the properties of which exactly one must be present, if
	// the payload has such a rule (url and data of media events).
	oneOf []string
}

type protocol struct {
	types    map[string]*eventType
	names    []string // sorted
	document []byte
}

var registry = mustBuild()

func mustBuild() *protocol {
	p, err := build()
	if err != nil {
		panic("streams: building event schemas: " + err.Error())
	}
	return p
}

func build() (*protocol, error) {
	proto := &protocol{types: map[string]*eventType{}}
	r := &invopop.Reflector{
		Anonymous:      true,
		DoNotReference: true,
		Mapper:         mapType,
	}
	defs := map[string]*invopop.Schema{}
	mapping := map[string]string{}
	var variants []*invopop.Schema
	for _, pl := range payloads {
		ty, s, err := payloadSchema(r, pl.p, pl.desc)
		if err != nil {
			return nil, err
		}
		if _, dup := proto.types[ty.name]; dup {
			return nil, fmt.Errorf("event type %q registered twice", ty.name)
		}
		proto.types[ty.name] = ty
		proto.names = append(proto.names, ty.name)
		defs[ty.def] = s
		ref := "#/$defs/" + ty.def
		mapping[ty.name] = ref
		variant := &invopop.Schema{Title: ty.name, Properties: invopop.NewProperties()}
		variant.Properties.Set("type", &invopop.Schema{Const: ty.name})
		variant.Properties.Set("data", &invopop.Schema{Ref: ref})
		variants = append(variants, variant)
	}
	sort.Strings(proto.names)
	defs["Envelope"] = envelopeSchema(r, proto.names)

	doc := struct {
		Schema      string                     `json:"$schema"`
		ID          string                     `json:"$id"`
		Title       string                     `json:"title"`
		Description string                     `json:"description"`
		AllOf       []*invopop.Schema          `json:"allOf"`
		OneOf       []*invopop.Schema          `json:"oneOf"`
		EventTypes  map[string]string          `json:"x-event-types"`
		Defs        map[string]*invopop.Schema `json:"$defs"`
	}{
		Schema: invopop.Version,
		ID:     schemaID,
		Title:  "Vigil events",
		Description: "An event of Vigil's streaming protocol, as served over SSE, replay and MCP: " +
			"an Envelope whose data matches the payload schema of its type. " +
			"x-event-types maps each type to its payload schema in $defs.",
		AllOf:      []*invopop.Schema{{Ref: "#/$defs/Envelope"}},
		OneOf:      variants,
		EventTypes: mapping,
		Defs:       defs,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	proto.document = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))

	// Compile the document as served, then each payload schema inside it.
	parsed, err := santhosh.UnmarshalJSON(bytes.NewReader(proto.document))
	if err != nil {
		return nil, err
	}
	c := santhosh.NewCompiler()
	c.AssertContent() // inline data must really be base64
	if err := c.AddResource(schemaID, parsed); err != nil {
		return nil, err
	}
	if _, err := c.Compile(schemaID); err != nil {
		return nil, err
	}
	for _, ty := range proto.types {
		if ty.schema, err = c.Compile(schemaID + "#/$defs/" + ty.def); err != nil {
			return nil, err
		}
	}
	return proto, nil
}

// payloadSchema reflects p's struct into its schema.
func payloadSchema(r *invopop.Reflector, p Payload, desc string) (*eventType, *invopop.Schema, error) {
	t := reflect.TypeOf(p)
	s := r.ReflectFromType(t)
	s.Version = "" // it is a subschema of the document
	s.Description = desc
	ty := &eventType{name: p.EventType(), goType: t, def: t.Name() + "Data", decode: mayNotDecode(t)}
	if _, ok := p.(checker); ok {
		ty.decode = true
	}
	if len(s.OneOf) > 0 {
		// The oneof_required tags of the media payloads: exactly one of url
		// and data. Inline data also needs its media type.
		for _, alt := range s.OneOf {
			ty.oneOf = append(ty.oneOf, alt.Required...)
		}
		if _, ok := s.Properties.Get("mime"); ok {
			s.DependentRequired = map[string][]string{"data": {"mime"}}
		}
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		for _, prop := range []*invopop.Schema{pair.Value, pair.Value.Items} {
			if prop == nil || prop.Pattern == "" {
				continue
			}
			if _, ok := patternHints[prop.Pattern]; !ok {
				return nil, nil, fmt.Errorf("%s.%s: no hint for pattern %q", ty.def, pair.Key, prop.Pattern)
			}
		}
	}
	return ty, s, nil
}

// envelopeSchema reflects the Event struct, with the rules its Go fields
// cannot carry in tags: the id patterns, the known types, data an object.
func envelopeSchema(r *invopop.Reflector, types []string) *invopop.Schema {
	r.LookupComment = func(t reflect.Type, field string) string {
		if t == reflect.TypeFor[Event]() {
			return envelopeDocs[field]
		}
		return ""
	}
	env := r.Reflect(Event{})
	env.Version = ""
	for _, name := range []string{"thread_id", "run_id", "task_id"} {
		if p, ok := env.Properties.Get(name); ok {
			p.Pattern = "^[A-Za-z0-9_.-]+$"
			p.MaxLength = new(uint64(128))
		}
	}
	if p, ok := env.Properties.Get("type"); ok {
		for _, name := range types {
			p.Enum = append(p.Enum, name)
		}
	}
	env.Properties.Set("data", &invopop.Schema{Type: "object", Description: envelopeDocs["Data"]})
	return env
}

// mapType gives the schema of Go types that do not reflect as they marshal.
func mapType(t reflect.Type) *invopop.Schema {
	if t == reflect.TypeFor[ID]() {
		return &invopop.Schema{Type: "string", Pattern: idPattern}
	}
	return nil
}

// Types returns the event types, sorted.
func Types() []string { return slices.Clone(registry.names) }

// SchemaDocument returns the JSON Schema (draft 2020-12) of the whole
// protocol, served at GET /v1/schema/events so that frontends can generate
// their types from it. Its $defs hold the Envelope and one payload schema
// per type, named after the Go struct with a Data suffix (StatusData for
// Status, so that generated types do not collide with the DOM's Event or
// Error). The document itself is a oneOf over the types, and its
// "x-event-types" maps each type to its payload schema
// ({"status": "#/$defs/StatusData", …}). The document is built once; each
// call returns a fresh copy of its bytes.
func SchemaDocument() json.RawMessage { return bytes.Clone(registry.document) }

func lookup(typ string) (*eventType, error) {
	if ty, ok := registry.types[typ]; ok {
		return ty, nil
	}
	if len(typ) > 64 {
		typ = typ[:64] + "…"
	}
	return nil, vigil.FieldError("type", "unknown event type %q; known: %s", typ, strings.Join(registry.names, ", "))
}

// Validate reports whether data is a valid payload for events of type typ.
// An unknown type is a vigil.Invalid error on field "type"; a bad payload
// is a vigil.Invalid error on the field at fault, "data" or a path below it
// ("data.phase", "data.rows.2"), with a message for the first problem found.
//
// Beyond the type's JSON schema, Validate checks that data decodes into the
// type's payload struct and obeys the rules no schema states (a table's rows
// have one cell per column), so that a valid event always decodes.
// Validate is safe for concurrent use.
func Validate(typ string, data json.RawMessage) error {
	ty, err := lookup(typ)
	if err != nil {
		return err
	}
	return ty.validate(data)
}

func (ty *eventType) validate(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return vigil.FieldError("data", "is required")
	}
	if !utf8.Valid(data) {
		return vigil.FieldError("data", "is not valid UTF-8")
	}
	v, err := santhosh.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return vigil.FieldError("data", "is not valid JSON")
	}
	if err := ty.schema.Validate(v); err != nil {
		var verr *santhosh.ValidationError
		if !errors.As(err, &verr) {
			return fmt.Errorf("streams: validate %s payload: %w", ty.name, err)
		}
		return ty.describe(verr)
	}
	if !ty.decode {
		return nil
	}
	// The schema passed, so every property name is exact and known.
	p := reflect.New(ty.goType)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		var terr *json.UnmarshalTypeError
		if errors.As(err, &terr) && terr.Field != "" {
			return vigil.FieldError("data."+terr.Field, "must be %s (got %s)", goTypeName(terr.Type), terr.Value)
		}
		return vigil.FieldError("data", "cannot be decoded as a %s payload: %v", ty.name, err)
	}
	if c, ok := p.Elem().Interface().(checker); ok {
		if err := c.check(); err != nil {
			return err
		}
	}
	return nil
}

// mayNotDecode reports whether a JSON value that passed t's generated schema
// may still fail to decode into t: true unless t is made of strings, bools,
// raw JSON and base64 bytes only.
func mayNotDecode(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool:
		return false
	case reflect.Slice:
		if t == reflect.TypeFor[json.RawMessage]() || t.Elem().Kind() == reflect.Uint8 {
			return false
		}
		return mayNotDecode(t.Elem())
	case reflect.Struct:
		if t == reflect.TypeFor[ID]() {
			return true
		}
		for i := range t.NumField() {
			if mayNotDecode(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}

func goTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number without fraction or exponent, within 64-bit range"
	}
	return "a " + t.String()
}

// describe turns a schema validation error into a vigil.Error about one
// field of a ty payload.
func (ty *eventType) describe(verr *santhosh.ValidationError) *vigil.Error {
	return describe(verr, "data", ty.name+" payloads", ty.oneOf)
}

// DescribeSchemaError turns an error of a santhosh-tekuri/jsonschema schema's
// Validate into a vigil.Invalid error about one field, phrased as Validate
// phrases the errors of event payloads: the problem nearest the top of the
// value, with ties broken by kind, so that the same input always gets the
// same message. root names the validated value in field paths ("args" gives
// "args.date"; "" gives "date"); noun says what the value is in messages
// ("is not a property of weather@1 arguments"). The toolsregistry package
// uses it for tool arguments and results.
func DescribeSchemaError(verr *santhosh.ValidationError, root, noun string) *vigil.Error {
	return describe(verr, root, noun, nil)
}

// describe is DescribeSchemaError; oneOf names the properties of which
// exactly one must be present at the top, when the schema has such a rule.
func describe(verr *santhosh.ValidationError, root, noun string, oneOf []string) *vigil.Error {
	var leaves []*santhosh.ValidationError
	var collect func(e *santhosh.ValidationError)
	collect = func(e *santhosh.ValidationError) {
		switch e.ErrorKind.(type) {
		case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
			if len(e.Causes) > 0 {
				for _, c := range e.Causes {
					collect(c)
				}
				return
			}
		}
		leaves = append(leaves, e)
	}
	collect(verr)
	sort.SliceStable(leaves, func(i, j int) bool {
		a, b := leaves[i], leaves[j]
		if len(a.InstanceLocation) != len(b.InstanceLocation) {
			return len(a.InstanceLocation) < len(b.InstanceLocation)
		}
		if la, lb := strings.Join(a.InstanceLocation, "\x00"), strings.Join(b.InstanceLocation, "\x00"); la != lb {
			return la < lb
		}
		return kindRank(a.ErrorKind) < kindRank(b.ErrorKind)
	})
	if len(leaves) == 0 {
		return vigil.FieldError(root, "does not match the schema of %s", noun)
	}
	e := leaves[0]
	at := root
	for _, tok := range e.InstanceLocation {
		at = joinPath(at, tok)
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return vigil.FieldError(joinPath(at, k.Missing[0]), "is required%s", also("missing", k.Missing[1:]))
	case *kind.AdditionalProperties:
		props := slices.Sorted(slices.Values(k.Properties))
		return vigil.FieldError(joinPath(at, props[0]), "is not a property of %s%s", noun, also("unknown", props[1:]))
	case *kind.DependentRequired:
		return vigil.FieldError(joinPath(at, k.Missing[0]), "is required when %q is set", k.Prop)
	case *kind.OneOf:
		if len(e.InstanceLocation) == 0 && len(oneOf) > 0 {
			return vigil.FieldError(at, "must have exactly one of %s", quoteJoin(oneOf, " and "))
		}
		return vigil.FieldError(at, "must match exactly one of the alternatives")
	case *kind.Type:
		return vigil.FieldError(at, "must be %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.MinLength:
		if k.Want == 1 {
			return vigil.FieldError(at, "must not be empty")
		}
		return vigil.FieldError(at, "must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return vigil.FieldError(at, "must be at most %d characters long", k.Want)
	case *kind.MinItems:
		if k.Want == 1 {
			return vigil.FieldError(at, "must not be empty")
		}
		return vigil.FieldError(at, "must have at least %d items", k.Want)
	case *kind.UniqueItems:
		return vigil.FieldError(at, "must not repeat items (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	case *kind.Minimum:
		return vigil.FieldError(at, "must be at least %s", ratString(k.Want))
	case *kind.Maximum:
		return vigil.FieldError(at, "must be at most %s", ratString(k.Want))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			b, _ := json.Marshal(w)
			want[i] = string(b)
		}
		return vigil.FieldError(at, "value must be one of %s", strings.Join(want, ", "))
	case *kind.Pattern:
		if hint, ok := patternHints[k.Want]; ok {
			return vigil.FieldError(at, "%s, not %q", hint, k.Got)
		}
		return vigil.FieldError(at, "%q does not match the pattern %q", k.Got, k.Want)
	case *kind.ContentEncoding:
		return vigil.FieldError(at, "must be %s-encoded", k.Want)
	}
	return vigil.FieldError(at, "%s", e.ErrorKind.LocalizedString(english))
}

// joinPath appends a property name or index to a field path.
func joinPath(at, tok string) string {
	if at == "" {
		return tok
	}
	return at + "." + tok
}

// patternHints says in words what the patterns of the payload schemas ask
// for; describe falls back to showing the pattern itself.
var patternHints = map[string]string{
	idPattern:                                   "must be an event id, <milliseconds>-<sequence> without leading zeros, such as 1732600000000-3",
	`^[A-Za-z0-9_.-]+$`:                         "must use only letters, digits, '_', '.' and '-'",
	`^(https?://[!-~]+|/[!-~]*)$`:               "must be an absolute http(s) URL or a path starting with '/', without spaces",
	`^[a-z][a-z0-9_.]*$`:                        "must be a lower-case code such as stale_cache",
	`^[a-z][a-z_]*$`:                            "must be a lower-case state name such as running",
	`^image/` + mimeSubtype + `$`:               "must be an image media type such as image/png",
	`^audio/` + mimeSubtype + `$`:               "must be an audio media type such as audio/mpeg",
	`^` + mimeSubtype + `/` + mimeSubtype + `$`: "must be a media type without parameters, such as text/csv",
}

// mimeSubtype is the pattern of a media type's type or subtype name, as the
// mime tags of the media payloads spell it.
const mimeSubtype = `[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*`

// english prints the validator's messages for the kinds describe does not
// phrase itself (enum, pattern, …).
var english = message.NewPrinter(language.English)

// kindRank orders problems at the same place: a missing or unknown property
// says more about what went wrong than a detail of a value.
func kindRank(k santhosh.ErrorKind) int {
	switch k.(type) {
	case *kind.Type:
		return 0
	case *kind.Required:
		return 1
	case *kind.AdditionalProperties:
		return 2
	case *kind.OneOf:
		return 3
	case *kind.DependentRequired:
		return 4
	}
	return 5
}

func also(what string, names []string) string {
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (also %s: %s)", what, quoteJoin(names, ", "))
}

func quoteJoin(names []string, sep string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, sep)
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(6)
}
