package streams

import (
	"encoding"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NewEvent validates payloads that are Go values, whose JSON shape their
// type already guarantees: property names, value types, no unknown
// properties. Only the keywords of a value's schema (minLength, enum,
// pattern, …) can still fail, and checking them on the Go value is far
// cheaper than decoding the marshaled JSON and walking the compiled schema.
//
// So each payload type gets a typed check, compiled once from its schema as
// served in SchemaDocument. The check is an exact decision for the valid
// case only: when it says yes, the schema says yes. When it says no, NewEvent
// validates the marshaled JSON in full, which finds the problem and phrases
// it as Validate does, so a rejected payload gets the same error either way.
// A type whose schema has a keyword the compiler does not know, or a field
// that marshals itself, gets no typed check and is always validated in full;
// so is any value of a type other than the registered struct, and a type
// with rules beyond its schema (a checker). What Validate checks beyond the
// schema otherwise, that the JSON decodes into the payload struct, holds
// for the JSON of a value of that struct.

// typedCheck reports whether v, a value of the payload struct it was
// compiled for, marshals to JSON its schema accepts. False means "not
// sure": the caller must validate the JSON.
type typedCheck func(v reflect.Value) bool

// compileTypedCheck compiles the check of payload struct t from schema, its
// payload schema in SchemaDocument. It is an error if the schema or t has
// anything the check does not know how to decide exactly.
func compileTypedCheck(t reflect.Type, schema json.RawMessage) (typedCheck, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct", t)
	}
	if marshalsItself(t) {
		return nil, fmt.Errorf("%s marshals itself", t)
	}
	kw, err := keywords(schema)
	if err != nil {
		return nil, err
	}
	var props map[string]json.RawMessage
	var required []string
	for k, v := range kw {
		switch k {
		case "type":
			err = wantType(v, "object")
		case "additionalProperties":
			// A struct marshals only its fields, all of which must be
			// properties (below), so additionalProperties cannot fail.
		case "properties":
			err = json.Unmarshal(v, &props)
		case "required":
			err = json.Unmarshal(v, &required)
		default:
			err = fmt.Errorf("keyword %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	fields, err := jsonFields(t)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(slices.Sorted(maps.Keys(fields)), slices.Sorted(maps.Keys(props))) {
		return nil, fmt.Errorf("the properties of %s are not its JSON fields", t)
	}
	for _, name := range required {
		if f, ok := fields[name]; !ok || f.omitEmpty {
			return nil, fmt.Errorf("%s: required but may be omitted", name)
		}
	}
	var checks []fieldCheck
	for name, f := range fields {
		c, err := compileValue(t.Field(f.index).Type, props[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if c != nil {
			f.check = c
			checks = append(checks, f)
		}
	}
	slices.SortFunc(checks, func(a, b fieldCheck) int { return a.index - b.index })
	return func(v reflect.Value) bool {
		for _, f := range checks {
			fv := v.Field(f.index)
			if f.omitEmpty && isEmpty(fv) {
				continue
			}
			if !f.check(fv) {
				return false
			}
		}
		return true
	}, nil
}

// fieldCheck checks one field of a struct.
type fieldCheck struct {
	index     int
	omitEmpty bool // the field is left out when empty, and then not checked
	check     typedCheck
}

// jsonFields maps the JSON names of t's fields to the fields, as
// encoding/json marshals them. Embedded structs, the ",string" and
// ",omitzero" options are not supported.
func jsonFields(t reflect.Type) (map[string]fieldCheck, error) {
	fields := map[string]fieldCheck{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, fmt.Errorf("%s.%s is embedded", t, sf.Name)
		}
		tag := sf.Tag.Get("json")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("%s has two fields named %q", t, name) // encoding/json drops both
		}
		f := fieldCheck{index: i}
		for opt := range strings.SplitSeq(opts, ",") {
			switch opt {
			case "":
			case "omitempty":
				f.omitEmpty = true
			default:
				return nil, fmt.Errorf("%s.%s has the option %q", t, sf.Name, opt)
			}
		}
		fields[name] = f
	}
	return fields, nil
}

// compileValue compiles the check of a value of type t against schema. A
// nil check means there is nothing to check.
func compileValue(t reflect.Type, schema json.RawMessage) (typedCheck, error) {
	if string(schema) == "true" {
		return nil, nil
	}
	kw, err := keywords(schema)
	if err != nil {
		return nil, err
	}
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		return compileRaw(kw)
	case marshalsItself(t):
		return nil, fmt.Errorf("%s marshals itself", t)
	}
	switch t.Kind() {
	case reflect.String:
		return compileString(kw)
	case reflect.Bool:
		return nil, onlyType(kw, "boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return compileInt(kw)
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 {
			return compileSlice(t, kw)
		}
	}
	return nil, fmt.Errorf("values of type %s", t)
}

// compileRaw checks raw JSON, which json.Marshal has checked to be valid
// JSON (nil is null). Its bytes land in the event's data as they are, so
// they must be valid UTF-8, which json.Marshal does not check.
func compileRaw(kw map[string]json.RawMessage) (typedCheck, error) {
	want := byte(0) // the first byte the type asks for; 0 for any
	for k, v := range kw {
		if k != "type" {
			return nil, fmt.Errorf("keyword %q on raw JSON", k)
		}
		var typ string
		if err := json.Unmarshal(v, &typ); err != nil {
			return nil, fmt.Errorf("type %s on raw JSON", v)
		}
		switch typ {
		case "object":
			want = '{'
		case "array":
			want = '['
		default:
			return nil, fmt.Errorf("type %q on raw JSON", typ)
		}
	}
	return func(v reflect.Value) bool {
		b := v.Bytes()
		if !utf8.Valid(b) {
			return false
		}
		if want == 0 {
			return true
		}
		i := 0
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		return i < len(b) && b[i] == want
	}, nil
}

func compileString(kw map[string]json.RawMessage) (typedCheck, error) {
	var (
		enum                 []string
		minLen, maxLen       = -1, -1
		pattern              func(string) bool
		hasEnum, anyRuneRule bool
	)
	for k, v := range kw {
		var err error
		switch k {
		case "type":
			err = wantType(v, "string")
		case "enum":
			hasEnum = true
			var values []any
			err = json.Unmarshal(v, &values)
			for _, value := range values {
				if s, ok := value.(string); ok {
					enum = append(enum, s)
				}
			}
		case "minLength":
			err = json.Unmarshal(v, &minLen)
			anyRuneRule = true
		case "maxLength":
			err = json.Unmarshal(v, &maxLen)
			anyRuneRule = true
		case "pattern":
			var p string
			if err = json.Unmarshal(v, &p); err == nil {
				pattern, err = compilePattern(p)
			}
			anyRuneRule = true
		default:
			err = fmt.Errorf("keyword %q on a string", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasEnum && !anyRuneRule {
		return nil, nil
	}
	return func(v reflect.Value) bool {
		s := v.String()
		if hasEnum && !slices.Contains(enum, marshaled(s)) {
			return false
		}
		if anyRuneRule {
			// json.Marshal writes each byte of invalid UTF-8 as U+FFFD,
			// and RuneCountInString and regexp count and match it as one.
			n := utf8.RuneCountInString(s)
			if n < minLen || maxLen >= 0 && n > maxLen {
				return false
			}
			if pattern != nil && !pattern(s) {
				return false
			}
		}
		return true
	}, nil
}

// compilePattern compiles a pattern as the validator does, with package
// regexp, except that the patterns of the payloads' ids and codes, runs
// of characters from ASCII classes (^[a-z][a-z_]*$), are matched by a
// classRun: a few nanoseconds for a short id, where regexp takes some 200.
func compilePattern(pattern string) (func(string) bool, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if m, ok := compileClassRun(pattern); ok {
		return m.match, nil
	}
	return re.MatchString, nil
}

// A classRun matches the strings that ^[head][tail]*$ (with a head) or
// ^[tail]+$ (without) match, for classes of ASCII characters.
type classRun struct {
	head, tail [utf8.RuneSelf]bool
	hasHead    bool
	minTail    int // the least number of tail characters
}

// compileClassRun returns the classRun of pattern, if it has that form.
func compileClassRun(pattern string) (*classRun, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 3 {
		return nil, false
	}
	first, last := re.Sub[0], re.Sub[len(re.Sub)-1]
	if first.Op != syntax.OpBeginText || last.Op != syntax.OpEndText {
		return nil, false
	}
	m := &classRun{}
	switch mid := re.Sub[1 : len(re.Sub)-1]; {
	case len(mid) == 1 && mid[0].Op == syntax.OpPlus:
		m.minTail = 1
	case len(mid) == 2 && mid[0].Op == syntax.OpCharClass && mid[1].Op == syntax.OpStar:
		m.hasHead = asciiSet(&m.head, mid[0].Rune)
		if !m.hasHead {
			return nil, false
		}
	default:
		return nil, false
	}
	rep := re.Sub[len(re.Sub)-2] // the + or *
	if rep.Sub[0].Op != syntax.OpCharClass || !asciiSet(&m.tail, rep.Sub[0].Rune) {
		return nil, false
	}
	return m, true
}

// asciiSet fills set with the ranges of a character class (pairs of
// runes, lo and hi), and reports whether they are all ASCII.
func asciiSet(set *[utf8.RuneSelf]bool, ranges []rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i+1] >= utf8.RuneSelf {
			return false
		}
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			set[r] = true
		}
	}
	return true
}

func (m *classRun) match(s string) bool {
	if m.hasHead {
		if s == "" || s[0] >= utf8.RuneSelf || !m.head[s[0]] {
			return false
		}
		s = s[1:]
	}
	if len(s) < m.minTail {
		return false
	}
	// A byte outside ASCII, of a character or of invalid UTF-8, is in
	// no class.
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf || !m.tail[s[i]] {
			return false
		}
	}
	return true
}

func compileInt(kw map[string]json.RawMessage) (typedCheck, error) {
	var lo, hi *int64
	for k, v := range kw {
		var err error
		switch k {
		case "type":
			err = wantType(v, "integer")
		case "minimum":
			lo, err = parseInt(v)
		case "maximum":
			hi, err = parseInt(v)
		default:
			err = fmt.Errorf("keyword %q on an integer", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if lo == nil && hi == nil {
		return nil, nil
	}
	return func(v reflect.Value) bool {
		n := v.Int()
		return (lo == nil || n >= *lo) && (hi == nil || n <= *hi)
	}, nil
}

func parseInt(v json.RawMessage) (*int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bound %s is not a 64-bit integer", v)
	}
	return &n, nil
}

// compileSlice checks a slice, which marshals as an array, or as null when
// nil.
func compileSlice(t reflect.Type, kw map[string]json.RawMessage) (typedCheck, error) {
	var (
		isArray        bool
		items          typedCheck
		minLen, maxLen = -1, -1
		unique         bool
	)
	for k, v := range kw {
		var err error
		switch k {
		case "type":
			err = wantType(v, "array")
			isArray = true
		case "items":
			items, err = compileValue(t.Elem(), v)
		case "minItems":
			err = json.Unmarshal(v, &minLen)
		case "maxItems":
			err = json.Unmarshal(v, &maxLen)
		case "uniqueItems":
			err = json.Unmarshal(v, &unique)
			if unique && (t.Elem().Kind() != reflect.String || marshalsItself(t.Elem())) {
				err = fmt.Errorf("uniqueItems on %s", t)
			}
		default:
			err = fmt.Errorf("keyword %q on an array", k)
		}
		if err != nil {
			return nil, err
		}
	}
	return func(v reflect.Value) bool {
		if v.IsNil() {
			return !isArray // null; the other keywords apply to arrays only
		}
		n := v.Len()
		if n < minLen || maxLen >= 0 && n > maxLen {
			return false
		}
		for i := range n {
			e := v.Index(i)
			if items != nil && !items(e) {
				return false
			}
			if unique {
				s := marshaled(e.String())
				for j := range i {
					if marshaled(v.Index(j).String()) == s {
						return false
					}
				}
			}
		}
		return true
	}, nil
}

// marshaled returns s as it reads in JSON that json.Marshal wrote, which
// has each byte of invalid UTF-8 as U+FFFD: two different strings may
// marshal alike.
func marshaled(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// keywords returns the keywords of a schema object, without the
// annotations, which validate nothing.
func keywords(schema json.RawMessage) (map[string]json.RawMessage, error) {
	var kw map[string]json.RawMessage
	if err := json.Unmarshal(schema, &kw); err != nil || kw == nil {
		return nil, fmt.Errorf("schema %.40s is not an object", schema)
	}
	for _, k := range []string{"title", "description", "examples", "default", "$comment"} {
		delete(kw, k)
	}
	return kw, nil
}

func wantType(v json.RawMessage, want string) error {
	var typ string
	if err := json.Unmarshal(v, &typ); err != nil || typ != want {
		return fmt.Errorf("type %s for a Go value that marshals as %s", v, want)
	}
	return nil
}

func onlyType(kw map[string]json.RawMessage, want string) error {
	for k, v := range kw {
		if k != "type" {
			return fmt.Errorf("keyword %q on a %s", k, want)
		}
		if err := wantType(v, want); err != nil {
			return err
		}
	}
	return nil
}

// marshalsItself reports whether t's JSON is up to its own methods.
func marshalsItself(t reflect.Type) bool {
	for _, t := range []reflect.Type{t, reflect.PointerTo(t)} {
		if t.Implements(reflect.TypeFor[json.Marshaler]()) || t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) {
			return true
		}
	}
	return false
}

// isEmpty reports whether encoding/json's omitempty leaves v out, for the
// kinds compileValue supports.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Slice:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	}
	return false
}
