package agent

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
)

// Every plan the offline planner makes, on both fixture sets, is a valid
// plan_task call: what Offline answers passes the checks an LLM's answer
// goes through, and reads back into the same plan.
func TestOfflinePlansAreValidPlanTaskArgs(t *testing.T) {
	for _, path := range []string{"testdata/requests.dev.jsonl", "testdata/requests.more.jsonl"} {
		for _, f := range loadFixtures(t, path) {
			p := PlanOffline(Request{Text: f.Text, TZ: f.loc, Now: f.now})
			args, err := json.Marshal(planArgs(p))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePlanArgs(args)
			if err != nil {
				t.Errorf("%s:%d %q: ParsePlanArgs(%s): %v", path, f.line, f.Text, args, err)
				continue
			}
			if want, have := shape(t, p), shape(t, got); !reflect.DeepEqual(want, have) {
				t.Errorf("%s:%d %q: read back as\n%+v\nwant\n%+v", path, f.line, f.Text, have, want)
			}
		}
	}
}

func TestSlotSchemas(t *testing.T) {
	var plan struct {
		Properties struct {
			Slots struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"slots"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(PlanTaskTool().Parameters, &plan); err != nil {
		t.Fatal(err)
	}
	union := plan.Properties.Slots.Properties
	seen := map[string]bool{}
	for _, d := range []string{DomainWeather, DomainPrice, DomainNews, DomainReminder, DomainWeb, DomainReport} {
		raw := SlotSchema(d)
		var s struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(raw, &s); err != nil || len(s.Properties) == 0 {
			t.Fatalf("SlotSchema(%s) = %s: %v", d, raw, err)
		}
		// The same schema goes into plan_task: each slot as the domain has it.
		for k, v := range s.Properties {
			seen[k] = true
			if string(union[k]) != string(v) {
				t.Errorf("slot %s of %s is %s in plan_task, %s in SlotSchema", k, d, union[k], v)
			}
		}
	}
	if len(seen) != len(union) {
		t.Errorf("plan_task offers slots %v, the domains have %v", keys(union), seen)
	}
	if SlotSchema("astrology") != nil {
		t.Error("SlotSchema of an unknown domain is not nil")
	}
	s := SlotSchema(DomainWeather)
	s[0] = 'X'
	if SlotSchema(DomainWeather)[0] == 'X' {
		t.Error("SlotSchema returns shared bytes")
	}
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

func TestValidateSlots(t *testing.T) {
	for _, c := range []struct {
		domain, slots string
		field, msg    string // want; "" field means valid
	}{
		{DomainWeather, `{"city":"北京"}`, "", ""},
		{DomainWeather, `{"city":""}`, "slots.city", "must not be empty"},
		{DomainWeather, `{}`, "slots.city", "is required"},
		{DomainWeather, `{"city":"Paris","date":"tomorrow"}`, "slots.date", "is not a known property"},
		{DomainPrice, `{"symbol":"BTC","threshold":60000,"direction":"down"}`, "", ""},
		{DomainPrice, `{"symbol":"BTC","direction":"sideways"}`, "slots.direction", `must be one of "up", "down"`},
		{DomainPrice, `{"symbol":"BTC","percent":"5%"}`, "slots.percent", "must be number, got string"},
		{DomainPrice, `{"symbol":"gold","percent":0}`, "slots.percent", "must be more than 0"},
		{DomainReport, `{"city":"Kyoto"}`, "", ""},
		{DomainReport, `{}`, "slots", `must have at least one of "topic" and "city"`},
		{DomainWeb, `{"url":"https://example.com/status"}`, "", ""},
		{DomainWeb, `{"url":"ftp://example.com"}`, "slots.url", "must be an absolute http(s) URL"},
		{DomainWeb, `{"url":"https://exa mple.com"}`, "slots.url", "must be an absolute URL"},
		{DomainNews, `["AI"]`, "slots", "must be object, got array"},
		{DomainNews, `{"topic":`, "slots", "not valid JSON"},
	} {
		err := ValidateSlots(c.domain, json.RawMessage(c.slots))
		if c.field == "" {
			if err != nil {
				t.Errorf("ValidateSlots(%s, %s) = %v, want nil", c.domain, c.slots, err)
			}
			continue
		}
		var e *vigil.Error
		if !errors.As(err, &e) || e.Code != vigil.Invalid || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
			t.Errorf("ValidateSlots(%s, %s) = %v, want field %s: …%s…", c.domain, c.slots, err, c.field, c.msg)
		}
	}
	if err := ValidateSlots("astrology", json.RawMessage(`{}`)); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("unknown domain: %v", err)
	}
}

func TestParsePlanArgs(t *testing.T) {
	for _, c := range []struct {
		name, args string
		field, msg string // the error wanted, if field is set
		check      func(t *testing.T, p Plan)
	}{{
		name: "an LLM's create_task, missing recomputed",
		args: `{"intent":"create_task","kind":"periodic","domain":"weather","schedule":{"cron":"0 8 * * *"},"missing":[],"language":"zh","question":""}`,
		check: func(t *testing.T, p Plan) {
			if !slices.Equal(p.Missing, []string{SlotCity}) || p.Question != "请问要哪个城市的天气？" {
				t.Errorf("missing %v, question %q", p.Missing, p.Question)
			}
		},
	}, {
		name: "the model's question is kept when its missing list is right",
		args: `{"intent":"create_task","kind":"one_shot","domain":"reminder","slots":{"message":"call mom"},"missing":["time"],"question":"At what time?","language":"en"}`,
		check: func(t *testing.T, p Plan) {
			if !slices.Equal(p.Missing, []string{SlotTime}) || p.Question != "At what time?" || p.Schedule != nil {
				t.Errorf("%+v", p)
			}
		},
	}, {
		name: "a monitor",
		args: `{"intent":"create_task","kind":"monitor","domain":"price","schedule":{"every":"15m"},"slots":{"symbol":"BTC","threshold":60000,"direction":"down"}}`,
		check: func(t *testing.T, p Plan) {
			if p.Schedule.Every != "15m" || p.Slots[SlotThreshold] != 60000.0 || len(p.Missing) != 0 || p.Language != "en" {
				t.Errorf("%+v", p)
			}
		},
	}, {
		name: "an instant",
		args: `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"2026-11-23T08:00:00+08:00"},"slots":{"message":"交房租"},"question":"","reasoning":"用户想在明早8点被提醒交房租。"}`,
		check: func(t *testing.T, p Plan) {
			if p.Schedule.At == nil || !p.Schedule.At.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) || p.Language != "zh" {
				t.Errorf("%+v", p)
			}
		},
	}, {
		name: "other intents keep no task fields",
		args: `{"intent":"pause_task","kind":"periodic","slots":{"city":"Paris"}}`,
		check: func(t *testing.T, p Plan) {
			if p.Kind != "" || p.Slots != nil || p.Missing == nil {
				t.Errorf("%+v", p)
			}
		},
	},
		{name: "not JSON", args: `{"intent":`, field: "arguments", msg: "not valid JSON"},
		{name: "unknown intent", args: `{"intent":"book_flight"}`, field: "intent", msg: "must be one of"},
		{name: "no intent", args: `{}`, field: "intent", msg: "is required"},
		{name: "relative date", args: `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"tomorrow 8am"}}`, field: "schedule.at", msg: `RFC 3339 date-time such as 2026-11-23T08:00:00+08:00, not "tomorrow 8am"`},
		{name: "two schedules", args: `{"intent":"create_task","kind":"periodic","domain":"news","schedule":{"cron":"0 8 * * *","every":"1h"}}`, field: "schedule", msg: `must have exactly one of "cron", "at" and "every"`},
		{name: "bad cron", args: `{"intent":"create_task","kind":"periodic","domain":"news","schedule":{"cron":"daily"}}`, field: "schedule.cron", msg: "five cron fields"},
		{name: "zero interval", args: `{"intent":"create_task","kind":"monitor","domain":"web","schedule":{"every":"0m"},"slots":{"url":"https://example.com"}}`, field: "schedule.every", msg: "positive duration"},
		{name: "no domain", args: `{"intent":"create_task","kind":"periodic"}`, field: "domain", msg: "required when intent is create_task"},
		{name: "unknown slot", args: `{"intent":"create_task","kind":"periodic","domain":"weather","slots":{"city":"Paris","time":"8am"}}`, field: "slots.time", msg: "not a known property"},
		{name: "every problem is listed", args: `{"intent":"create_task","kind":"weekly","slots":{"percent":"5"}}`, field: "kind", msg: "slots.percent: must be number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePlanArgs(json.RawMessage(c.args))
			if c.field != "" {
				var e *vigil.Error
				if !errors.As(err, &e) || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
					t.Fatalf("ParsePlanArgs = %v, want an error on %s: …%s…", err, c.field, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePlanArgs: %v", err)
			}
			c.check(t, p)
		})
	}
}
