package streams

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
)

// These tests hold the typed checks to their contract: a typed check
// accepts a payload exactly when its marshaled JSON passes Validate, and
// NewEvent's error is Validate's, field and message.

// typedBases has a valid payload of every type that must have a typed
// check: the ones agents and workers emit on every run. The other types
// (media with oneOf and formats, table with its own marshaling and rules,
// feedback with its event id) are validated in full.
var typedBases = []Payload{
	Status{Phase: PhaseCallingTool, Detail: "weather.lookup"},
	Reasoning{Summary: "Checking the forecast."},
	TextDelta{MessageID: "msg_1", Delta: "Tomorrow"},
	Text{MessageID: "msg_1", Text: "Tomorrow in Paris: 21 °C."},
	ToolCall{CallID: "call_1", Tool: "weather.lookup", Version: "2", Args: json.RawMessage(`{"city":"Paris"}`)},
	ToolResult{CallID: "call_1", Tool: "weather.lookup", Result: json.RawMessage(`{"temp_c":21.5}`), DurationMS: 412, Cached: true},
	ToolError{CallID: "call_3", Tool: "weather.lookup", Error: "days must be at most 7", Expected: json.RawMessage(`{"maximum":7}`), Retryable: true},
	Clarification{Question: "Which city?", Missing: []string{"city"}, Schema: json.RawMessage(`{"type":"object"}`)},
	TaskCard{Task: json.RawMessage(`{"title":"Morning weather"}`), Actions: []CardAction{ActionConfirm, ActionCancel}},
	TaskStatus{TaskID: "tsk_1", RunID: "run_1", From: "queued", To: "running", Detail: "tenant at its limit"},
	Code{Language: "go", Code: "package main\n"},
	Warning{Code: "stale_cache", Message: "Using yesterday's data."},
	Error{Code: "rate_limited", Message: "Busy; try again.", Retryable: true},
	Done{Summary: "Answered.", Status: OutcomeSucceeded},
}

func TestTypedCheckCoverage(t *testing.T) {
	want := map[string]bool{}
	for _, p := range typedBases {
		want[p.EventType()] = true
	}
	for _, name := range registry.names {
		ty := registry.types[name]
		if got := ty.typed != nil; got != want[name] {
			var served struct {
				Defs map[string]json.RawMessage `json:"$defs"`
			}
			if err := json.Unmarshal(registry.document, &served); err != nil {
				t.Fatal(err)
			}
			_, err := compileTypedCheck(ty.goType, served.Defs[ty.def])
			t.Errorf("%s has a typed check: %v, want %v (compiling it: %v)", name, got, want[name], err)
		}
	}
}

// stringEdges are the values tried for every string field: empty, each
// enum value and near misses, around every maxLength, each pattern's
// edges, invalid UTF-8, escaped characters.
var stringEdges = func() []string {
	s := []string{
		"", "a", "A", "z", "0", "_", ".", "-", " ", "a b", "bad id", "tsk_1", "run_01JD3X6",
		"_a", "a_", "a.b", "a-b", "1a", "aB", "Running", "running", "waiting_input", "stale.cache",
		"stale-cache", "x\n", "\n", "é", "aé", "<b>&</b>", "\u2028", "\ufffd", "\xff", "a\xff", "\xfe", "\xc3",
		"up", "down", "confirm", "delete", "Queued", "queued ", "sleeping",
		"https://example.com/a.png", "/v1/files/f_1", "image/png", "text/csv",
	}
	for _, n := range []int{127, 128, 129, 499, 500, 501} {
		s = append(s, strings.Repeat("a", n), strings.Repeat("é", n), strings.Repeat("\xff", n))
	}
	// Every enum value of every payload schema.
	for _, pl := range payloads {
		t := reflect.TypeOf(pl.p)
		for i := range t.NumField() {
			for _, part := range strings.Split(t.Field(i).Tag.Get("jsonschema"), ",") {
				if v, ok := strings.CutPrefix(part, "enum="); ok {
					s = append(s, v, strings.ToUpper(v), v+"x")
				}
			}
		}
	}
	return s
}()

var intEdges = []int64{0, 1, -1, 412, math.MaxInt64, math.MinInt64}

var rawEdges = []json.RawMessage{
	nil, json.RawMessage(`{}`), json.RawMessage(`{"a":1}`), json.RawMessage(" \n{\"a\": [1, 2]}"),
	json.RawMessage(`[]`), json.RawMessage(`[1,"x"]`), json.RawMessage(` [ ]`), json.RawMessage(`null`),
	json.RawMessage(`"s"`), json.RawMessage(`1.5e300`), json.RawMessage(`true`),
	json.RawMessage("{\"a\":\"\xff\"}"), json.RawMessage("[\"\xfe\"]"), json.RawMessage("\"\xc3\""),
	json.RawMessage(`{"a":"<b>\u2028"}`),
}

// value returns a random value of t, from the edges above or made up.
func value(r *rand.Rand, t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		v.SetBytes(rawEdges[r.IntN(len(rawEdges))])
	case t.Kind() == reflect.String:
		v.SetString(randomString(r))
	case t.Kind() == reflect.Int64:
		if r.IntN(2) == 0 {
			v.SetInt(intEdges[r.IntN(len(intEdges))])
		} else {
			v.SetInt(r.Int64N(2000) - 1000)
		}
	case t.Kind() == reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case t.Kind() == reflect.Slice:
		switch n := r.IntN(5); n {
		case 0: // nil
		default:
			s := reflect.MakeSlice(t, n-1, n-1)
			for i := range n - 1 {
				s.Index(i).Set(value(r, t.Elem()))
			}
			if n > 2 && r.IntN(3) == 0 { // a repeated item
				s.Index(n - 2).Set(s.Index(0))
			}
			v.Set(s)
		}
	default:
		panic("no values of " + t.String())
	}
	return v
}

func randomString(r *rand.Rand) string {
	if r.IntN(4) > 0 {
		return stringEdges[r.IntN(len(stringEdges))]
	}
	const alphabet = "abcz_AZ09.-/: é\xff"
	b := make([]byte, r.IntN(12))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// agree checks one payload: the typed check accepts it exactly when its
// JSON passes Validate, and NewEvent fails exactly as Validate does. It
// reports whether the payload was valid.
func agree(t *testing.T, p Payload) bool {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		if _, nerr := NewEvent(p); nerr == nil {
			t.Errorf("NewEvent(%#v) succeeded, but it does not marshal: %v", p, err)
		}
		return false
	}
	ty := registry.types[p.EventType()]
	want := ty.validate(data)
	if got := ty.typed(reflect.ValueOf(p)); got != (want == nil) {
		t.Errorf("typed check of %#v = %v, but Validate(%s) = %v", p, got, data, want)
	}
	for _, p := range []Payload{p, pointerTo(p)} {
		e, err := NewEvent(p)
		switch {
		case want == nil && err != nil:
			t.Errorf("NewEvent(%#v) = %v, want no error", p, err)
		case want == nil && string(e.Data) != string(data):
			t.Errorf("NewEvent(%#v) data = %s, want %s", p, e.Data, data)
		case want != nil:
			var ve, we *vigil.Error
			if !errors.As(err, &ve) || !errors.As(want, &we) || *ve != *we {
				t.Errorf("NewEvent(%#v) = %v, want Validate's error %v", p, err, want)
			}
		}
	}
	return want == nil
}

func pointerTo(p Payload) Payload {
	v := reflect.New(reflect.TypeOf(p))
	v.Elem().Set(reflect.ValueOf(p))
	return v.Interface().(Payload)
}

// TestTypedCheckAgreesWithSchema tries, for every type with a typed check,
// each edge value in each field of a valid payload, then random payloads
// with a few fields changed at once.
func TestTypedCheckAgreesWithSchema(t *testing.T) {
	for _, base := range typedBases {
		t.Run(base.EventType(), func(t *testing.T) {
			if !agree(t, base) {
				t.Fatalf("the base %#v is invalid", base)
			}
			bt := reflect.TypeOf(base)
			valid, invalid := 0, 0
			count := func(ok bool) {
				if ok {
					valid++
				} else {
					invalid++
				}
			}
			// One field at a time, every edge.
			for i := range bt.NumField() {
				for _, f := range edges(bt.Field(i).Type) {
					v := reflect.New(bt).Elem()
					v.Set(reflect.ValueOf(base))
					v.Field(i).Set(f)
					count(agree(t, v.Interface().(Payload)))
				}
			}
			// Random changes to one to all fields.
			r := rand.New(rand.NewPCG(1, uint64(len(base.EventType()))))
			for range 3000 {
				v := reflect.New(bt).Elem()
				v.Set(reflect.ValueOf(base))
				for range 1 + r.IntN(bt.NumField()) {
					i := r.IntN(bt.NumField())
					v.Field(i).Set(value(r, bt.Field(i).Type))
				}
				count(agree(t, v.Interface().(Payload)))
			}
			// Both verdicts must have been tried, or the test proves little;
			// every code payload is valid.
			if valid < 20 || (invalid < 20 && base.EventType() != TypeCode) {
				t.Errorf("%d valid and %d invalid payloads tried; want more of both", valid, invalid)
			}
		})
	}
}

// edges returns the edge values of type t; for a slice, short slices of
// them, with repeats.
func edges(t reflect.Type) []reflect.Value {
	var out []reflect.Value
	of := func(x any) reflect.Value { return reflect.ValueOf(x).Convert(t) }
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		for _, raw := range rawEdges {
			out = append(out, of(raw))
		}
	case t.Kind() == reflect.String:
		for _, s := range stringEdges {
			out = append(out, of(s))
		}
	case t.Kind() == reflect.Int64:
		for _, n := range intEdges {
			out = append(out, of(n))
		}
	case t.Kind() == reflect.Bool:
		out = append(out, of(false), of(true))
	case t.Kind() == reflect.Slice:
		out = append(out, reflect.Zero(t), reflect.MakeSlice(t, 0, 0))
		elems := edges(t.Elem())
		for i, e := range elems {
			out = append(out, reflect.Append(reflect.MakeSlice(t, 0, 2), e))
			next := elems[(i+1)%len(elems)]
			out = append(out, reflect.Append(reflect.MakeSlice(t, 0, 2), e, next), reflect.Append(reflect.MakeSlice(t, 0, 2), e, e))
		}
	default:
		panic("no edges of " + t.String())
	}
	return out
}

// FuzzTypedCheck fills every field of one payload type with the fuzzer's
// values and checks that the typed check and NewEvent agree with Validate.
func FuzzTypedCheck(f *testing.F) {
	f.Add(uint8(9), "tsk_1", "running", int64(0), []byte(`{}`))
	f.Add(uint8(9), "a\xff", "", int64(0), []byte(`{}`))
	f.Add(uint8(5), "c", "t", int64(-1), []byte(`null`))
	f.Add(uint8(4), "c", "t", int64(1), []byte(` [1]`))
	f.Add(uint8(4), "c", "t", int64(1), []byte("{\"a\":\"\xff\"}"))
	f.Add(uint8(7), "\xff", "\xfe", int64(1), []byte(`{}`))
	f.Add(uint8(8), "confirm", "confirm", int64(1), []byte(`{}`))
	f.Add(uint8(0), "waiting_input", "", int64(0), []byte(nil))
	f.Fuzz(func(t *testing.T, which uint8, a, b string, n int64, raw []byte) {
		base := typedBases[int(which)%len(typedBases)]
		bt := reflect.TypeOf(base)
		v := reflect.New(bt).Elem()
		for i := range bt.NumField() {
			field := v.Field(i)
			s := a
			if i%2 == 1 {
				s = b
			}
			switch ft := bt.Field(i).Type; {
			case ft == reflect.TypeFor[json.RawMessage]():
				field.SetBytes(raw)
			case ft.Kind() == reflect.String:
				field.SetString(s)
			case ft.Kind() == reflect.Int64:
				field.SetInt(n)
			case ft.Kind() == reflect.Bool:
				field.SetBool(n%2 == 0)
			case ft.Kind() == reflect.Slice:
				items := reflect.MakeSlice(ft, 0, 2)
				items = reflect.Append(items, reflect.ValueOf(a).Convert(ft.Elem()))
				if n%3 != 0 {
					items = reflect.Append(items, reflect.ValueOf(b).Convert(ft.Elem()))
				}
				field.Set(items)
			}
		}
		agree(t, v.Interface().(Payload))
	})
}

// TestClassRun checks the classRun matcher against package regexp on the
// payloads' patterns, and that the patterns of names and codes have one.
func TestClassRun(t *testing.T) {
	for _, p := range []string{`^[A-Za-z0-9_.-]+$`, `^[a-z][a-z_]*$`, `^[a-z][a-z0-9_.]*$`} {
		if _, ok := compileClassRun(p); !ok {
			t.Errorf("no classRun for %s", p)
		}
	}
	for _, p := range []string{`^(https?://[!-~]+|/[!-~]*)$`, `^[a-zé]+$`, `^[a-z]+`, `[a-z]+$`, `^[a-z]*[a-z]$`, `^a[a-z]*$`, idPattern} {
		if _, ok := compileClassRun(p); ok {
			t.Errorf("a classRun for %s, which is not a run of ASCII classes", p)
		}
	}
	inputs := slices.Clone(stringEdges)
	r := rand.New(rand.NewPCG(2, 3))
	for range 5000 {
		inputs = append(inputs, randomString(r))
	}
	for p := range patternHints {
		m, ok := compileClassRun(p)
		if !ok {
			continue
		}
		re := regexp.MustCompile(p)
		for _, s := range inputs {
			if got, want := m.match(s), re.MatchString(s); got != want {
				t.Errorf("classRun(%s).match(%q) = %v, regexp says %v", p, s, got, want)
			}
		}
	}
}
