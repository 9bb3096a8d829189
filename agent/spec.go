package agent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

// This file turns a complete create_task Plan into the tasks.Spec of a
// draft: a readable title, an instruction for the task agent, the trigger,
// the slots, the declared steps and, for a monitor, what it watches.

// The tools the tasks the assistant makes call by name.
const (
	// ToolHTTPGet is the built-in tool (toolsregistry) that a web task's
	// step and a web monitor's source call with the task's {{url}}.
	ToolHTTPGet = "http_get"

	// ToolPrice, ToolWeather and ToolNews are the built-in tools
	// (toolsregistry) that a task of the price, weather or news domain
	// calls with its {{symbol}}, {{city}} or {{topic}}, as its step or as
	// its monitor's source. A price monitor's condition reads the price
	// tool's result's price field (value.price).
	ToolPrice   = "price"
	ToolWeather = "weather"
	ToolNews    = "news"
)

// DefaultPollInterval is how often a monitor polls when the request named
// no interval.
const DefaultPollInterval = 15 * time.Minute

// TaskSpec turns a complete create_task plan into the Spec of the draft
// task the assistant proposes. loc is the user's zone (the trigger's TZ and
// the zone of the title's times; nil means UTC) and words are the user's
// own words, kept in the instruction for the task agent.
//
// The mapping:
//
//   - title: the schedule and the subject in the plan's language, such as
//     "每天 08:00 北京天气" or "Weather in Seattle, weekdays 07:30";
//   - trigger: a cron schedule in loc, a one-shot instant, or an interval; a
//     monitor with no schedule polls every DefaultPollInterval, a
//     long-running task without one runs when confirmed;
//   - steps: a web task fetches {{url}} with http_get, a weather task
//     asks weather for {{city}}, a price task price for {{symbol}}, a
//     news task news for {{topic}}; reminders and reports carry the
//     instruction only;
//   - monitor: a source call (http_get, or the domain's tool) and a
//     condition over value and prev: a price crossing its threshold in the
//     slot's direction, moving by its percent since the previous check, a
//     site going down or coming back; news and weather monitors are judged
//     on the user's words instead.
//
// The result is not validated here: tasks.Manager.Create validates it.
// An incomplete plan (another intent, or slots missing) is a vigil.Invalid
// error.
func TaskSpec(p Plan, loc *time.Location, words string) (tasks.Spec, error) {
	if p.Intent != IntentCreate {
		return tasks.Spec{}, vigil.FieldError("intent", "is %q: only a create_task plan makes a task", p.Intent)
	}
	if len(p.Missing) > 0 {
		return tasks.Spec{}, vigil.FieldError("missing", "the plan still lacks %s", strings.Join(p.Missing, ", "))
	}
	if loc == nil {
		loc = time.UTC
	}
	p = normalizeKind(p)
	trig, err := planTrigger(p, loc)
	if err != nil {
		return tasks.Spec{}, err
	}
	s := tasks.Spec{
		Title:       Title(p, loc),
		Kind:        tasks.Kind(p.Kind),
		Trigger:     trig,
		Instruction: instruction(p, words),
		Slots:       cloneSlots(p.Slots),
	}
	switch {
	case p.Kind == KindMonitor:
		s.Monitor = monitor(p, words)
	case p.Domain == DomainWeb:
		s.Steps = []tasks.Step{{Tool: ToolHTTPGet, Args: map[string]any{SlotURL: "{{url}}"}}}
	default:
		s.Steps = impliedSteps(s)
	}
	return s, nil
}

// normalizeKind fixes a kind that contradicts the schedule an LLM gave: a
// periodic task at one instant is one-shot, a one-shot task on cron is
// periodic.
func normalizeKind(p Plan) Plan {
	if s := p.Schedule; s != nil {
		switch {
		case p.Kind == KindPeriodic && s.At != nil:
			p.Kind = KindOneShot
		case p.Kind == KindOneShot && (s.Cron != "" || s.Every != ""):
			p.Kind = KindPeriodic
		}
	}
	return p
}

func cloneSlots(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// zoneName is the IANA name of loc for a trigger.
func zoneName(loc *time.Location) string {
	if loc == nil || loc.String() == "Local" {
		return ""
	}
	return loc.String()
}

func planTrigger(p Plan, loc *time.Location) (tasks.Trigger, error) {
	s := p.Schedule
	switch {
	case s == nil && p.Kind == KindMonitor:
		return tasks.Trigger{Every: tasks.Duration(DefaultPollInterval)}, nil
	case s == nil:
		return tasks.Trigger{}, nil
	case s.Cron != "":
		return tasks.Trigger{Cron: s.Cron, TZ: zoneName(loc)}, nil
	case s.At != nil:
		return tasks.Trigger{At: *s.At, TZ: zoneName(loc)}, nil
	case s.Every != "":
		d, err := time.ParseDuration(s.Every)
		if err != nil || d <= 0 {
			return tasks.Trigger{}, vigil.FieldError("schedule.every", "must be a positive duration such as 15m, not %q", s.Every)
		}
		return tasks.Trigger{Every: tasks.Duration(d)}, nil
	}
	return tasks.Trigger{}, nil
}

// monitor is what a monitor plan watches. Weather and news monitors are
// judged on the user's own words ("let me know if it rains tomorrow").
func monitor(p Plan, words string) *tasks.Monitor {
	judge := strings.TrimSpace(words)
	if judge == "" {
		judge = instruction(p, "")
	}
	switch p.Domain {
	case DomainWeb:
		// Tell the user when the site goes down, and when it comes back.
		return &tasks.Monitor{
			Source:    tasks.Step{Tool: ToolHTTPGet, Args: map[string]any{SlotURL: "{{url}}"}},
			Condition: "prev == nil ? value.status >= 400 : (value.status >= 400) != (prev.status >= 400)",
		}
	case DomainPrice:
		return &tasks.Monitor{
			Source:    tasks.Step{Tool: ToolPrice, Args: map[string]any{SlotSymbol: "{{symbol}}"}},
			Condition: priceCondition(p.Slots),
		}
	case DomainWeather:
		return &tasks.Monitor{
			Source: tasks.Step{Tool: ToolWeather, Args: map[string]any{SlotCity: "{{city}}"}},
			Judge:  judge,
		}
	}
	topic := map[string]any{}
	if _, ok := p.Slots[SlotTopic]; ok {
		topic[SlotTopic] = "{{topic}}"
	}
	return &tasks.Monitor{Source: tasks.Step{Tool: ToolNews, Args: topic}, Judge: judge}
}

// priceCondition is the condition of a price monitor over value (the price
// tool's result now, whose price field is the price) and prev (at the
// previous check): a threshold fires when the price
// crosses it in the slot's direction (or either way without one), a
// percent when the price moved by that much since the previous check.
func priceCondition(slots map[string]any) string {
	dir, _ := slots[SlotDirection].(string)
	if pct, ok := number(slots[SlotPercent]); ok {
		p := formatNumber(pct)
		switch dir {
		case "down":
			return fmt.Sprintf("prev != nil && value.price <= prev.price * (1 - %s/100)", p)
		case "up":
			return fmt.Sprintf("prev != nil && value.price >= prev.price * (1 + %s/100)", p)
		}
		return fmt.Sprintf("prev != nil && abs(value.price - prev.price) >= prev.price * %s/100", p)
	}
	th, _ := number(slots[SlotThreshold])
	t := formatNumber(th)
	switch dir {
	case "down":
		return fmt.Sprintf("value.price < %s && (prev == nil || prev.price >= %s)", t, t)
	case "up":
		return fmt.Sprintf("value.price > %s && (prev == nil || prev.price <= %s)", t, t)
	}
	return fmt.Sprintf("prev != nil && (prev.price < %s) != (value.price < %s)", t, t)
}

// number reads a slot that holds a number, as JSON or an LLM gives it.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f, err == nil
	}
	return 0, false
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func slot(p Plan, name string) string {
	switch v := p.Slots[name].(type) {
	case string:
		return v
	case nil:
		return ""
	case float64:
		return formatNumber(v)
	default:
		return fmt.Sprint(v)
	}
}

// instruction is the sentence the task agent runs, with the user's words.
func instruction(p Plan, words string) string {
	zh := p.Language == "zh"
	city, topic, msg, url, sym := slot(p, SlotCity), slot(p, SlotTopic), slot(p, SlotMessage), slot(p, SlotURL), slot(p, SlotSymbol)
	var s string
	switch p.Domain {
	case DomainWeather:
		if p.Kind == KindMonitor {
			s = pick(zh, fmt.Sprintf("Watch the weather in %s and tell the user when what they asked about happens.", city),
				fmt.Sprintf("关注%s的天气，出现用户关心的情况时通知用户。", city))
		} else {
			s = pick(zh, fmt.Sprintf("Send the user the weather forecast for %s.", city), fmt.Sprintf("给用户推送%s的天气预报。", city))
		}
	case DomainReminder:
		s = pick(zh, fmt.Sprintf("Remind the user: %s.", msg), fmt.Sprintf("提醒用户：%s。", msg))
	case DomainPrice:
		if p.Kind == KindMonitor {
			s = pick(zh, fmt.Sprintf("Watch the price of %s and notify the user when it %s.", sym, conditionWords(p, false)),
				fmt.Sprintf("关注%s的价格，%s时通知用户。", symbolName(sym, true), conditionWords(p, true)))
		} else {
			s = pick(zh, fmt.Sprintf("Report the price of %s to the user.", sym), fmt.Sprintf("向用户报告%s的价格。", symbolName(sym, true)))
		}
	case DomainNews:
		if p.Kind == KindMonitor {
			s = pick(zh, fmt.Sprintf("Watch for news about %s and tell the user when there is some.", topic),
				fmt.Sprintf("关注关于%s的新闻，有新消息时通知用户。", topic))
		} else {
			s = pick(zh, fmt.Sprintf("Send the user the latest news about %s.", topic), fmt.Sprintf("给用户推送关于%s的最新新闻。", topic))
		}
	case DomainWeb:
		if p.Kind == KindMonitor {
			s = pick(zh, fmt.Sprintf("Check %s and tell the user when it goes down or comes back.", url),
				fmt.Sprintf("检查 %s，网站出现故障或恢复时通知用户。", url))
		} else {
			s = pick(zh, fmt.Sprintf("Fetch %s and tell the user what it shows.", url), fmt.Sprintf("访问 %s，把结果告诉用户。", url))
		}
	case DomainReport:
		subject := strings.TrimSpace(strings.Join(nonEmpty(topic, city), " "))
		s = pick(zh, fmt.Sprintf("Research and write a report for the user on %s.", subject), fmt.Sprintf("调研并为用户撰写关于%s的报告。", subject))
	default:
		s = pick(zh, "Do what the user asked.", "完成用户的请求。")
	}
	if words = strings.TrimSpace(words); words != "" {
		s += pick(zh, " The user's words: “"+words+"”", "用户原话：“"+words+"”")
	}
	return s
}

func nonEmpty(ss ...string) []string {
	return slices.DeleteFunc(ss, func(s string) bool { return s == "" })
}

// conditionWords says a price monitor's condition in words: "drops below
// 60000", "跌破60000".
func conditionWords(p Plan, zh bool) string {
	dir := slot(p, SlotDirection)
	if pct := slot(p, SlotPercent); pct != "" {
		switch dir {
		case "down":
			return pick(zh, "falls "+pct+"%", "下跌"+pct+"%")
		case "up":
			return pick(zh, "rises "+pct+"%", "上涨"+pct+"%")
		}
		return pick(zh, "moves "+pct+"%", "变动"+pct+"%")
	}
	th := slot(p, SlotThreshold)
	switch dir {
	case "down":
		return pick(zh, "drops below "+th, "跌破"+th)
	case "up":
		return pick(zh, "rises above "+th, "突破"+th)
	}
	return pick(zh, "crosses "+th, "触及"+th)
}

// priceTitle is a price monitor's condition as an English title says it:
// "below 60000", "up 5%".
func priceTitle(p Plan) string {
	dir := slot(p, SlotDirection)
	if pct := slot(p, SlotPercent); pct != "" {
		switch dir {
		case "down":
			return "down " + pct + "%"
		case "up":
			return "up " + pct + "%"
		}
		return "moves " + pct + "%"
	}
	th := slot(p, SlotThreshold)
	switch dir {
	case "down":
		return "below " + th
	case "up":
		return "above " + th
	}
	return "crosses " + th
}

// symbolName is how a title names a canonical symbol: in Chinese its
// shortest Chinese name (油价, 比特币), else the symbol.
func symbolName(canon string, zh bool) string {
	if !zh {
		return canon
	}
	best := ""
	for _, s := range symbolTable {
		if s.canon != canon {
			continue
		}
		for _, name := range s.zh {
			if best == "" || utf8.RuneCountInString(name) < utf8.RuneCountInString(best) {
				best = name
			}
		}
	}
	if best == "" {
		return canon
	}
	return best
}

// Title returns a short, readable name for the task a create_task plan
// describes, in the plan's language, with its times in loc (nil means
// UTC): "每天 08:00 北京天气", "Weather in Seattle, weekdays 07:30",
// "提醒：给妈妈打电话（11月23日 18:00）", "BTC below 60000".
func Title(p Plan, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	zh := p.Language == "zh"
	when := describeSchedule(p.Schedule, loc, zh)
	city, topic, msg, url, sym := slot(p, SlotCity), slot(p, SlotTopic), slot(p, SlotMessage), slot(p, SlotURL), slot(p, SlotSymbol)
	join := func(a, b string) string { // "每天 08:00 北京天气"
		if a == "" {
			return b
		}
		return a + " " + b
	}
	after := func(a, b string) string { // "Weather in Seattle, daily 08:00"
		if b == "" {
			return a
		}
		return a + ", " + b
	}
	paren := func(a, b string) string {
		if b == "" {
			return a
		}
		return a + pick(zh, " ("+b+")", "（"+b+"）")
	}
	var t string
	switch p.Domain {
	case DomainWeather:
		if p.Kind == KindMonitor {
			t = pick(zh, "Weather alert for "+city, city+"天气提醒")
		} else {
			t = pick(zh, after("Weather in "+city, when), join(when, city+"天气"))
		}
	case DomainReminder:
		t = paren(pick(zh, "Reminder: "+msg, "提醒："+msg), when)
	case DomainPrice:
		if p.Kind == KindMonitor {
			t = pick(zh, sym+" "+priceTitle(p), symbolName(sym, true)+conditionWords(p, true)+"提醒")
		} else {
			t = pick(zh, after(sym+" price", when), join(when, symbolName(sym, true)+"价格"))
		}
	case DomainNews:
		news := topic + " news"
		if strings.HasSuffix(strings.ToLower(topic), "news") {
			news = topic
		}
		if p.Kind == KindMonitor {
			t = pick(zh, "News alert: "+topic, topic+"新闻提醒")
		} else {
			t = pick(zh, after(news, when), join(when, topic+"新闻"))
		}
	case DomainWeb:
		if p.Kind == KindMonitor {
			t = paren(pick(zh, "Watch "+url, "监控 "+url), when)
		} else {
			t = pick(zh, after("Check "+url, when), join(when, "检查 "+url))
		}
	case DomainReport:
		// A report names a city only when it is about travel (the planner
		// takes a city for a travel guide); the topic stays in the slots.
		if city != "" {
			t = paren(pick(zh, "Guide to "+city, city+"攻略"), when)
		} else {
			t = paren(pick(zh, "Report: "+topic, "报告："+topic), when)
		}
	default:
		t = pick(zh, "Task", "任务")
	}
	if !zh {
		r, n := utf8.DecodeRuneInString(t)
		t = strings.ToUpper(string(r)) + t[n:]
	}
	if r := []rune(t); len(r) > tasks.MaxTitle {
		t = string(r[:tasks.MaxTitle-1]) + "…"
	}
	return t
}

var (
	cronWeekdaysEN = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	cronWeekdaysZH = []string{"日", "一", "二", "三", "四", "五", "六"}
)

// describeSchedule says when a schedule fires, in loc and the user's
// language: "每天 08:00", "weekdays 07:30", "11月23日 18:00",
// "every 15 minutes". The empty string means no schedule.
func describeSchedule(s *Schedule, loc *time.Location, zh bool) string {
	switch {
	case s == nil:
		return ""
	case s.At != nil:
		t := s.At.In(loc)
		return pick(zh, t.Format("Mon 2 Jan 15:04"), fmt.Sprintf("%d月%d日 %s", t.Month(), t.Day(), t.Format("15:04")))
	case s.Every != "":
		d, err := time.ParseDuration(s.Every)
		if err != nil {
			return s.Every
		}
		return describeEvery(d, zh)
	case s.Cron != "":
		return describeCron(s.Cron, zh)
	}
	return ""
}

// cronEvery reads the minute and hour fields of a cron expression that
// fires at a steady interval: "0 */2" is every 2 hours, "*/15 *" every 15
// minutes.
func cronEvery(minute, hour string) (time.Duration, bool) {
	step := func(field string) (int, bool) {
		if field == "*" {
			return 1, true
		}
		n, err := strconv.Atoi(strings.TrimPrefix(field, "*/"))
		return n, err == nil && n > 0 && strings.HasPrefix(field, "*/")
	}
	if n, ok := step(minute); ok && hour == "*" {
		return time.Duration(n) * time.Minute, true
	}
	if _, err := strconv.Atoi(minute); err == nil && minute == "0" {
		if n, ok := step(hour); ok {
			return time.Duration(n) * time.Hour, true
		}
	}
	return 0, false
}

func describeEvery(d time.Duration, zh bool) string {
	switch {
	case d == time.Hour:
		return pick(zh, "every hour", "每小时")
	case d == time.Minute:
		return pick(zh, "every minute", "每分钟")
	case d%time.Hour == 0:
		n := int(d / time.Hour)
		return pick(zh, fmt.Sprintf("every %d hours", n), fmt.Sprintf("每 %d 小时", n))
	case d%time.Minute == 0:
		n := int(d / time.Minute)
		return pick(zh, fmt.Sprintf("every %d minutes", n), fmt.Sprintf("每 %d 分钟", n))
	}
	return pick(zh, "every "+d.String(), "每 "+d.String())
}

// describeCron says the cron shapes the planner makes in words and falls
// back to the expression for the others.
func describeCron(expr string, zh bool) string {
	f := strings.Fields(expr)
	fallback := pick(zh, "cron "+expr, "按计划 "+expr)
	if len(f) != 5 || f[3] != "*" {
		return fallback
	}
	if f[2] == "*" && f[4] == "*" {
		if every, ok := cronEvery(f[0], f[1]); ok {
			return describeEvery(every, zh)
		}
	}
	m, errM := strconv.Atoi(f[0])
	h, errH := strconv.Atoi(f[1])
	if errM != nil || errH != nil {
		return fallback
	}
	clock := fmt.Sprintf("%02d:%02d", h, m)
	dom, dow := f[2], f[4]
	switch {
	case dom == "*" && dow == "*":
		return pick(zh, "daily "+clock, "每天 "+clock)
	case dom == "*" && dow == "1-5":
		return pick(zh, "weekdays "+clock, "工作日 "+clock)
	case dom == "*" && (dow == "0,6" || dow == "6,0"):
		return pick(zh, "weekends "+clock, "周末 "+clock)
	case dom == "*":
		var en, cn []string
		for _, d := range strings.Split(dow, ",") {
			i, err := strconv.Atoi(d)
			if err != nil || i < 0 || i > 7 {
				return fallback
			}
			en, cn = append(en, cronWeekdaysEN[i%7]), append(cn, cronWeekdaysZH[i%7])
		}
		return pick(zh, strings.Join(en, ", ")+" "+clock, "每周"+strings.Join(cn, "、")+" "+clock)
	case dow == "*":
		if d, err := strconv.Atoi(dom); err == nil {
			return pick(zh, fmt.Sprintf("monthly on day %d, %s", d, clock), fmt.Sprintf("每月%d日 %s", d, clock))
		}
	}
	return fallback
}
