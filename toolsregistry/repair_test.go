package toolsregistry

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
)

const repairSchema = `{
	"type": "object",
	"properties": {
		"date":   {"type": "string", "format": "date"},
		"when":   {"type": "string", "format": "date-time"},
		"at":     {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
		"clock":  {"type": "string", "format": "time"},
		"count":  {"type": "integer", "minimum": 0},
		"price":  {"type": "number"},
		"units":  {"type": "string", "enum": ["celsius", "fahrenheit"]},
		"mode":   {"$ref": "#/$defs/Mode"},
		"days":   {"type": "integer", "default": 3},
		"flag":   {"type": "boolean"},
		"tags":   {"type": "array", "items": {"type": "string"}},
		"zip":    {"type": "string"},
		"stops":  {"type": "array", "items": {"type": "object", "properties": {"on": {"type": "string", "format": "date"}}}},
		"nested": {"type": "object", "properties": {"amount": {"type": "number"}}}
	},
	"required": ["days"],
	"additionalProperties": false,
	"$defs": {"Mode": {"type": "string", "enum": ["fast_track", "Slow"]}}
}`

func TestRepair(t *testing.T) {
	s, err := CompileSchema(json.RawMessage(repairSchema))
	if err != nil {
		t.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// Sunday 22 November 2026, 10:00 in Shanghai.
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, shanghai)

	for _, c := range []struct {
		field, in, want, rule string
	}{
		{"date", `"tomorrow"`, `"2026-11-23"`, "date"},
		{"date", `"明天"`, `"2026-11-23"`, "date"},
		{"date", `"后天"`, `"2026-11-24"`, "date"},
		{"date", `"大后天"`, `"2026-11-25"`, "date"},
		{"date", `"in 2 days"`, `"2026-11-24"`, "date"},
		{"date", `"3天后"`, `"2026-11-25"`, "date"},
		{"date", `"yesterday"`, `"2026-11-21"`, "date"},
		{"date", `"today"`, `"2026-11-22"`, "date"},
		{"date", `"Friday"`, `"2026-11-27"`, "date"},
		{"date", `"next monday"`, `"2026-11-23"`, "date"},
		{"date", `"周五"`, `"2026-11-27"`, "date"},
		{"date", `"下周三"`, `"2026-11-25"`, "date"},
		{"date", `"2026/12/1"`, `"2026-12-01"`, "date"},
		{"date", `"2026年12月1日"`, `"2026-12-01"`, "date"},
		{"date", `"12月25号"`, `"2026-12-25"`, "date"},
		{"date", `"Dec 3, 2026"`, `"2026-12-03"`, "date"},
		{"date", `"3rd December"`, `"2026-12-03"`, "date"},
		{"date", `"２０２６－１１－３０"`, `"2026-11-30"`, "date"},
		{"date", `"2026-11-23T08:00:00+08:00"`, `"2026-11-23"`, "date"},
		{"when", `"tomorrow 8am"`, `"2026-11-23T08:00:00+08:00"`, "date_time"},
		{"when", `"明天早上8点"`, `"2026-11-23T08:00:00+08:00"`, "date_time"},
		{"when", `"明晚8点半"`, `"2026-11-23T20:30:00+08:00"`, "date_time"},
		{"when", `"tonight at 9"`, `"2026-11-22T21:00:00+08:00"`, "date_time"},
		{"when", `"in 2 hours"`, `"2026-11-22T12:00:00+08:00"`, "date_time"},
		{"when", `"半小时后"`, `"2026-11-22T10:30:00+08:00"`, "date_time"},
		{"when", `"2026-11-23 08:00"`, `"2026-11-23T08:00:00+08:00"`, "date_time"},
		{"when", `"2026-11-23T08:00"`, `"2026-11-23T08:00:00+08:00"`, "date_time"},
		{"when", `"8am"`, `"2026-11-23T08:00:00+08:00"`, "date_time"}, // 08:00 has passed: the next one
		{"when", `"noon"`, `"2026-11-22T12:00:00+08:00"`, "date_time"},
		{"at", `"8am"`, `"08:00"`, "time"},
		{"at", `"8:30 pm"`, `"20:30"`, "time"},
		{"at", `"8 p.m."`, `"20:00"`, "time"},
		{"at", `"早上8点"`, `"08:00"`, "time"},
		{"at", `"晚上八点半"`, `"20:30"`, "time"},
		{"at", `"下午3点15分"`, `"15:15"`, "time"},
		{"at", `"20:30:00"`, `"20:30"`, "time"},
		{"at", `"9 in the evening"`, `"21:00"`, "time"},
		{"at", `"midnight"`, `"00:00"`, "time"},
		{"clock", `"8am"`, `"08:00:00+08:00"`, "time"},
		{"clock", `"20:30"`, `"20:30:00+08:00"`, "time"},
		{"count", `"42"`, `42`, "number"},
		{"count", `" 1,200 "`, `1200`, "number"},
		{"count", `"４２"`, `42`, "number"},
		{"price", `"3.50"`, `3.50`, "number"},
		{"price", `"-.5"`, `-0.5`, "number"},
		{"units", `"Celsius"`, `"celsius"`, "enum_case"},
		{"units", `" FAHRENHEIT "`, `"fahrenheit"`, "enum_case"},
		{"mode", `"fast track"`, `"fast_track"`, "enum_case"},
		{"mode", `"slow"`, `"Slow"`, "enum_case"},
		{"flag", `"true"`, `true`, "boolean"},
		{"flag", `"No"`, `false`, "boolean"},
		{"tags", `"news"`, `["news"]`, "array"},
		{"zip", `10001`, `"10001"`, "string"},
		{"stops.1.on", `"后天"`, `"2026-11-24"`, "date"},
		{"nested.amount", `"12.5"`, `12.5`, "number"},
	} {
		t.Run(c.field+"="+c.in, func(t *testing.T) {
			args := `{"days": 1, ` + nest(c.field, c.in) + `}`
			if s.Validate(json.RawMessage(args)) == nil {
				t.Fatalf("%s is valid already", args)
			}
			fixed, reps, verr := s.Repair(json.RawMessage(args), now, shanghai)
			if verr != nil {
				t.Fatalf("Repair(%s): still invalid: %v (%s)", args, verr, fixed)
			}
			want := `{"days":1,` + nest(c.field, c.want) + `}`
			if !jsonEqual(t, fixed, want) {
				t.Errorf("Repair(%s) = %s, want %s", args, fixed, want)
			}
			if len(reps) != 1 || reps[0].Field != c.field || reps[0].Rule != c.rule || !jsonEqual(t, reps[0].To, c.want) {
				t.Errorf("repairs = %+v, want one %s repair of %s", reps, c.rule, c.field)
			}
		})
	}

	// A missing required property with a default gets it.
	fixed, reps, verr := s.Repair(json.RawMessage(`{"units":"Celsius"}`), now, shanghai)
	if verr != nil || !jsonEqual(t, fixed, `{"days":3,"units":"celsius"}`) || len(reps) != 2 ||
		reps[0].Field != "units" || reps[1].Field != "days" || reps[1].Rule != "default" {
		t.Errorf("default: %s %+v %v", fixed, reps, verr)
	}
	// Arguments sent as a JSON string holding the object.
	fixed, reps, verr = s.Repair(json.RawMessage(`"{\"days\":2,\"date\":\"tomorrow\"}"`), now, shanghai)
	if verr != nil || !jsonEqual(t, fixed, `{"days":2,"date":"2026-11-23"}`) || len(reps) != 2 || reps[0].Rule != "decoded_json" {
		t.Errorf("decoded json: %s %+v %v", fixed, reps, verr)
	}

	// What no rule can read stays invalid, with the field named.
	for _, c := range []struct{ args, field string }{
		{`{"days":1,"date":"someday"}`, "date"},
		{`{"days":1,"date":"tomorrow or the day after"}`, "date"},
		{`{"days":1,"date":"2026-02-30"}`, "date"},
		{`{"days":1,"at":"25:00"}`, "at"},
		{`{"days":1,"at":"in 2 days at 8am"}`, "at"},
		{`{"days":1,"count":"many"}`, "count"},
		{`{"days":1,"count":"1.5"}`, "count"},
		{`{"days":1,"units":"kelvin"}`, "units"},
		{`{"days":1,"flag":"maybe"}`, "flag"},
		{`{"days":1,"bogus":1}`, "bogus"},
	} {
		_, reps, err := s.Repair(json.RawMessage(c.args), now, shanghai)
		var verr *Error
		if !errors.As(err, &verr) || verr.Field != c.field || verr.Code != vigil.Invalid {
			t.Errorf("Repair(%s) = %v, %+v; want an error on %s", c.args, verr, reps, c.field)
		}
	}
}

// nest spells "a.1.b": v as JSON members: "a": [{}, {"b": v}].
func nest(field, v string) string {
	parts := strings.Split(field, ".")
	switch len(parts) {
	case 1:
		return `"` + field + `": ` + v
	case 2:
		return `"` + parts[0] + `": {"` + parts[1] + `": ` + v + `}`
	}
	return `"` + parts[0] + `": [{}, {"` + parts[2] + `": ` + v + `}]`
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	return string(marshal(a)) == string(marshal(b))
}
