package agent_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/tasks"
)

// specOf plans text offline at the assistant tests' moment and maps it.
func specOf(t *testing.T, text, tz string) tasks.Spec {
	t.Helper()
	loc := asstLoc(tz)
	p := agent.PlanOffline(agent.Request{Text: text, TZ: loc, Now: asstClock})
	s, err := agent.TaskSpec(p, loc, text)
	if err != nil {
		t.Fatalf("TaskSpec(%q): %v (plan %+v)", text, err, p)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("TaskSpec(%q) does not validate: %v\n%+v", text, err, s)
	}
	return s
}

func TestTaskSpecTitles(t *testing.T) {
	for _, c := range []struct{ text, tz, title string }{
		{"每天早上8点推送北京天气", "Asia/Shanghai", "每天 08:00 北京天气"},
		{"weather in Seattle every weekday at 7:30", "America/Los_Angeles", "Weather in Seattle, weekdays 07:30"},
		{"remind me to call mom tomorrow at 6pm", "Asia/Shanghai", "Reminder: call mom (Mon 23 Nov 18:00)"},
		{"明天下午3点提醒我开会", "Asia/Shanghai", "提醒：开会（11月23日 15:00）"},
		{"Tell me when BTC drops below 60000", "America/New_York", "BTC below 60000"},
		{"比特币跌破5万美元时提醒我", "Asia/Shanghai", "比特币跌破50000提醒"},
		{"油价下跌5%提醒我", "Asia/Shanghai", "油价下跌5%提醒"},
		{"every 15 minutes check https://example.com/health and alert me if it's down", "America/New_York", "Watch https://example.com/health (every 15 minutes)"},
	} {
		if s := specOf(t, c.text, c.tz); s.Title != c.title {
			t.Errorf("%q: title %q, want %q", c.text, s.Title, c.title)
		}
	}
}

func TestTaskSpecTriggersAndSteps(t *testing.T) {
	s := specOf(t, "每天早上8点推送北京天气", "Asia/Shanghai")
	if s.Kind != tasks.KindPeriodic || s.Trigger != (tasks.Trigger{Cron: "0 8 * * *", TZ: "Asia/Shanghai"}) || s.Slots["city"] != "北京" ||
		len(s.Steps) != 1 || s.Steps[0].Tool != agent.ToolWeather || s.Steps[0].Args["city"] != "{{city}}" ||
		s.Monitor != nil || !strings.Contains(s.Instruction, "北京的天气预报") || !strings.Contains(s.Instruction, "每天早上8点推送北京天气") {
		t.Errorf("weather: %+v", s)
	}
	s = specOf(t, "Tell me when BTC drops below 60000", "America/New_York")
	if s.Kind != tasks.KindMonitor || time.Duration(s.Trigger.Every) != agent.DefaultPollInterval || s.Monitor == nil ||
		s.Monitor.Source.Tool != agent.ToolPrice || s.Monitor.Source.Args["symbol"] != "{{symbol}}" {
		t.Errorf("price monitor: %+v %+v", s, s.Monitor)
	}
	s = specOf(t, "every 15 minutes check https://example.com/health and alert me if it's down", "America/New_York")
	if time.Duration(s.Trigger.Every) != 15*time.Minute || s.Monitor.Source.Tool != agent.ToolHTTPGet || s.Monitor.Source.Args["url"] != "{{url}}" {
		t.Errorf("web monitor: %+v %+v", s, s.Monitor)
	}
	s = specOf(t, "明天下午3点提醒我开会", "Asia/Shanghai")
	if s.Kind != tasks.KindOneShot || !s.Trigger.At.Equal(time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)) || s.Trigger.TZ != "Asia/Shanghai" {
		t.Errorf("reminder: %+v", s.Trigger)
	}

	// An incomplete plan makes no task.
	p := agent.PlanOffline(agent.Request{Text: "每天推送天气", TZ: asstLoc("Asia/Shanghai"), Now: asstClock})
	if _, err := agent.TaskSpec(p, nil, ""); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("incomplete plan: %v", err)
	}
}

// Monitor conditions hold when they should, over value and prev.
func TestTaskSpecConditions(t *testing.T) {
	page := func(status int) map[string]any { return map[string]any{"status": status, "body": ""} }
	// quote is the price tool's result.
	quote := func(price float64) map[string]any {
		return map[string]any{"price": price, "currency": "USD", "change": 0.0}
	}
	for _, c := range []struct {
		text        string
		value, prev any
		holds       bool
	}{
		{"Tell me when BTC drops below 60000", quote(59000.0), quote(61000.0), true},
		{"Tell me when BTC drops below 60000", quote(59000.0), nil, true},
		{"Tell me when BTC drops below 60000", quote(58000.0), quote(59000.0), false}, // already told
		{"Tell me when BTC drops below 60000", quote(61000.0), quote(62000.0), false},
		{"when AAPL goes above 250 let me know", quote(251.0), quote(249.0), true},
		{"when AAPL goes above 250 let me know", quote(249.0), quote(248.0), false},
		{"油价下跌5%提醒我", quote(94.0), quote(100.0), true},
		{"油价下跌5%提醒我", quote(96.0), quote(100.0), false},
		{"油价下跌5%提醒我", quote(94.0), nil, false},
		{"黄金价格上涨超过3%时通知我", quote(104.0), quote(100.0), true},
		{"黄金价格上涨超过3%时通知我", quote(102.0), quote(100.0), false},
		{"every 15 minutes check https://example.com/health and alert me if it's down", page(503), nil, true},
		{"every 15 minutes check https://example.com/health and alert me if it's down", page(200), nil, false},
		{"every 15 minutes check https://example.com/health and alert me if it's down", page(503), page(503), false},
		{"every 15 minutes check https://example.com/health and alert me if it's down", page(200), page(500), true},
	} {
		s := specOf(t, c.text, "America/New_York")
		got, err := s.Monitor.Holds(c.value, c.prev)
		if err != nil || got != c.holds {
			t.Errorf("%q: %s on value %v, prev %v: %v, %v; want %v", c.text, s.Monitor.Condition, c.value, c.prev, got, err, c.holds)
		}
	}
}

// Every complete create plan of the request sets maps to a spec that
// validates.
func TestTaskSpecRequestSets(t *testing.T) {
	n := 0
	for _, path := range []string{"testdata/requests.dev.jsonl", "testdata/requests.more.jsonl"} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r struct{ Text, TZ, Now string }
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Text == "" {
				continue
			}
			loc := asstLoc(r.TZ)
			now, _ := time.Parse(time.RFC3339, r.Now)
			p := agent.PlanOffline(agent.Request{Text: r.Text, TZ: loc, Now: now})
			if p.Intent != agent.IntentCreate || len(p.Missing) > 0 {
				continue
			}
			n++
			s, err := agent.TaskSpec(p, loc, r.Text)
			if err == nil {
				err = s.Validate()
			}
			if err != nil || s.Title == "" || strings.Contains(s.Title, "  ") {
				t.Errorf("%q: %v\n%+v", r.Text, err, s)
			}
		}
		f.Close()
	}
	if n < 50 {
		t.Errorf("only %d complete create plans", n)
	}
}
