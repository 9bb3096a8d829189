package toolsregistry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	santhosh "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// schemaURL is the $id every tool schema is compiled under. Each Schema has
// its own compiler, so one name serves all; nothing fetches it.
const schemaURL = "https://vigil.invalid/tool.schema.json"

// maxExpected bounds the schema excerpt an argument error carries.
const maxExpected = 4 << 10

// Schema is a compiled JSON schema of a tool's arguments or result. It is
// compiled once, when the tool is registered; Validate then only walks the
// compiled form. A Schema is safe for concurrent use.
type Schema struct {
	raw  json.RawMessage
	doc  any    // the parsed schema, walked by Repair and for excerpts
	root string // the name of the validated value in field paths
	noun string // what the value is, in messages

	compiled *santhosh.Schema

	mu       sync.Mutex // guards compiler and subs
	compiler *santhosh.Compiler
	subs     map[string]*santhosh.Schema // by JSON pointer, compiled on demand by Repair
}

// CompileSchema compiles raw, a JSON Schema (draft 2020-12 unless its
// $schema says otherwise), with format assertions on, so that a "date"
// field holding "tomorrow" is invalid. A schema may not refer to other
// documents: $ref reaches only into raw itself. Errors are vigil.Invalid.
// Field paths in Validate's errors start at the top-level property ("date",
// "units.0").
func CompileSchema(raw json.RawMessage) (*Schema, error) {
	return compileSchema(raw, "", "the arguments")
}

func compileSchema(raw json.RawMessage, root, noun string) (*Schema, error) {
	if !utf8.Valid(raw) {
		return nil, vigil.Errorf(vigil.Invalid, "schema is not valid UTF-8")
	}
	doc, err := santhosh.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, vigil.Errorf(vigil.Invalid, "schema is not valid JSON: %v", err)
	}
	c := santhosh.NewCompiler()
	c.DefaultDraft(santhosh.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, vigil.Errorf(vigil.Invalid, "schema: %v", err)
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, vigil.Errorf(vigil.Invalid, "schema does not compile: %s", strings.ReplaceAll(err.Error(), schemaURL, ""))
	}
	return &Schema{
		raw: bytes.Clone(raw), doc: doc, root: root, noun: noun,
		compiled: compiled, compiler: c, subs: map[string]*santhosh.Schema{},
	}, nil
}

// noLoader refuses every document a schema refers to: a tool's schema comes
// from a plugin author, and a file: or http: $ref would read local files or
// reach the network at registration.
type noLoader struct{}

// Load implements santhosh.URLLoader by refusing.
func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schemas may not refer to other documents (%s)", u)
}

// Raw returns the schema as it was given.
func (s *Schema) Raw() json.RawMessage { return s.raw }

// Validate checks v, a JSON document, against the schema. It returns nil
// or an *Error with code vigil.Invalid naming the field at fault (a path of
// property names and indexes joined by dots), what is wrong, and in
// Expected the part of the schema that describes the field, for the model
// to correct its call.
func (s *Schema) Validate(v json.RawMessage) error {
	if err := s.check(v); err != nil {
		return err
	}
	return nil
}

// check is Validate with the concrete error type.
func (s *Schema) check(v json.RawMessage) *Error {
	inst, err := parseInstance(v)
	if err != nil {
		return &Error{Code: vigil.Invalid, Field: s.root, Message: err.Error()}
	}
	return s.validate(inst)
}

func parseInstance(v json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(v)) == 0 {
		return nil, errors.New("is required")
	}
	if !utf8.Valid(v) {
		return nil, errors.New("is not valid UTF-8")
	}
	inst, err := santhosh.UnmarshalJSON(bytes.NewReader(v))
	if err != nil {
		return nil, errors.New("is not valid JSON")
	}
	return inst, nil
}

func (s *Schema) validate(inst any) *Error {
	err := s.compiled.Validate(inst)
	if err == nil {
		return nil
	}
	var verr *santhosh.ValidationError
	if !errors.As(err, &verr) {
		return &Error{Code: vigil.Invalid, Field: s.root, Message: err.Error(), Err: err}
	}
	ve := streams.DescribeSchemaError(verr, s.root, s.noun)
	return &Error{
		Code:     vigil.Invalid,
		Field:    ve.Field,
		Message:  ve.Message,
		Expected: s.excerpt(ve.Field),
	}
}

// excerpt returns the subschema that describes field, a dotted path from
// Validate's errors: the property's own schema, or for a property the
// schema does not know, the enclosing object's. Long excerpts are left out.
func (s *Schema) excerpt(field string) json.RawMessage {
	path := strings.TrimPrefix(strings.TrimPrefix(field, s.root), ".")
	node := s.resolve(s.doc)
	var toks []string
	if path != "" {
		toks = strings.Split(path, ".")
	}
	for i := 0; i < len(toks); i++ {
		obj, _ := node.(map[string]any)
		if obj == nil {
			break
		}
		next, used := childSchema(obj, toks[i:])
		if next == nil {
			break
		}
		i += used - 1
		node = s.resolve(next)
	}
	b, err := json.Marshal(node)
	if err != nil || len(b) > maxExpected {
		return nil
	}
	return b
}

// childSchema returns the subschema of the value at toks[0] (or, for a
// property whose name has dots, at toks[0].toks[1]…) below the object
// schema obj, and how many tokens it took.
func childSchema(obj map[string]any, toks []string) (any, int) {
	if props, ok := obj["properties"].(map[string]any); ok {
		name := ""
		for n := range toks {
			name += toks[n]
			if sub, ok := props[name]; ok {
				return sub, n + 1
			}
			name += "."
		}
	}
	if _, err := strconv.Atoi(toks[0]); err == nil {
		if items, ok := obj["items"].(map[string]any); ok {
			return items, 1
		}
	}
	if ap, ok := obj["additionalProperties"].(map[string]any); ok {
		return ap, 1
	}
	return nil, 0
}

// resolve follows a local $ref ("#/$defs/City") of a subschema, once.
func (s *Schema) resolve(node any) any {
	if obj, ok := node.(map[string]any); ok {
		if ref, ok := obj["$ref"].(string); ok {
			if target, ok := s.lookup(ref); ok {
				return target
			}
		}
	}
	return node
}

// lookup returns the subschema a local reference ("#/$defs/City") points to.
func (s *Schema) lookup(ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	target := s.doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok, _ = url.PathUnescape(tok)
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := target.(map[string]any)
		if !ok {
			return nil, false
		}
		if target, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return target, true
}

// validAt reports whether v is valid against the subschema at ptr, a JSON
// pointer into the document ("/properties/date"). Repair uses it to try
// candidate values; subschemas are compiled on first use and kept.
func (s *Schema) validAt(ptr string, v any) bool {
	s.mu.Lock()
	sub, ok := s.subs[ptr]
	if !ok {
		var err error
		sub, err = s.compiler.Compile(schemaURL + "#" + ptr)
		if err != nil {
			sub = nil
		}
		s.subs[ptr] = sub
	}
	s.mu.Unlock()
	return sub != nil && sub.Validate(v) == nil
}

// pointerToken escapes a property name for a JSON pointer in a URL fragment.
func pointerToken(name string) string {
	name = strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
	return url.PathEscape(name)
}
