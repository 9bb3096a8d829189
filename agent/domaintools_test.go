package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
	"github.com/vigilhq/vigil/toolsregistry/webapitest"
)

// withBuiltins makes execute's agent call the real built-in tools, their
// weather, price and news pointed at api (its loopback allowed).
func withBuiltins(t *testing.T, api *webapitest.Server) func(*agent.TaskAgentOptions) {
	t.Helper()
	defs, err := toolsregistry.Builtins(toolsregistry.BuiltinOptions{
		Guard:        toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}},
		GeocodingURL: api.URL, WeatherURL: api.URL, PriceURL: api.URL, NewsURL: api.URL + "/rss",
		APITimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := toolsregistry.New(toolsregistry.Options{Now: func() time.Time { return taNow }})
	if err := reg.RegisterAll(defs); err != nil {
		t.Fatal(err)
	}
	return func(o *agent.TaskAgentOptions) { o.Registry = reg }
}

// Tasks the planner makes, run offline with the real built-in tools over
// HTTP: each notification tells what the tool answered, in the task's
// language, through the domain's template.
func TestOfflineDomainTasks(t *testing.T) {
	api := webapitest.New(t)
	for _, c := range []struct {
		name, text, tz string
		want           string
		path           string // the API path the run must have called
	}{
		{"weather zh", "每天早上8点推送北京天气", "Asia/Shanghai",
			"北京天气（2026-11-22）：晴，当前5.6°C，-2.1°C～9.8°C，降水概率0%。", "/v1/forecast"},
		{"weather en", "send me the weather in Berlin every morning at 7", "Europe/Berlin",
			"Weather in Berlin (2026-11-22): Light rain, 6.3°C now, 2.4°C to 8.1°C, 70% chance of precipitation.", "/v1/forecast"},
		{"price", "send me the gold price every day at 9am", "America/New_York",
			"gold: 2650.4 USD, +19.2 (+0.73%) since the previous close (2026-11-22 05:00).", "/v8/finance/chart/GC=F"},
		{"news", "send me AI news every morning at 8", "America/New_York",
			"News about AI (2026-11-22):\n- Open model tops benchmark (The Verge)\n- Chip makers race for AI demand (Reuters)\n- Regulators weigh AI rules & fines (BBC)",
			"/rss/search"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := specOf(t, c.text, c.tz)
			before := api.Calls(c.path)
			out, err, rep, _ := execute(t, agent.Offline{}, spec, withBuiltins(t, api))
			if err != nil || out.Summary != c.want {
				t.Fatalf("%q: %q, %v\nwant %q", c.text, out.Summary, err, c.want)
			}
			if api.Calls(c.path) != before+1 {
				t.Errorf("%s called %d times; want once", c.path, api.Calls(c.path)-before)
			}
			if strings.Contains(out.Summary, "{{") || !hasEvent(rep, streams.TypeToolResult) {
				t.Errorf("summary %q, events %d", out.Summary, len(rep.events))
			}
		})
	}
}

// A price monitor made by the planner reads the price tool, judges its
// condition on the price field, and tells the price and its change.
func TestOfflinePriceMonitor(t *testing.T) {
	api := webapitest.New(t)
	spec := specOf(t, "Tell me when gold drops below 3000", "America/New_York")
	out, err, _, _ := execute(t, agent.Offline{}, spec, withBuiltins(t, api))
	want := spec.Title + ": gold is now 2650.4 USD (+19.2, +0.73%)."
	if err != nil || out.Quiet || out.Summary != want {
		t.Fatalf("gold below 3000: %+v, %v\nwant %q", out, err, want)
	}

	// Above the threshold the monitor stays quiet.
	spec = specOf(t, "Tell me when gold drops below 2000", "America/New_York")
	if out, err, _, _ := execute(t, agent.Offline{}, spec, withBuiltins(t, api)); err != nil || !out.Quiet {
		t.Errorf("gold below 2000: %+v, %v; want quiet", out, err)
	}
}

// A task without steps whose instruction refers to slots: offline, its
// notification shows the instruction with the slots filled in, and a
// reference to a slot that is not set as the name in brackets, never a
// raw {{...}}.
func TestOfflineInstructionFilled(t *testing.T) {
	for _, c := range []struct {
		spec tasks.Spec
		want string
	}{
		{tasks.Spec{Title: "Stretch", Kind: tasks.KindLongRunning, Instruction: "Stretch for {{ .minutes }} minutes, {{.name}}!",
			Slots: map[string]any{"name": "Ann", "minutes": 5.0}},
			"Stretch: Stretch for 5 minutes, Ann!\n(No language model is available"},
		{tasks.Spec{Title: "Air", Kind: tasks.KindLongRunning, Instruction: "Check the air quality in {{.city}} on {{today}} for {{.who}}.",
			Slots: map[string]any{"city": "Paris"}},
			"Air: Check the air quality in Paris on 2026-11-22 for [who]."},
		{tasks.Spec{Title: "Call", Kind: tasks.KindLongRunning, Instruction: "Call {{.who}}.", Slots: map[string]any{"message": "call {{.who}}"}},
			"Reminder: call [who]"},
	} {
		out, err, _, _ := execute(t, agent.Offline{}, c.spec, nil)
		if err != nil || !strings.HasPrefix(out.Summary, c.want) || strings.Contains(out.Summary, "{{") {
			t.Errorf("%q: %q, %v; want it to start %q", c.spec.Instruction, out.Summary, err, c.want)
		}
	}
}

func hasEvent(rep *taReporter, typ string) bool {
	for _, e := range rep.events {
		if e.Type == typ {
			return true
		}
	}
	return false
}
