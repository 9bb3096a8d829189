package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// This file is what the offline task agent knows of the built-in domain
// tools (toolsregistry's weather, price and news): the step a task of the
// domain implies when it declares none, and the values of a tool's result
// that the domain's notification template shows.

// toolTemplates are the notifications of runs made without an LLM whose
// last step returned the result of the domain's built-in tool; the values
// come from toolVars.
var toolTemplates = map[string][2]string{
	DomainWeather: {"Weather in {{city}} ({{day}}): {{weather}}.", "{{city}}天气（{{day}}）：{{weather}}。"},
	DomainPrice: {"{{symbol}}: {{price}} {{currency}}, {{change}} ({{change_percent}}) since the previous close ({{now}}).",
		"{{symbol}}：{{price}} {{currency}}，较前收盘{{change}}（{{change_percent}}）（{{now}}）。"},
	DomainNews: {"News about {{topic}} ({{today}}):\n{{headlines}}", "关于{{topic}}的新闻（{{today}}）：\n{{headlines}}"},
}

// impliedSteps returns the step a task of s's domain makes without an LLM
// when it declares none: the domain's built-in tool with the task's slot
// (weather for {{city}}, price for {{symbol}}, news for {{topic}}), if the
// task may call it. Other tasks imply none.
func impliedSteps(s tasks.Spec) []tasks.Step {
	if len(s.Steps) > 0 || s.Monitor != nil || s.Kind == tasks.KindLongRunning {
		return nil
	}
	var tool, slot string
	switch taskDomain(tasks.Task{Spec: s}) {
	case DomainWeather:
		tool, slot = ToolWeather, SlotCity
	case DomainPrice:
		tool, slot = ToolPrice, SlotSymbol
	case DomainNews:
		tool, slot = ToolNews, SlotTopic
	default:
		return nil
	}
	if _, ok := s.Slots[slot]; !ok {
		return nil
	}
	if len(s.Tools) > 0 && !slices.ContainsFunc(s.Tools, func(t string) bool {
		name, _, _ := strings.Cut(t, "@")
		return name == tool
	}) {
		return nil
	}
	return []tasks.Step{{Tool: tool, Args: map[string]any{slot: "{{" + slot + "}}"}}}
}

// lastOutput is the last step's output in a step executor's result
// ({"outputs":[…]}), or the value of a monitor's ({"value":…}).
func lastOutput(result json.RawMessage) json.RawMessage {
	var r struct {
		Outputs []json.RawMessage `json:"outputs"`
		Value   json.RawMessage   `json:"value"`
	}
	if json.Unmarshal(result, &r) != nil {
		return nil
	}
	if len(r.Outputs) > 0 {
		return r.Outputs[len(r.Outputs)-1]
	}
	return r.Value
}

// toolVars reads raw as the result of domain's built-in tool and returns
// the template values it gives, in the language zh says: ok is false when
// raw does not have the tool's shape (another tool of the same name, or
// an error), and then the generic template shows raw as it is.
//
//   - weather: weather (conditions, temperature now, low to high, chance
//     of precipitation), conditions, temperature, high, low, day, and city
//     when the task has none;
//   - price: price, currency, change and change_percent with their signs,
//     and value (price, currency and change) for monitors;
//   - news: headlines (one line each), and topic when the task has none.
func toolVars(domain string, raw json.RawMessage, zh bool) (map[string]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	switch domain {
	case DomainWeather:
		var w toolsregistry.WeatherResult
		if json.Unmarshal(raw, &w) != nil || w.Conditions == "" || w.Date == "" || w.Unit == "" {
			return nil, false
		}
		deg := func(f float64) string { return formatNumber(f) + w.Unit }
		parts := []string{w.Conditions}
		if w.Current != nil {
			parts = append(parts, pick(zh, deg(w.Current.Temperature)+" now", "当前"+deg(w.Current.Temperature)))
		}
		parts = append(parts, pick(zh, deg(w.TemperatureMin)+" to "+deg(w.TemperatureMax), deg(w.TemperatureMin)+"～"+deg(w.TemperatureMax)))
		if p := w.PrecipitationProbability; p != nil {
			parts = append(parts, pick(zh, formatNumber(*p)+"% chance of precipitation", "降水概率"+formatNumber(*p)+"%"))
		}
		return map[string]string{
			"weather": strings.Join(parts, pick(zh, ", ", "，")), "conditions": w.Conditions,
			"temperature": deg(w.Temperature), "high": deg(w.TemperatureMax), "low": deg(w.TemperatureMin),
			"day": w.Date, "place": w.City,
		}, true
	case DomainPrice:
		var p toolsregistry.PriceResult
		if json.Unmarshal(raw, &p) != nil || p.Currency == "" || p.Quote == "" {
			return nil, false
		}
		change := signed(p.Change)
		pct := signed(p.ChangePercent) + "%"
		return map[string]string{
			"price": formatNumber(p.Price), "currency": p.Currency, "change": change, "change_percent": pct,
			"value": fmt.Sprintf("%s %s (%s, %s)", formatNumber(p.Price), p.Currency, change, pct),
		}, true
	case DomainNews:
		var n toolsregistry.NewsResult
		if json.Unmarshal(raw, &n) != nil || n.Headlines == nil || n.Source == "" {
			return nil, false
		}
		var lines []string
		for _, h := range n.Headlines {
			line := "- " + h.Title
			if h.Source != "" {
				line += pick(zh, " ("+h.Source+")", "（"+h.Source+"）")
			}
			lines = append(lines, line)
		}
		if len(lines) == 0 {
			lines = []string{pick(zh, "No headlines right now.", "暂无新闻。")}
		}
		topic := n.Topic
		if topic == "" {
			topic = pick(zh, "today's top stories", "今日头条")
		}
		return map[string]string{"headlines": strings.Join(lines, "\n"), "news_topic": topic}, true
	}
	return nil, false
}

// signed is a number with its sign: +1.5, -0.25, 0.
func signed(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if f > 0 {
		return "+" + s
	}
	return s
}

// addToolVars adds the values toolVars gives for raw to vars, without
// replacing the task's own (its city and topic as the user wrote them),
// and reports whether raw had the tool's shape.
func addToolVars(vars map[string]string, domain string, raw json.RawMessage, zh bool) bool {
	tv, ok := toolVars(domain, raw, zh)
	if !ok {
		return false
	}
	for k, v := range tv {
		vars[k] = v
	}
	if _, ok := vars["city"]; !ok && tv["place"] != "" {
		vars["city"] = tv["place"]
	}
	if _, ok := vars["topic"]; !ok && tv["news_topic"] != "" {
		vars["topic"] = tv["news_topic"]
	}
	return true
}
