package streams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	// typed checks a Go value of goType (see typedCheck); nil if the
	// schema has a keyword it cannot decide, and NewEvent then validates
	// the JSON in full.
	typed typedCheck
}

type protocol struct {
	types    map[string]*eventType
	names    []string // sorted
	document []byte
	// choices names the alternatives of the payload schemas' oneOf rules
	// (url and data of media events), for describing errors.
	choices map[string][]string
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
	proto := &protocol{types: map[string]*eventType{}, choices: map[string][]string{}}
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
		maps.Copy(proto.choices, SchemaChoices(schemaID+"#/$defs/"+ty.def, s))
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
	var served struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(proto.document, &served); err != nil {
		return nil, err
	}
	for _, ty := range proto.types {
		if ty.schema, err = c.Compile(schemaID + "#/$defs/" + ty.def); err != nil {
			return nil, err
		}
		// A type whose schema the typed check cannot decide (see
		// typedcheck.go) or with rules beyond its schema (a checker) is
		// left without one.
		if !ty.goType.Implements(reflect.TypeFor[checker]()) {
			ty.typed, _ = compileTypedCheck(ty.goType, served.Defs[ty.def])
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
	d := Describer{Root: "data", Noun: ty.name + " payloads", PatternHints: patternHints, Choices: registry.choices}
	return d.Describe(verr)
}

// DescribeSchemaError turns an error of a santhosh-tekuri/jsonschema schema's
// Validate into a vigil.Invalid error about one field, phrased as Validate
// phrases the errors of event payloads. root names the validated value in
// field paths ("args" gives "args.date"; "" gives "date"); noun says what
// the value is in messages ("is not a property of weather@1 arguments").
// The toolsregistry package uses it for tool arguments and results; it is
// Describer{Root: root, Noun: noun}.Describe with the event schemas'
// pattern hints.
func DescribeSchemaError(verr *santhosh.ValidationError, root, noun string) *vigil.Error {
	return Describer{Root: root, Noun: noun, PatternHints: patternHints}.Describe(verr)
}

// A Describer turns the errors of santhosh-tekuri/jsonschema schemas'
// Validate into vigil.Invalid errors that a person or a model can act on:
// Validate's errors for event payloads, toolsregistry's for tool arguments
// and results, the agent package's for plan_task and task slots. The zero
// value describes the first problem in plain words; the fields add what the
// caller knows of its schemas. A Describer is safe for concurrent use as
// long as its maps are not modified.
type Describer struct {
	// Root names the validated value in field paths: "args" gives
	// "args.date", "" gives "date".
	Root string
	// Noun says what the value is, for unknown properties: "is not a
	// property of weather@1 arguments". Without it they are "not a known
	// property".
	Noun string
	// PatternHints says in words what a pattern asks for ("must be a
	// duration such as 15m or 1h"), by pattern; a pattern without a hint
	// is shown as it is.
	PatternHints map[string]string
	// Choices names, by schema URL, the properties among which the
	// schema's oneOf or anyOf asks to choose, as SchemaChoices records
	// them: the validator does not say what the alternatives were.
	Choices map[string][]string
	// All lists every problem in the message ("(also schedule.cron: …)"),
	// for a model that should fix them in one go; otherwise only the first
	// is told, with the other properties missing or unknown at its place.
	All bool
}

// problem is one thing wrong, at field.
type problem struct {
	field, message string
	// name is the property that problems of one kind at one place
	// (several missing, several unknown) differ by; what says which kind.
	name, what string
}

// Describe turns verr into a vigil.Invalid error on the field of the
// problem nearest the top of the value, with ties broken by place and kind,
// so that the same input always gets the same message.
func (d Describer) Describe(verr *santhosh.ValidationError) *vigil.Error {
	leaves := sortedLeaves(verr)
	if len(leaves) == 0 {
		if d.Noun == "" {
			return vigil.FieldError(d.Root, "does not match the schema")
		}
		return vigil.FieldError(d.Root, "does not match the schema of %s", d.Noun)
	}
	if !d.All {
		leaves = leaves[:1]
	}
	var problems []problem
	for _, e := range leaves {
		problems = append(problems, d.problems(e)...)
	}
	first, rest := problems[0], problems[1:]
	msg := first.message
	switch {
	case len(rest) == 0:
	case d.All:
		more := make([]string, len(rest))
		for i, p := range rest {
			more[i] = p.message
			if p.field != "" {
				more[i] = p.field + ": " + p.message
			}
		}
		msg += " (also " + strings.Join(more, "; ") + ")"
	default: // the other names of the one leaf
		names := make([]string, len(rest))
		for i, p := range rest {
			names[i] = p.name
		}
		msg += also(first.what, names)
	}
	return vigil.FieldError(first.field, "%s", msg)
}

// sortedLeaves returns the failed keywords of verr, the ones nearest the
// top of the value first, then by place and kind.
func sortedLeaves(verr *santhosh.ValidationError) []*santhosh.ValidationError {
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
	return leaves
}

// problems phrases one failed keyword: one problem, or one per property
// missing or unknown.
func (d Describer) problems(e *santhosh.ValidationError) []problem {
	at := d.Root
	for _, tok := range e.InstanceLocation {
		at = joinPath(at, tok)
	}
	one := func(format string, args ...any) []problem {
		return []problem{{field: at, message: fmt.Sprintf(format, args...)}}
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []problem
		for _, m := range k.Missing {
			out = append(out, problem{joinPath(at, m), "is required", m, "missing"})
		}
		return out
	case *kind.AdditionalProperties:
		unknown := "is not a known property"
		if d.Noun != "" {
			unknown = "is not a property of " + d.Noun
		}
		var out []problem
		for _, p := range slices.Sorted(slices.Values(k.Properties)) {
			out = append(out, problem{joinPath(at, p), unknown, p, "unknown"})
		}
		return out
	case *kind.DependentRequired:
		return []problem{{field: joinPath(at, k.Missing[0]), message: fmt.Sprintf("is required when %q is set", k.Prop)}}
	case *kind.OneOf:
		if names, ok := d.Choices[e.SchemaURL]; ok {
			return one("must have exactly one of %s", choiceList(names))
		}
		return one("must match exactly one of the alternatives")
	case *kind.AnyOf:
		if names, ok := d.Choices[e.SchemaURL]; ok {
			return one("must have at least one of %s", choiceList(names))
		}
		return one("must match at least one of the alternatives")
	case *kind.Type:
		return one("must be %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.MinLength:
		if k.Want == 1 {
			return one("must not be empty")
		}
		return one("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return one("must be at most %d characters long", k.Want)
	case *kind.MinItems:
		if k.Want == 1 {
			return one("must not be empty")
		}
		return one("must have at least %d items", k.Want)
	case *kind.UniqueItems:
		return one("must not repeat items (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	case *kind.Minimum:
		return one("must be at least %s", ratString(k.Want))
	case *kind.Maximum:
		return one("must be at most %s", ratString(k.Want))
	case *kind.ExclusiveMinimum:
		return one("must be more than %s", ratString(k.Want))
	case *kind.ExclusiveMaximum:
		return one("must be less than %s", ratString(k.Want))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = jsonText(w)
		}
		return one("value must be one of %s", strings.Join(want, ", "))
	case *kind.Pattern:
		if hint, ok := d.PatternHints[k.Want]; ok {
			return one("%s, not %q", hint, k.Got)
		}
		return one("%q does not match the pattern %q", k.Got, k.Want)
	case *kind.Format:
		return one("must be %s, not %s", formatHint(k.Want), jsonText(k.Got))
	case *kind.ContentEncoding:
		return one("must be %s-encoded", k.Want)
	}
	return one("%s", e.ErrorKind.LocalizedString(english))
}

// SchemaChoices records, for a Describer's Choices, the properties among
// which the oneOf and anyOf rules of s (the oneof_required and
// anyof_required tags) and of the schemas below it ask to choose. url is
// where s was compiled ("mem:///x.json#", "…#/$defs/ImageData"); the
// schemas below are keyed as the validator names them, url +
// "/properties/city" or url + "/items".
func SchemaChoices(url string, s *invopop.Schema) map[string][]string {
	out := map[string][]string{}
	var walk func(url string, s *invopop.Schema)
	walk = func(url string, s *invopop.Schema) {
		if s == nil {
			return
		}
		var names []string
		for _, alt := range append(slices.Clone(s.OneOf), s.AnyOf...) {
			for _, n := range alt.Required {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		if len(names) > 0 {
			out[url] = names
		}
		if s.Properties != nil {
			for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
				walk(url+"/properties/"+pair.Key, pair.Value)
			}
		}
		walk(url+"/items", s.Items)
	}
	walk(url, s)
	return out
}

// choiceList quotes names and joins them, the last with "and":
// "cron", "at" and "every".
func choiceList(names []string) string {
	if len(names) < 2 {
		return quoteJoin(names, "")
	}
	last := len(names) - 1
	return quoteJoin(names[:last], ", ") + " and " + quoteJoin(names[last:], "")
}

// formatHint says in words what a format asks for.
func formatHint(format string) string {
	switch format {
	case "date-time":
		return "an RFC 3339 date-time such as 2026-11-23T08:00:00+08:00"
	case "date":
		return "a date such as 2026-11-23"
	case "uri":
		return "an absolute URL"
	}
	return "in the " + format + " format"
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
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

// english prints the validator's messages for the kinds Describe does not
// phrase itself.
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
	case *kind.OneOf, *kind.AnyOf:
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
