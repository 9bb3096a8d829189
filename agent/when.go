package agent

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file reads time expressions in English and Chinese ("every weekday at
// 7:30am", "明天下午3点", "in 2 hours", "每隔30分钟") into a when, and turns a
// when into a Schedule in the request's zone.
//
// Parsing runs an ordered list of rules over the text. Each rule is a regular
// expression and an action; a match that overlaps text an earlier rule took
// is skipped, so the order encodes precedence: intervals before relative
// offsets before recurrences before dates before clock times before parts of
// the day. Every span a rule takes is recorded so the rest of the planner can
// mask time words out of messages and numbers.

// dayPart is a part of the day that qualifies a bare clock time.
type dayPart int

const (
	partNone      dayPart = iota
	partSmall             // 凌晨, 半夜: the small hours
	partMorning           // morning, 早上, 上午
	partNoon              // noon, 中午
	partAfternoon         // afternoon, 下午
	partEvening           // evening, night, tonight, 晚上
)

// meridiem says how firmly a clock time's hour is fixed.
type meridiem int

const (
	merNone meridiem = iota // "9", "9点": a part of the day may shift it
	merAM                   // "9am"
	merPM                   // "9pm"
	merAbs                  // "18:00", "noon", "midnight": taken as written
)

// clock is a time of day as written.
type clock struct {
	set  bool
	h, m int
	mer  meridiem
	bare bool // an English "at 5" with nothing else: 1 to 6 read as afternoon
}

// dateKind says which kind of one-shot date was given.
type dateKind int

const (
	dateNone       dateKind = iota
	dateOffset              // today, tomorrow, 后天, in 3 days
	dateWeekday             // on Friday, 下周三
	dateMonthDay            // Dec 3, 12月3日
	dateDayOfMonth          // on the 25th, 25号
)

// when is everything the time rules found in one request.
type when struct {
	spans [][2]int // byte ranges of the text the rules took

	// Recurrence.
	daily, weekly, monthly bool
	dows                   []int         // cron days of week, Sunday = 0
	every                  time.Duration // "every 15 minutes", "每小时"
	everyDays              int           // "every 3 days", "每隔2天": a day-of-month step
	soft                   bool          // the only recurrence is a bare "周末" or "weekends", which may name one weekend

	// One-shot date and offset.
	date      dateKind
	days      int  // dateOffset: days from today
	relDays   bool // "in 3 days": keep the current clock when none is given
	weekday   time.Weekday
	weekMode  string // "", "this", "next", "nextnext"
	year      int
	month     time.Month
	dom       int           // day of month: one-shot date or monthly recurrence
	after     time.Duration // "in 2 hours", "半小时后"
	clock     clock
	part      dayPart
	partHour  int  // default hour of the part of day, used when no clock is given
	partGiven bool // a part of the day was named
}

// recurring reports whether the request asked for something that repeats.
func (w *when) recurring() bool {
	return w.daily || w.weekly || w.monthly || len(w.dows) > 0 || w.every > 0 || w.everyDays > 0
}

// firmlyRecurring is recurring without the doubt of a bare "周末": in "上海周末
// 两日游攻略" the weekend is one weekend, not every one.
func (w *when) firmlyRecurring() bool {
	return w.recurring() && !(w.soft && !w.daily && !w.weekly && !w.monthly && w.every == 0 && w.everyDays == 0 && len(w.dows) == 2)
}

// oneShot reports whether the request named a single moment or day.
func (w *when) oneShot() bool {
	return w.after > 0 || w.date != dateNone || w.clock.set || w.partGiven
}

// any reports whether any time expression was found.
func (w *when) any() bool { return w.recurring() || w.oneShot() }

// whenRule is one time pattern and what it means. apply returns false to
// reject a match after all (the span is then left to later rules).
type whenRule struct {
	re    *regexp.Regexp
	apply func(w *when, s string, m []int) bool
}

// Shared fragments of the patterns below.
const (
	enNumWords  = `one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty[- ]five|forty|sixty|ninety|half an?|an?`
	enClockWord = `one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve`
	enDay       = `monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues|tue|wed|thurs|thur|thu|fri|sat|sun`
	enDayFull   = `monday|tuesday|wednesday|thursday|friday|saturday|sunday`
	enMonth     = `jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?`
	zhNum       = `[零〇一二两三四五六七八九十百]+`
	zhDay       = `[一二三四五六日天1-7]`
	zhWeek      = `(?:周|星期|礼拜)`
)

func rule(pattern string, apply func(w *when, s string, m []int) bool) whenRule {
	return whenRule{regexp.MustCompile(pattern), apply}
}

// group returns submatch i of m in s, or "".
func group(s string, m []int, i int) string {
	if 2*i+1 >= len(m) || m[2*i] < 0 {
		return ""
	}
	return s[m[2*i]:m[2*i+1]]
}

var whenRules = []whenRule{
	// Intervals.
	rule(`(?i)\bevery\s+(\d+(?:\.\d+)?|`+enNumWords+`)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b`, func(w *when, s string, m []int) bool {
		return w.setEvery(group(s, m, 1), group(s, m, 2))
	}),
	rule(`(?i)\bevery\s+(\d+|two|three|four|five|six|seven|ten|other)\s+days\b|\bevery\s+(other)\s+day\b`, func(w *when, s string, m []int) bool {
		return w.setEveryDays(group(s, m, 1) + group(s, m, 2))
	}),
	rule(`每隔?\s*(\d+|`+zhNum+`)\s*天`, func(w *when, s string, m []int) bool { return w.setEveryDays(group(s, m, 1)) }),
	rule(`(?i)\bevery\s+half(?:\s+an|-)?\s*hour\b`, func(w *when, s string, m []int) bool { w.every = 30 * time.Minute; return true }),
	rule(`(?i)\b(?:every|each)\s+(?:single\s+)?hour\b|\bhourly\b|\bonce\s+an\s+hour\b`, func(w *when, s string, m []int) bool { w.every = time.Hour; return true }),
	rule(`(?i)\b(?:every|each)\s+minute\b`, func(w *when, s string, m []int) bool { w.every = time.Minute; return true }),
	rule(`每隔?\s*(\d+(?:\.\d+)?|`+zhNum+`|半)\s*个?\s*(秒钟|秒|分钟|分|小时|钟头)`, func(w *when, s string, m []int) bool {
		return w.setEvery(group(s, m, 1), group(s, m, 2))
	}),
	rule(`每隔?\s*一?个?(?:小时|钟头)`, func(w *when, s string, m []int) bool { w.every = time.Hour; return true }),
	rule(`每隔?\s*一?分钟`, func(w *when, s string, m []int) bool { w.every = time.Minute; return true }),

	// Offsets from now.
	rule(`(?i)\b(?:in|after)\s+(?:about\s+|around\s+|another\s+|just\s+)?(\d+(?:\.\d+)?|`+enNumWords+`)\s*(minutes?|mins?|hours?|hrs?|days?|weeks?)(\s+and\s+a\s+half)?\b(?:\s+from\s+now)?`, func(w *when, s string, m []int) bool {
		return w.setAfter(group(s, m, 1), group(s, m, 2), group(s, m, 3) != "")
	}),
	rule(`(?i)\b(\d+(?:\.\d+)?|`+enNumWords+`)\s*(minutes?|mins?|hours?|hrs?|days?|weeks?)\s+from\s+now\b`, func(w *when, s string, m []int) bool {
		return w.setAfter(group(s, m, 1), group(s, m, 2), false)
	}),
	rule(`(?:过\s*)?(\d+(?:\.\d+)?|`+zhNum+`个半|`+zhNum+`|半)\s*个?\s*(分钟|分|小时|钟头|天|周|星期|礼拜)\s*(?:以后|之后|后)`, func(w *when, s string, m []int) bool {
		return w.setAfter(group(s, m, 1), group(s, m, 2), false)
	}),
	rule(`过\s*(\d+|`+zhNum+`|半)\s*个?\s*(分钟|小时|钟头)`, func(w *when, s string, m []int) bool {
		return w.setAfter(group(s, m, 1), group(s, m, 2), false)
	}),

	// Recurring days of the week.
	rule(`(?i)\b(?:(?:every|each|on|from)\s+)?(`+enDay+`)s?\s*(?:-|–|to|through|thru|until)\s*(`+enDay+`)s?\b`, func(w *when, s string, m []int) bool {
		a, okA := enWeekday(group(s, m, 1))
		b, okB := enWeekday(group(s, m, 2))
		if !okA || !okB {
			return false
		}
		w.addDowRange(a, b)
		return true
	}),
	rule(`(?i)\b(?:(?:every|each|on)\s+)?(?:weekdays?|work\s*days?|working\s+days?|business\s+days?)\b`, func(w *when, s string, m []int) bool {
		w.addDowRange(1, 5)
		return true
	}),
	rule(`(?i)\b(?:(?:every|each|on)\s+(?:the\s+)?weekends?|weekends)\b`, func(w *when, s string, m []int) bool {
		w.dows = append(w.dows, 0, 6)
		w.soft = !w.recurring() && !strings.HasPrefix(strings.ToLower(s[m[0]:m[1]]), "every") && !strings.HasPrefix(strings.ToLower(s[m[0]:m[1]]), "each")
		return true
	}),
	rule(`(?i)\b(?:every|each)\s+(?:(?:`+enDay+`)s?(?:\s*(?:,|and|&|or)\s*(?:and\s+)?)?)+\b`, func(w *when, s string, m []int) bool {
		return w.addDowList(s[m[0]:m[1]])
	}),
	rule(`(?i)\b(?:on\s+)?(?:(?:mon|tues|wednes|thurs|fri|satur|sun)days(?:\s*(?:,|and|&|or)\s*(?:and\s+)?)?)+\b`, func(w *when, s string, m []int) bool {
		return w.addDowList(s[m[0]:m[1]])
	}),
	rule(`(?:每个?)?`+zhWeek+`(`+zhDay+`)\s*(?:到|至|-|~|—|－)\s*`+zhWeek+`?(`+zhDay+`)`, func(w *when, s string, m []int) bool {
		w.addDowRange(zhWeekday(group(s, m, 1)), zhWeekday(group(s, m, 2)))
		return true
	}),
	rule(`每?个?(?:工作日|上班日|交易日)`, func(w *when, s string, m []int) bool { w.addDowRange(1, 5); return true }),
	rule(`(每个?|这个?|本|下个?)?(?:周末|双休日)`, func(w *when, s string, m []int) bool {
		switch g := group(s, m, 1); {
		case g == "" || strings.HasPrefix(g, "每"):
			w.soft = g == "" && !w.recurring()
			w.dows = append(w.dows, 0, 6)
		case strings.HasPrefix(g, "下"):
			w.setWeekday(time.Saturday, "next")
		default:
			w.setWeekday(time.Saturday, "this")
		}
		return true
	}),
	rule(`每个?`+zhWeek+`(`+zhDay+`(?:\s*[、,和及与跟]?\s*`+zhWeek+`?`+zhDay+`)*)`, func(w *when, s string, m []int) bool {
		if next := firstRune(s[m[1]:]); strings.ContainsRune("次个遍回", next) {
			return false // 每周一次 is "once a week", not Monday
		}
		for _, r := range group(s, m, 1) {
			if d, ok := zhWeekdayRune(r); ok {
				w.dows = append(w.dows, int(d))
			}
		}
		return true
	}),

	// Monthly and daily recurrences.
	rule(`(?i)\b(?:on\s+)?(?:the\s+)?(\d{1,2}|first)(?:st|nd|rd|th)?\s+(?:day\s+)?of\s+(?:every|each|the)\s+month\b`, func(w *when, s string, m []int) bool {
		return w.setMonthly(group(s, m, 1))
	}),
	rule(`(?i)\b(?:every|each)\s+month\s+on\s+the\s+(\d{1,2})(?:st|nd|rd|th)?\b`, func(w *when, s string, m []int) bool {
		return w.setMonthly(group(s, m, 1))
	}),
	rule(`(?i)\b(?:every|each)\s+month\b|\bmonthly\b|\bonce\s+a\s+month\b`, func(w *when, s string, m []int) bool { w.monthly = true; return true }),
	rule(`每个?月的?\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:号|日)`, func(w *when, s string, m []int) bool {
		return w.setMonthly(group(s, m, 1))
	}),
	rule(`每个?月初?`, func(w *when, s string, m []int) bool { w.monthly = true; return true }),
	rule(`(?i)\b(?:every|each)\s+(?:single\s+)?(day|morning|afternoon|evening|night)\b|\b(daily|everyday|nightly)\b|\b(mornings|evenings|nights)\b`, func(w *when, s string, m []int) bool {
		w.daily = true
		w.setPart(strings.TrimSuffix(strings.ToLower(group(s, m, 1)+group(s, m, 2)+group(s, m, 3)), "s"))
		return true
	}),
	rule(`(?i)\b(?:every|each|once\s+a)\s+week\b|\bweekly\b`, func(w *when, s string, m []int) bool { w.weekly = true; return true }),
	rule(`每天|每日|天天|每一天|每晚|每夜|每早|每个早上|每个晚上`, func(w *when, s string, m []int) bool {
		w.daily = true
		w.setPart(s[m[0]:m[1]])
		return true
	}),
	rule(`每个?`+zhWeek, func(w *when, s string, m []int) bool { w.weekly = true; return true }),

	// One-shot dates.
	rule(`(?i)\b(?:the\s+)?day\s+after\s+tomorrow\b`, func(w *when, s string, m []int) bool { return w.setDays(2, false) }),
	rule(`(?i)\b(?:tomorrow|tmrw|tmr)\b`, func(w *when, s string, m []int) bool { return w.setDays(1, false) }),
	rule(`(?i)\btonight\b`, func(w *when, s string, m []int) bool { w.setPart("tonight"); return w.setDays(0, false) }),
	rule(`(?i)\btoday\b`, func(w *when, s string, m []int) bool { return w.setDays(0, false) }),
	rule(`(?i)\b(?:(next|this|coming|this\s+coming|on)\s+)?(`+enDayFull+`)\b`, func(w *when, s string, m []int) bool {
		d, _ := enWeekday(group(s, m, 2))
		mode := strings.ToLower(group(s, m, 1))
		switch mode {
		case "next", "this":
		default:
			mode = ""
		}
		return w.setWeekday(d, mode)
	}),
	rule(`(?i)\b(`+enMonth+`)\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?`, func(w *when, s string, m []int) bool {
		return w.setMonthDay(group(s, m, 3), enMonthNum(group(s, m, 1)), group(s, m, 2))
	}),
	rule(`(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(`+enMonth+`)\b(?:,?\s+(\d{4})\b)?`, func(w *when, s string, m []int) bool {
		return w.setMonthDay(group(s, m, 3), enMonthNum(group(s, m, 2)), group(s, m, 1))
	}),
	rule(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`, func(w *when, s string, m []int) bool {
		mo, _ := strconv.Atoi(group(s, m, 2))
		return w.setMonthDay(group(s, m, 1), mo, group(s, m, 3))
	}),
	rule(`(?i)\b(?:on\s+)?the\s+(\d{1,2})(?:st|nd|rd|th)\b`, func(w *when, s string, m []int) bool {
		return w.setDayOfMonth(group(s, m, 1))
	}),
	rule(`大后天|后天|明天|明日|明儿|明早|明晚|今晚|今夜|今早|今天|今日|今儿`, func(w *when, s string, m []int) bool {
		word := s[m[0]:m[1]]
		w.setPart(word)
		switch {
		case word == "大后天":
			return w.setDays(3, false)
		case word == "后天":
			return w.setDays(2, false)
		case strings.HasPrefix(word, "明"):
			return w.setDays(1, false)
		}
		return w.setDays(0, false)
	}),
	rule(`(下下个?|下个?|这个?|本|这一)?`+zhWeek+`(`+zhDay+`)`, func(w *when, s string, m []int) bool {
		mode := ""
		switch g := group(s, m, 1); {
		case strings.HasPrefix(g, "下下"):
			mode = "nextnext"
		case strings.HasPrefix(g, "下"):
			mode = "next"
		case g != "":
			mode = "this"
		}
		return w.setWeekday(zhWeekday(group(s, m, 2)), mode)
	}),
	rule(`(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:日|号)`, func(w *when, s string, m []int) bool {
		mo, ok := parseSmallInt(group(s, m, 1))
		return ok && w.setMonthDay("", mo, group(s, m, 2))
	}),
	rule(`(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:号|日)`, func(w *when, s string, m []int) bool {
		return w.setDayOfMonth(group(s, m, 1))
	}),

	// Clock times.
	rule(`(?i)\b(\d{1,2})(?:[:.](\d{2}))?\s*(?:(am|pm)\b|(a\.m\.?|p\.m\.?))`, func(w *when, s string, m []int) bool {
		mer := merAM
		if strings.HasPrefix(strings.ToLower(group(s, m, 3)+group(s, m, 4)), "p") {
			mer = merPM
		}
		if h, ok := parseSmallInt(group(s, m, 1)); !ok || h < 1 || h > 12 {
			return false
		}
		return w.setClock(group(s, m, 1), group(s, m, 2), mer, false)
	}),
	rule(`\b(\d{1,2}):(\d{2})\b`, func(w *when, s string, m []int) bool {
		return w.setClock(group(s, m, 1), group(s, m, 2), merNone, false)
	}),
	rule(`(?i)(?:\b(?:at|around)\s+|@\s*)(\d{1,2}|`+enClockWord+`)(?:\s*o'?clock)?\b`, func(w *when, s string, m []int) bool {
		if notAClock.MatchString(s[m[1]:]) {
			return false
		}
		return w.setClock(group(s, m, 1), "", merNone, true)
	}),
	rule(`(?i)\b(\d{1,2}|`+enClockWord+`)\s*o'?clock\b`, func(w *when, s string, m []int) bool {
		return w.setClock(group(s, m, 1), "", merNone, true)
	}),
	rule(`(?i)\b(noon|midday|midnight)\b`, func(w *when, s string, m []int) bool {
		if strings.EqualFold(group(s, m, 1), "midnight") {
			w.clock = clock{set: true, h: 24, mer: merAbs}
		} else {
			w.clock = clock{set: true, h: 12, mer: merAbs}
		}
		return true
	}),
	rule(`(?i)\b(half|quarter)\s+past\s+(\d{1,2}|`+enClockWord+`)\b`, func(w *when, s string, m []int) bool {
		min := "30"
		if strings.EqualFold(group(s, m, 1), "quarter") {
			min = "15"
		}
		return w.setClock(group(s, m, 2), min, merNone, true)
	}),
	rule(`(?i)\bquarter\s+to\s+(\d{1,2}|`+enClockWord+`)\b`, func(w *when, s string, m []int) bool {
		h, ok := parseSmallInt(group(s, m, 1))
		if !ok || h < 1 || h > 12 {
			return false
		}
		return w.setClock(strconv.Itoa(h-1), "45", merNone, true)
	}),
	rule(`(\d{1,2}|[零一二两三四五六七八九十]{1,3})\s*[点點时](?:\s*(半|一刻|三刻|整|钟)|\s*(\d{1,2}|[零一二三四五六七八九十]{1,3})\s*分?)?`, func(w *when, s string, m []int) bool {
		h := group(s, m, 1)
		if prev := lastRune(s[:m[0]]); prev >= '0' && prev <= '9' {
			return false // the tail of a longer number: 200时 is no clock time
		}
		if strings.Contains(s[m[0]:m[1]], "时") && group(s, m, 2)+group(s, m, 3) == "" && !hourContext(s[:m[0]], h) {
			return false // 跌破7时提醒我: 时 is "when", not o'clock
		}
		if h == "一" && group(s, m, 2)+group(s, m, 3) == "" &&
			(strings.ContainsRune("有快早晚慢多少差好大小高低再稍", lastRune(s[:m[0]])) ||
				strings.ContainsRune("点儿东", firstRune(s[m[1]:]))) {
			return false // 早一点, 一点点: "a little", not one o'clock
		}
		min := group(s, m, 3)
		switch group(s, m, 2) {
		case "半":
			min = "30"
		case "一刻":
			min = "15"
		case "三刻":
			min = "45"
		}
		return w.setClock(h, min, merNone, false)
	}),

	// Parts of the day on their own.
	rule(`(?i)\b(?:(in\s+the|this|at)\s+)?(morning|afternoon|evening|night)\b`, func(w *when, s string, m []int) bool {
		w.setPart(strings.ToLower(group(s, m, 2)))
		if strings.EqualFold(group(s, m, 1), "this") && w.date == dateNone {
			w.setDays(0, false)
		}
		return true
	}),
	rule(`凌晨|清晨|早上|早晨|上午|中午|午间|下午|午后|傍晚|黄昏|晚上|晚间|夜里|夜间|深夜|半夜`, func(w *when, s string, m []int) bool {
		w.setPart(s[m[0]:m[1]])
		return true
	}),
}

// zhHourContextRe matches the words that may stand before an hour written
// with 时 ("下午3时", "明天9时").
var zhHourContextRe = regexp.MustCompile(`(?:早上|早晨|清晨|上午|凌晨|中午|下午|傍晚|晚上|夜里|今天|明天|后天|每天|每日|号|日|今晚|明早|明晚)\s*$`)

// hourContext reports whether an hour h written with 时 is a clock time: it
// follows a part of the day or a date, or it is a 24-hour value.
func hourContext(before, h string) bool {
	n, ok := parseSmallInt(h)
	return zhHourContextRe.MatchString(before) || ok && n >= 13
}

// notAClock matches what may follow "at 5" when the 5 is no clock time.
var notAClock = regexp.MustCompile(`(?i)^\s*(?:%|\d|[:.,]\d|k\b|percent|pct|per|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|dollars?|usd|bucks|cents?|people|times|degrees?|miles?|km|kg|lbs?|pounds?|euros?|yuan|元|美元|块)`)

// parseWhen runs the time rules over s.
func parseWhen(s string) *when {
	w := &when{}
	for _, r := range whenRules {
		for _, m := range r.re.FindAllStringSubmatchIndex(s, -1) {
			if w.overlaps(m[0], m[1]) {
				continue
			}
			if r.apply(w, s, m) {
				w.spans = append(w.spans, [2]int{m[0], m[1]})
			}
		}
	}
	return w
}

func (w *when) overlaps(a, b int) bool {
	for _, sp := range w.spans {
		if a < sp[1] && sp[0] < b {
			return true
		}
	}
	return false
}

// setEvery records an interval of n units.
func (w *when) setEvery(n, unit string) bool {
	d, ok := duration(n, unit)
	if !ok || d <= 0 {
		return false
	}
	w.every = d
	return true
}

// setEveryDays records a recurrence every n days ("other" is two).
func (w *when) setEveryDays(n string) bool {
	if strings.EqualFold(n, "other") {
		n = "2"
	}
	d, ok := parseSmallInt(n)
	if !ok || d < 1 || d > 31 {
		return false
	}
	if d == 1 {
		w.daily = true
	} else {
		w.everyDays = d
	}
	return true
}

// setAfter records an offset from now; whole days become a date offset.
func (w *when) setAfter(n, unit string, andAHalf bool) bool {
	v, ok := parseNumber(n)
	if !ok || v <= 0 || v > 1e4 {
		return false
	}
	if andAHalf {
		v += 0.5
	}
	u := strings.ToLower(unit)
	switch {
	case strings.HasPrefix(u, "day") || u == "天":
		return w.setDays(int(v), true)
	case strings.HasPrefix(u, "week") || u == "周" || u == "星期" || u == "礼拜":
		return w.setDays(int(v*7), true)
	}
	d, ok := duration(strconv.FormatFloat(v, 'f', -1, 64), unit)
	if !ok {
		return false
	}
	w.after = d
	return true
}

// duration reads n units ("15", "minutes"; "半", "小时") as a duration.
func duration(n, unit string) (time.Duration, bool) {
	v, ok := parseNumber(n)
	if !ok || v <= 0 || v > 1e5 {
		return 0, false
	}
	var u time.Duration
	switch strings.ToLower(unit) {
	case "s", "sec", "secs", "second", "seconds", "秒", "秒钟":
		u = time.Second
	case "m", "min", "mins", "minute", "minutes", "分", "分钟":
		u = time.Minute
	case "h", "hr", "hrs", "hour", "hours", "小时", "钟头":
		u = time.Hour
	default:
		return 0, false
	}
	return time.Duration(v * float64(u)).Round(time.Second), true
}

func (w *when) setDays(n int, rel bool) bool {
	if w.date != dateNone {
		return true // the first date wins; the words are still time words
	}
	w.date, w.days, w.relDays = dateOffset, n, rel
	return true
}

func (w *when) setWeekday(d time.Weekday, mode string) bool {
	if w.date != dateNone {
		return true
	}
	w.date, w.weekday, w.weekMode = dateWeekday, d, mode
	return true
}

func (w *when) setMonthDay(year string, month int, day string) bool {
	d, ok := parseSmallInt(day)
	if !ok || month < 1 || month > 12 || d < 1 || d > 31 {
		return false
	}
	if w.date != dateNone {
		return true
	}
	w.date, w.month, w.dom = dateMonthDay, time.Month(month), d
	if y, err := strconv.Atoi(year); err == nil && y >= 1970 && y <= 9999 {
		w.year = y
	}
	return true
}

func (w *when) setDayOfMonth(day string) bool {
	d, ok := parseSmallInt(day)
	if !ok || d < 1 || d > 31 {
		return false
	}
	if w.monthly {
		w.dom = d
		return true
	}
	if w.date != dateNone {
		return true
	}
	w.date, w.dom = dateDayOfMonth, d
	return true
}

func (w *when) setMonthly(day string) bool {
	d := 1
	if !strings.EqualFold(day, "first") {
		var ok bool
		if d, ok = parseSmallInt(day); !ok || d < 1 || d > 31 {
			return false
		}
	}
	w.monthly, w.dom = true, d
	if w.date == dateDayOfMonth {
		w.date = dateNone
	}
	return true
}

// setClock records a clock time; it rejects impossible ones.
func (w *when) setClock(h, m string, mer meridiem, bare bool) bool {
	hh, ok := parseSmallInt(h)
	if !ok || hh < 0 || hh > 24 {
		return false
	}
	mm := 0
	if m != "" {
		if mm, ok = parseSmallInt(m); !ok || mm > 59 {
			return false
		}
	}
	if mer == merNone && hh > 12 {
		mer = merAbs
	}
	if w.clock.set {
		return true // the first clock time wins
	}
	w.clock = clock{set: true, h: hh, m: mm, mer: mer, bare: bare && mer == merNone}
	return true
}

// partWords maps a part-of-day word to its part and the hour it means when
// no clock time is given (-1: it needs one).
var partWords = map[string]struct {
	part dayPart
	hour int
}{
	"morning": {partMorning, 8}, "afternoon": {partAfternoon, 15}, "evening": {partEvening, 20},
	"night": {partEvening, 21}, "tonight": {partEvening, 20}, "day": {partNone, -1},
	"凌晨": {partSmall, -1}, "半夜": {partSmall, -1}, "清晨": {partMorning, 7}, "早上": {partMorning, 8},
	"早晨": {partMorning, 8}, "上午": {partMorning, 9}, "中午": {partNoon, 12}, "午间": {partNoon, 12},
	"下午": {partAfternoon, 15}, "午后": {partAfternoon, 14}, "傍晚": {partEvening, 18}, "黄昏": {partEvening, 18},
	"晚上": {partEvening, 20}, "晚间": {partEvening, 20}, "夜里": {partEvening, 22}, "夜间": {partEvening, 22},
	"深夜": {partEvening, 23}, "每晚": {partEvening, 20}, "每夜": {partEvening, 22}, "每早": {partMorning, 8},
	"每个早上": {partMorning, 8}, "每个晚上": {partEvening, 20}, "明早": {partMorning, 8}, "明晚": {partEvening, 20},
	"今晚": {partEvening, 20}, "今夜": {partEvening, 22}, "今早": {partMorning, 8},
}

// setPart records a part of the day, if word names one. The first one wins.
func (w *when) setPart(word string) {
	p, ok := partWords[word]
	if !ok || p.part == partNone || w.partGiven {
		return
	}
	w.part, w.partHour, w.partGiven = p.part, p.hour, true
}

// hourMinute returns the time of day the request gave, with the part of the
// day applied. The hour may be 24 or more for "midnight" or "今晚1点", which
// means that hour after the start of the day (time.Date normalises it).
func (w *when) hourMinute() (h, m int, ok bool) {
	if !w.clock.set {
		if w.partGiven && w.partHour >= 0 {
			return w.partHour, 0, true
		}
		return 0, 0, false
	}
	h, m = w.clock.h, w.clock.m
	switch w.clock.mer {
	case merAM:
		if h == 12 {
			h = 0
		}
	case merPM:
		if h < 12 {
			h += 12
		}
	case merNone:
		h = applyPart(h, w.part, w.clock.bare)
	}
	return h, m, true
}

// applyPart reads hour h (0 to 12) in the light of a part of the day.
func applyPart(h int, p dayPart, bare bool) int {
	switch p {
	case partSmall:
		return h % 12
	case partNoon:
		if h >= 1 && h <= 3 {
			return h + 12
		}
		return h
	case partAfternoon:
		if h < 12 {
			return h + 12
		}
		return h
	case partEvening:
		switch {
		case h == 0 || h == 12:
			return 24 // 晚上12点: midnight at the end of the day
		case h <= 4:
			return h + 24 // 今晚1点: the small hours of the next day
		}
		return h + 12
	case partMorning:
		return h
	}
	if bare && h >= 1 && h <= 6 {
		return h + 12 // "at 5" with nothing else is five in the afternoon
	}
	return h
}

// ambiguous reports whether the clock time could as well mean twelve hours
// later ("3点" said at ten in the morning).
func (w *when) ambiguous(h int) bool {
	return w.clock.set && w.clock.mer == merNone && !w.partGiven && h < 12
}

// schedule turns w into a Schedule for a task of the given kind, or nil when
// the request gave no usable time. Monitors prefer a poll interval, periodic
// tasks a cron expression, one-shot and long-running tasks an instant.
func (w *when) schedule(now time.Time, kind string) *Schedule {
	switch kind {
	case KindMonitor:
		if w.every > 0 {
			return &Schedule{Every: formatDuration(w.every)}
		}
		if c, ok := w.cron(); ok {
			return &Schedule{Cron: c}
		}
	case KindPeriodic:
		if c, ok := w.cron(); ok {
			return &Schedule{Cron: c}
		}
		if w.every > 0 {
			return &Schedule{Every: formatDuration(w.every)}
		}
	case KindOneShot, KindLongRunning:
		if t, ok := w.at(now); ok {
			return &Schedule{At: &t}
		}
	}
	return nil
}

// cron returns the five-field cron expression of a recurrence.
func (w *when) cron() (string, bool) {
	dow := "*"
	if len(w.dows) > 0 {
		dow = formatDows(w.dows)
	} else if w.weekly {
		dow = "1"
	}
	dom := "*"
	switch {
	case w.monthly:
		dom = strconv.Itoa(max(w.dom, 1))
	case w.everyDays > 1:
		dom = "*/" + strconv.Itoa(w.everyDays)
	}
	if w.every > 0 {
		if w.every%time.Minute == 0 && w.every < time.Hour && 60%int(w.every/time.Minute) == 0 {
			return fmt.Sprintf("%s * %s * %s", step(int(w.every/time.Minute)), dom, dow), true
		}
		if w.every%time.Hour == 0 && w.every < 24*time.Hour && 24%int(w.every/time.Hour) == 0 {
			return fmt.Sprintf("0 %s %s * %s", step(int(w.every/time.Hour)), dom, dow), true
		}
		return "", false
	}
	if !w.recurring() {
		return "", false
	}
	h, m, ok := w.hourMinute()
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%d %d %s * %s", m, h%24, dom, dow), true
}

func step(n int) string {
	if n == 1 {
		return "*"
	}
	return "*/" + strconv.Itoa(n)
}

// at resolves a one-shot time against now, in now's zone.
func (w *when) at(now time.Time) (time.Time, bool) {
	if w.after > 0 {
		return now.Add(w.after), true
	}
	loc := now.Location()
	y, mo, d := now.Date()
	h, m, hasClock := w.hourMinute()
	if !hasClock && !(w.date == dateOffset && w.relDays) {
		return time.Time{}, false
	}
	switch w.date {
	case dateNone:
		t := time.Date(y, mo, d, h, m, 0, 0, loc)
		if t.After(now) {
			return t, true
		}
		if later := time.Date(y, mo, d, h+12, m, 0, 0, loc); w.ambiguous(h) && later.After(now) {
			return later, true
		}
		return time.Date(y, mo, d+1, h, m, 0, 0, loc), true
	case dateOffset:
		if !hasClock {
			h, m = now.Hour(), now.Minute()
		}
		return time.Date(y, mo, d+w.days, h, m, 0, 0, loc), true
	case dateWeekday:
		days := weekdayOffset(now.Weekday(), w.weekday, w.weekMode)
		t := time.Date(y, mo, d+days, h, m, 0, 0, loc)
		if w.weekMode == "" && !t.After(now) {
			t = time.Date(y, mo, d+days+7, h, m, 0, 0, loc)
		}
		return t, true
	case dateMonthDay:
		year := y
		if w.year != 0 {
			year = w.year
		}
		t := time.Date(year, w.month, w.dom, h, m, 0, 0, loc)
		if w.year == 0 && !t.After(now) {
			t = time.Date(year+1, w.month, w.dom, h, m, 0, 0, loc)
		}
		return t, true
	case dateDayOfMonth:
		t := time.Date(y, mo, w.dom, h, m, 0, 0, loc)
		if !t.After(now) {
			t = time.Date(y, mo+1, w.dom, h, m, 0, 0, loc)
		}
		return t, true
	}
	return time.Time{}, false
}

// weekdayOffset returns how many days from a day that is today lies the
// target weekday. Weeks start on Monday: "next" (下周) is the target in the
// week after this one, "this" (这周) the one in this week, and no mode the
// next occurrence from today on.
func weekdayOffset(today, target time.Weekday, mode string) int {
	ti, gi := (int(today)+6)%7, (int(target)+6)%7
	switch mode {
	case "next":
		return 7 - ti + gi
	case "nextnext":
		return 14 - ti + gi
	case "this":
		if gi < ti {
			return gi - ti + 7
		}
		return gi - ti
	}
	return (gi - ti + 7) % 7
}

// addDowRange adds the days from a to b, wrapping past Saturday.
func (w *when) addDowRange(a, b time.Weekday) {
	for d := int(a); ; d = (d + 1) % 7 {
		w.dows = append(w.dows, d)
		if d == int(b) || len(w.dows) > 7 {
			return
		}
	}
}

var enDayRe = regexp.MustCompile(`(?i)\b(?:` + enDay + `)`)

// addDowList adds every English weekday named in s.
func (w *when) addDowList(s string) bool {
	found := false
	for _, name := range enDayRe.FindAllString(s, -1) {
		if d, ok := enWeekday(strings.TrimSuffix(strings.ToLower(name), "s")); ok {
			w.dows = append(w.dows, int(d))
			found = true
		}
	}
	return found
}

// formatDows writes cron days of week: "1-5" for runs of three or more,
// otherwise a comma list ("0,6", "2,4").
func formatDows(dows []int) string {
	seen := map[int]bool{}
	var ds []int
	for _, d := range dows {
		d %= 7
		if !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	sort.Ints(ds)
	var parts []string
	for i := 0; i < len(ds); {
		j := i
		for j+1 < len(ds) && ds[j+1] == ds[j]+1 {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, fmt.Sprintf("%d-%d", ds[i], ds[j]))
		} else {
			for k := i; k <= j; k++ {
				parts = append(parts, strconv.Itoa(ds[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// formatDuration writes d as a Go duration without zero units: "15m", "1h",
// "1h30m", "30s".
func formatDuration(d time.Duration) string {
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m := d % time.Hour / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s := d % time.Minute / time.Second; s > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

var enWeekdays = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday, "wed": time.Wednesday,
	"wednesday": time.Wednesday, "thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday,
	"thursday": time.Thursday, "fri": time.Friday, "friday": time.Friday, "sat": time.Saturday,
	"saturday": time.Saturday,
}

func enWeekday(s string) (time.Weekday, bool) {
	d, ok := enWeekdays[strings.ToLower(s)]
	return d, ok
}

func zhWeekdayRune(r rune) (time.Weekday, bool) {
	i := strings.IndexRune("日一二三四五六", r)
	switch {
	case i >= 0:
		return time.Weekday(i / len("日")), true
	case r == '天' || r == '7':
		return time.Sunday, true
	case r >= '1' && r <= '6':
		return time.Weekday(r - '0'), true
	}
	return 0, false
}

func zhWeekday(s string) time.Weekday {
	d, _ := zhWeekdayRune(firstRune(s))
	return d
}

var enMonths = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

func enMonthNum(s string) int {
	s = strings.ToLower(s)
	for i, m := range enMonths {
		if strings.HasPrefix(s, m) {
			return i + 1
		}
	}
	return 0
}

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return 0
}

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	if r == utf8.RuneError {
		return 0
	}
	return r
}
