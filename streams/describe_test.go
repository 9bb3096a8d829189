package streams_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	invopop "github.com/invopop/jsonschema"
	santhosh "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// trip is a schema with the rules a Describer's options are about: a oneOf
// and an anyOf of required properties, a pattern, a format.
type trip struct {
	When  *when  `json:"when"`
	City  string `json:"city,omitempty" jsonschema:"anyof_required=city,minLength=1"`
	Topic string `json:"topic,omitempty" jsonschema:"anyof_required=topic,minLength=1"`
	Code  string `json:"code,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	Day   string `json:"day,omitempty" jsonschema:"format=date"`
}

type when struct {
	Cron string `json:"cron,omitempty" jsonschema:"oneof_required=cron"`
	At   string `json:"at,omitempty" jsonschema:"oneof_required=at"`
}

// compileTrip compiles trip's schema, as the agent package compiles its
// own, and records its choices.
func compileTrip(t *testing.T) (*santhosh.Schema, map[string][]string) {
	t.Helper()
	s := (&invopop.Reflector{Anonymous: true, DoNotReference: true}).Reflect(trip{})
	s.Version = ""
	doc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := santhosh.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	const url = "mem:///trip.json"
	c := santhosh.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, v); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return cs, streams.SchemaChoices(url+"#", s)
}

func TestDescriber(t *testing.T) {
	cs, choices := compileTrip(t)
	hints := map[string]string{`^[A-Z]{3}$`: "must be an IATA code such as CDG"}
	for _, c := range []struct {
		name  string
		d     streams.Describer
		value string
		field string
		msg   string // the whole message
	}{{
		name:  "first problem, other missing names",
		d:     streams.Describer{Root: "args", Noun: "trip arguments"},
		value: `{"when":{"at":"x"},"more":1,"extra":2,"city":"Kyoto"}`,
		field: "args.extra", msg: `is not a property of trip arguments (also unknown: "more")`,
	}, {
		name:  "unknown without a noun",
		d:     streams.Describer{},
		value: `{"when":{"at":"x"},"city":"Kyoto","extra":1}`,
		field: "extra", msg: "is not a known property",
	}, {
		name:  "named oneOf",
		d:     streams.Describer{Choices: choices},
		value: `{"when":{},"city":"Kyoto"}`,
		field: "when", msg: `must have exactly one of "cron" and "at"`,
	}, {
		name:  "unnamed oneOf",
		d:     streams.Describer{},
		value: `{"when":{},"city":"Kyoto"}`,
		field: "when", msg: "must match exactly one of the alternatives",
	}, {
		name:  "named anyOf",
		d:     streams.Describer{Root: "slots", Choices: choices},
		value: `{"when":{"at":"x"}}`,
		field: "slots", msg: `must have at least one of "city" and "topic"`,
	}, {
		name:  "pattern hint",
		d:     streams.Describer{PatternHints: hints},
		value: `{"when":{"at":"x"},"city":"Kyoto","code":"cdg"}`,
		field: "code", msg: `must be an IATA code such as CDG, not "cdg"`,
	}, {
		name:  "pattern without a hint",
		d:     streams.Describer{},
		value: `{"when":{"at":"x"},"city":"Kyoto","code":"cdg"}`,
		field: "code", msg: `"cdg" does not match the pattern "^[A-Z]{3}$"`,
	}, {
		name:  "format",
		d:     streams.Describer{},
		value: `{"when":{"at":"x"},"city":"Kyoto","day":"tomorrow"}`,
		field: "day", msg: `must be a date such as 2026-11-23, not "tomorrow"`,
	}, {
		name:  "every problem",
		d:     streams.Describer{Root: "slots", PatternHints: hints, Choices: choices, All: true},
		value: `{"city":"","code":"cdg","when":{"cron":"a","at":"b"}}`,
		field: "slots.city",
		msg:   `must not be empty (also slots.code: must be an IATA code such as CDG, not "cdg"; slots.when: must have exactly one of "cron" and "at")`,
	}, {
		name:  "every problem, the top first",
		d:     streams.Describer{Root: "slots", Choices: choices, All: true},
		value: `{"day":5}`,
		field: "slots.when", msg: `is required (also slots: must have at least one of "city" and "topic"; slots.day: must be string, got number)`,
	}} {
		t.Run(c.name, func(t *testing.T) {
			v, err := santhosh.UnmarshalJSON(strings.NewReader(c.value))
			if err != nil {
				t.Fatal(err)
			}
			var verr *santhosh.ValidationError
			if !errors.As(cs.Validate(v), &verr) {
				t.Fatalf("%s is valid", c.value)
			}
			got := c.d.Describe(verr)
			if got.Code != vigil.Invalid || got.Field != c.field || got.Message != c.msg {
				t.Errorf("Describe = %s %q: %q, want %q: %q", got.Code, got.Field, got.Message, c.field, c.msg)
			}
		})
	}
}
