package toolsregistry

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/width"

	"github.com/vigilhq/vigil"
)

// Repair is one change Schema.Repair made to a call's arguments, reported so
// that the caller can show it (and a model learn from it).
type Repair struct {
	// Field is the argument changed, a dotted path ("date", "stops.1").
	Field string `json:"field"`
	// Rule names the rule that changed it: "date", "date_time", "time",
	// "number", "boolean", "string", "enum_case", "trim", "array",
	// "default" or "decoded_json".
	Rule string `json:"rule"`
	// From is the value before the change; absent for a default filled in.
	From json.RawMessage `json:"from,omitempty"`
	// To is the value after the change.
	To json.RawMessage `json:"to"`
}

// Repair fixes what rules can fix in args, arguments that Validate finds
// invalid, and validates the result. now and loc (nil means UTC) give
// relative dates their meaning. The rules, applied to each value the
// schema describes and kept only when the new value passes the value's
// subschema:
//
//   - a date or time a person would write ("tomorrow", "明天", "in 2 days",
//     "next friday 8pm", "2026/11/23") becomes ISO 8601 where the schema
//     wants format date, date-time or time, or a pattern a formatted
//     value matches ("8am" and "20:30" become "08:00" and "20:30" under
//     ^\d{2}:\d{2}$, "08:00:00+08:00" under format time);
//   - a number in a string ("42", " 1,234.5 ") becomes a number, and
//     "true" or "false" a boolean, where the schema wants one; a number
//     becomes a string where the schema wants a string;
//   - an enum's value in the wrong case or spelling of separators
//     ("Celsius", "kilo-meters") becomes the enum's value, if exactly one
//     matches;
//   - surrounding spaces are trimmed, and a single value becomes a
//     one-item array where the schema wants an array;
//   - a missing required property whose schema has a default gets it;
//   - arguments sent as a JSON string holding an object are decoded.
//
// It returns the arguments (re-encoded, with keys sorted), the repairs in
// field order, and nil or the *Error that Validate reports for the result.
// Repair is safe for concurrent use.
func (s *Schema) Repair(args json.RawMessage, now time.Time, loc *time.Location) (json.RawMessage, []Repair, error) {
	fixed, reps, err := s.repair(args, now, loc)
	if err != nil {
		return fixed, reps, err
	}
	return fixed, reps, nil
}

func (s *Schema) repair(args json.RawMessage, now time.Time, loc *time.Location) (json.RawMessage, []Repair, *Error) {
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	inst, err := parseInstance(args)
	if err != nil {
		return args, nil, &Error{Code: vigil.Invalid, Field: s.root, Message: err.Error()}
	}
	var reps []Repair
	if str, ok := inst.(string); ok && wantsType(s.resolve(s.doc), "object") {
		if obj, err := parseInstance(json.RawMessage(str)); err == nil {
			if _, isObj := obj.(map[string]any); isObj {
				reps = append(reps, Repair{Field: s.root, Rule: "decoded_json", From: marshal(str), To: marshal(obj)})
				inst = obj
			}
		}
	}
	r := repairer{s: s, now: now}
	inst = r.walk("", s.doc, inst, s.root)
	reps = append(reps, r.reps...)
	return marshal(inst), reps, s.validate(inst)
}

type repairer struct {
	s    *Schema
	now  time.Time
	reps []Repair
}

// walk repairs v, described by the subschema node at the JSON pointer ptr,
// and returns the repaired value. Objects and arrays are repaired in place.
func (r *repairer) walk(ptr string, node, v any, field string) any {
	node, ptr = r.s.follow(node, ptr)
	sch, ok := node.(map[string]any)
	if !ok {
		return v
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := sch["properties"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if cur, ok := val[name]; ok {
				val[name] = r.walk(ptr+"/properties/"+pointerToken(name), props[name], cur, joinField(field, name))
			}
		}
		required, _ := sch["required"].([]any)
		for _, req := range required {
			name, _ := req.(string)
			if _, present := val[name]; present || props == nil {
				continue
			}
			sub, _ := r.s.follow(props[name], "")
			if m, ok := sub.(map[string]any); ok {
				if def, ok := m["default"]; ok {
					val[name] = def
					r.reps = append(r.reps, Repair{Field: joinField(field, name), Rule: "default", To: marshal(def)})
				}
			}
		}
		return val
	case []any:
		if items, ok := sch["items"].(map[string]any); ok {
			for i := range val {
				val[i] = r.walk(ptr+"/items", items, val[i], joinField(field, strconv.Itoa(i)))
			}
		}
		return val
	}
	if r.s.validAt(ptr, v) {
		return v
	}
	for _, c := range r.candidates(sch, v) {
		if r.s.validAt(ptr, c.v) {
			r.reps = append(r.reps, Repair{Field: field, Rule: c.rule, From: marshal(v), To: marshal(c.v)})
			return c.v
		}
	}
	return v
}

type candidate struct {
	rule string
	v    any
}

// candidates proposes replacements for the invalid scalar v, best first.
func (r *repairer) candidates(sch map[string]any, v any) []candidate {
	var cs []candidate
	add := func(rule string, v any) { cs = append(cs, candidate{rule, v}) }
	switch val := v.(type) {
	case string:
		if enum, ok := sch["enum"].([]any); ok {
			if e, ok := enumMatch(enum, val); ok {
				add("enum_case", e)
			}
		}
		if wantsType(sch, "number") || wantsType(sch, "integer") {
			if n, ok := numberIn(val); ok {
				add("number", n)
			}
		}
		if wantsType(sch, "boolean") {
			switch strings.ToLower(strings.TrimSpace(val)) {
			case "true", "yes":
				add("boolean", true)
			case "false", "no":
				add("boolean", false)
			}
		}
		if wantsType(sch, "string") || sch["type"] == nil {
			if t := strings.TrimSpace(val); t != val {
				add("trim", t)
			}
			cs = append(cs, r.timeCandidates(sch, val)...)
		}
	case json.Number:
		if wantsType(sch, "string") {
			add("string", string(val))
		}
	}
	if wantsType(sch, "array") {
		if _, isArr := v.([]any); !isArr {
			add("array", []any{v})
		}
	}
	return cs
}

// timeCandidates proposes ISO 8601 spellings of the moment s names, in the
// form the schema's format asks for, or, without a format, every form the
// moment has, for the subschema's pattern to choose.
func (r *repairer) timeCandidates(sch map[string]any, s string) []candidate {
	m, ok := parseMoment(s, r.now)
	if !ok {
		return nil
	}
	loc := r.now.Location()
	var day, at time.Time // the date, and the date and time
	hasDay, hasAt := false, false
	switch {
	case m.hasExact:
		at, hasAt = m.exact.In(loc), true
		day, hasDay = midnight(at), true
	case m.hasDay && m.hasClock:
		day, hasDay = m.day, true
		at, hasAt = time.Date(day.Year(), day.Month(), day.Day(), m.h, m.m, m.s, 0, loc), true
	case m.hasDay:
		day, hasDay = m.day, true
		at, hasAt = day, true
	case m.hasClock:
		// A time alone, where a date-time is wanted, is its next occurrence.
		at = time.Date(r.now.Year(), r.now.Month(), r.now.Day(), m.h, m.m, m.s, 0, loc)
		if at.Before(r.now) {
			at = at.AddDate(0, 0, 1)
		}
		hasAt = true
	}
	clockKnown := m.hasClock || m.hasExact
	var cs []candidate
	format, _ := sch["format"].(string)
	switch format {
	case "date":
		if hasDay {
			cs = append(cs, candidate{"date", day.Format(time.DateOnly)})
		}
	case "date-time":
		if hasAt {
			cs = append(cs, candidate{"date_time", at.Format(time.RFC3339)})
		}
	case "time":
		if clockKnown {
			cs = append(cs,
				candidate{"time", at.Format("15:04:05Z07:00")},
				candidate{"time", at.Format("15:04:05") + offsetOf(at)})
		}
	case "":
		if clockKnown && !m.hasDay {
			cs = append(cs,
				candidate{"time", at.Format("15:04")},
				candidate{"time", at.Format("15:04:05")},
				candidate{"time", at.Format("15:04:05Z07:00")})
		}
		if hasDay && !clockKnown {
			cs = append(cs, candidate{"date", day.Format(time.DateOnly)})
		}
		if hasAt {
			cs = append(cs,
				candidate{"date_time", at.Format(time.RFC3339)},
				candidate{"date_time", at.Format("2006-01-02 15:04")})
		}
	}
	return cs
}

// offsetOf spells t's zone offset as a time's offset, +08:00 or +00:00.
func offsetOf(t time.Time) string {
	return t.Format("-07:00")
}

var numberPattern = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)

// numberIn reads a number written in a string: digits with an optional
// sign, fraction and exponent, in ASCII or full-width forms, with spaces,
// commas or underscores between digits as thousands separators.
func numberIn(s string) (json.Number, bool) {
	t := width.Fold.String(strings.TrimSpace(s))
	t = strings.NewReplacer(",", "", "_", "", " ", "").Replace(t)
	if !numberPattern.MatchString(t) {
		return "", false
	}
	t = strings.TrimPrefix(t, "+")
	if strings.HasPrefix(t, ".") {
		t = "0" + t
	} else if strings.HasPrefix(t, "-.") {
		t = "-0" + t[1:]
	}
	t = strings.TrimSuffix(t, ".")
	var f float64
	if err := json.Unmarshal([]byte(t), &f); err != nil {
		return "", false
	}
	return json.Number(t), true
}

// enumMatch finds the one string of enum that s spells with another case,
// other separators (space, '-', '_') or surrounding spaces.
func enumMatch(enum []any, s string) (string, bool) {
	norm := func(x string) string {
		x = strings.ToLower(strings.TrimSpace(width.Fold.String(x)))
		return strings.NewReplacer(" ", "", "-", "", "_", "").Replace(x)
	}
	want := norm(s)
	found, n := "", 0
	for _, e := range enum {
		if es, ok := e.(string); ok && norm(es) == want {
			found, n = es, n+1
		}
	}
	return found, n == 1
}

// wantsType reports whether the schema sch allows values of JSON type t.
func wantsType(node any, t string) bool {
	sch, ok := node.(map[string]any)
	if !ok {
		return false
	}
	switch ty := sch["type"].(type) {
	case string:
		return ty == t || (t == "number" && ty == "integer")
	case []any:
		for _, x := range ty {
			if x == t {
				return true
			}
		}
	}
	return false
}

// follow resolves a local $ref of node, returning the target and its JSON
// pointer; other nodes are returned with ptr as they are.
func (s *Schema) follow(node any, ptr string) (any, string) {
	if obj, ok := node.(map[string]any); ok {
		if ref, ok := obj["$ref"].(string); ok && strings.HasPrefix(ref, "#/") {
			if target, ok := s.lookup(ref); ok {
				return target, ref[1:]
			}
		}
	}
	return node, ptr
}

func joinField(at, tok string) string {
	if at == "" {
		return tok
	}
	return at + "." + tok
}

// marshal encodes v compactly without escaping <, > and &.
func marshal(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
