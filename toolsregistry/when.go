package toolsregistry

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/width"
)

// This file reads the dates and times a model writes where a schema wants
// ISO 8601 ("tomorrow", "明天早上8点", "in 2 days", "next friday 8pm",
// "2026/11/23 8:30") for Repair. It is deliberately smaller than the
// planner's reader in the agent package (which this package may not
// import): it reads one moment, and refuses text it does not fully
// understand, so that a repair never guesses.
//
// The text is matched by three groups of rules, in order: offsets from now
// ("in 2 hours", "3天后"), dates (words, numeric dates, month names,
// weekdays) and clock times. Each group takes at most one match; the text
// they leave must be filler ("at", "on", "的", punctuation), else the text
// is not read at all.

// moment is what parseMoment read.
type moment struct {
	exact    time.Time // set by offsets, "now" and RFC 3339 times
	hasExact bool
	day      time.Time // midnight of the day named
	hasDay   bool
	h, m, s  int // the clock time named
	hasClock bool
	part     dayPart // a part of the day, which shifts a clock time's hour
}

type dayPart int

const (
	partNone dayPart = iota
	partAM
	partNoon
	partPM
	partNight // 晚上, tonight: 12 means midnight
)

type whenRule struct {
	re    *regexp.Regexp
	apply func(m *moment, g []string, now time.Time) bool
}

func rule(pattern string, apply func(m *moment, g []string, now time.Time) bool) whenRule {
	return whenRule{regexp.MustCompile(pattern), apply}
}

// cnDigits is the pattern of a small number in Chinese characters.
const cnDigits = `[零〇一二两三四五六七八九十]+`

var offsetRules = []whenRule{
	rule(`^(?:now|right now|immediately|现在|立刻|马上)$`, func(m *moment, _ []string, now time.Time) bool {
		m.exact, m.hasExact = now, true
		return true
	}),
	rule(`\bin\s+(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+(minute|min|hour|hr|day|week)s?\b`, func(m *moment, g []string, now time.Time) bool {
		return m.offset(now, g[1], g[2])
	}),
	rule(`\bin\s+half\s+an?\s+hour\b`, func(m *moment, _ []string, now time.Time) bool {
		m.exact, m.hasExact = now.Add(30*time.Minute), true
		return true
	}),
	rule(`\b(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+(minute|min|hour|hr|day|week)s?\s+(?:later|from now)\b`, func(m *moment, g []string, now time.Time) bool {
		return m.offset(now, g[1], g[2])
	}),
	rule(`半(?:个)?(?:小时|钟头)(?:后|以后|之后)`, func(m *moment, _ []string, now time.Time) bool {
		m.exact, m.hasExact = now.Add(30*time.Minute), true
		return true
	}),
	rule(`(\d+|`+cnDigits+`)\s*(分钟|个?小时|个?钟头|天|日|周|个?星期|个?礼拜)(?:后|以后|之后)`, func(m *moment, g []string, now time.Time) bool {
		return m.offset(now, g[1], g[2])
	}),
}

var dateRules = []whenRule{
	rule(`\b(?:the\s+)?day\s+after\s+tomorrow\b`, days(2, partNone)),
	rule(`\b(?:the\s+)?day\s+before\s+yesterday\b`, days(-2, partNone)),
	rule(`\b(?:tomorrow|tmrw|tmr)\b`, days(1, partNone)),
	rule(`\btoday\b`, days(0, partNone)),
	rule(`\btonight\b`, days(0, partNight)),
	rule(`\byesterday\b`, days(-1, partNone)),
	rule(`大后天`, days(3, partNone)),
	rule(`后天`, days(2, partNone)),
	rule(`明早|明晨`, days(1, partAM)),
	rule(`明晚`, days(1, partNight)),
	rule(`明天|明日`, days(1, partNone)),
	rule(`今早|今晨`, days(0, partAM)),
	rule(`今晚|今夜`, days(0, partNight)),
	rule(`今天|今日`, days(0, partNone)),
	rule(`大前天`, days(-3, partNone)),
	rule(`前天`, days(-2, partNone)),
	rule(`昨天|昨日`, days(-1, partNone)),
	rule(`\b(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?`, func(m *moment, g []string, now time.Time) bool {
		return m.date(now, atoi(g[1]), atoi(g[2]), atoi(g[3]))
	}),
	rule(`(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]`, func(m *moment, g []string, now time.Time) bool {
		return m.date(now, now.Year(), atoi(g[1]), atoi(g[2]))
	}),
	rule(`\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?\b`, func(m *moment, g []string, now time.Time) bool {
		return m.date(now, yearOr(g[3], now), monthNum(g[1]), atoi(g[2]))
	}),
	rule(`\b(\d{1,2})(?:st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?(?:,?\s+(\d{4}))?\b`, func(m *moment, g []string, now time.Time) bool {
		return m.date(now, yearOr(g[3], now), monthNum(g[2]), atoi(g[1]))
	}),
	rule(`\b(?:(next|this|coming)\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues|tue|wed|thurs|thur|thu|fri|sat|sun)\b`, func(m *moment, g []string, now time.Time) bool {
		mode := map[string]string{"next": "next", "this": "this"}[g[1]]
		return m.weekday(now, enWeekdays[g[2][:3]], mode)
	}),
	rule(`(下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天1-7])`, func(m *moment, g []string, now time.Time) bool {
		mode := ""
		switch {
		case strings.HasPrefix(g[1], "下"):
			mode = "next"
		case g[1] != "":
			mode = "this"
		}
		return m.weekday(now, zhWeekdays[g[2]], mode)
	}),
}

var clockRules = []whenRule{
	rule(`\b(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?`, func(m *moment, g []string, _ time.Time) bool {
		part := partAM
		if g[4] == "p" {
			part = partPM
		}
		if atoi(g[1]) > 12 {
			return false
		}
		return m.clock(atoi(g[1]), atoi(g[2]), atoi(g[3]), part)
	}),
	rule(`\b(\d{1,2}):(\d{2})(?::(\d{2}))?\b`, func(m *moment, g []string, _ time.Time) bool {
		return m.clock(atoi(g[1]), atoi(g[2]), atoi(g[3]), partNone)
	}),
	rule(`\b(\d{1,2})\s*o'?clock\b`, func(m *moment, g []string, _ time.Time) bool {
		return m.clock(atoi(g[1]), 0, 0, partNone)
	}),
	rule(`\b(?:noon|midday)\b|中午(?:12|十二)[点點](?:钟)?|^中午$`, func(m *moment, _ []string, _ time.Time) bool {
		return m.clock(12, 0, 0, partNone)
	}),
	rule(`\bmidnight\b|午夜|半夜(?:12|十二)[点點]`, func(m *moment, _ []string, _ time.Time) bool {
		return m.clock(0, 0, 0, partNone)
	}),
	rule(`(凌晨|早上|早晨|清晨|上午|中午|下午|傍晚|晚上|夜里|夜间)?\s*(\d{1,2}|`+cnDigits+`)\s*[点點时時]\s*(?:钟)?\s*(半|一刻|三刻|(\d{1,2}|`+cnDigits+`)\s*分?)?`, func(m *moment, g []string, _ time.Time) bool {
		h, ok := smallNumber(g[2])
		if !ok {
			return false
		}
		min := 0
		switch g[3] {
		case "":
		case "半":
			min = 30
		case "一刻":
			min = 15
		case "三刻":
			min = 45
		default:
			if min, ok = smallNumber(g[4]); !ok {
				return false
			}
		}
		return m.clock(h, min, 0, zhParts[g[1]])
	}),
	rule(`\b(\d{1,2})(?::(\d{2}))?\s+(?:in\s+the\s+|at\s+)(morning|afternoon|evening|night)\b`, func(m *moment, g []string, _ time.Time) bool {
		part := map[string]dayPart{"morning": partAM, "afternoon": partPM, "evening": partPM, "night": partNight}[g[3]]
		return m.clock(atoi(g[1]), atoi(g[2]), 0, part)
	}),
	rule(`\bat\s+(\d{1,2})\b`, func(m *moment, g []string, _ time.Time) bool {
		return m.clock(atoi(g[1]), 0, 0, partNone)
	}),
}

// partRules read a part of the day given apart from the clock time
// ("8 in the evening", "tomorrow morning").
var partRules = []whenRule{
	rule(`\b(?:in\s+the\s+|this\s+)?(morning|afternoon|evening|night)\b`, func(m *moment, g []string, _ time.Time) bool {
		if m.part == partNone {
			m.part = map[string]dayPart{"morning": partAM, "afternoon": partPM, "evening": partPM, "night": partNight}[g[1]]
		}
		return true
	}),
}

var (
	fillerPattern = regexp.MustCompile(`^(?:\s|[,.;，。、]|\bat\b|\bon\b|\bthe\b|\bof\b|\bby\b|的|在|于)*$`)
	isoTPattern   = regexp.MustCompile(`^(\d{4}-\d{1,2}-\d{1,2})t(\d)`)
	spacePattern  = regexp.MustCompile(`\s+`)
)

// parseMoment reads text, relative to now (whose location is the zone the
// text means), or reports that it cannot.
func parseMoment(text string, now time.Time) (moment, bool) {
	s := strings.ToLower(strings.TrimSpace(width.Fold.String(text)))
	s = spacePattern.ReplaceAllString(s, " ")
	if s == "" || len(s) > 80 {
		return moment{}, false
	}
	if t, err := time.Parse(time.RFC3339, strings.ToUpper(s)); err == nil {
		return moment{exact: t, hasExact: true}, true
	}
	s = isoTPattern.ReplaceAllString(s, "$1 $2")
	var m moment
	for _, group := range [][]whenRule{offsetRules, dateRules, clockRules, partRules} {
		for _, r := range group {
			loc := r.re.FindStringSubmatchIndex(s)
			if loc == nil {
				continue
			}
			g := make([]string, len(loc)/2)
			for i := range g {
				if loc[2*i] >= 0 {
					g[i] = s[loc[2*i]:loc[2*i+1]]
				}
			}
			if !r.apply(&m, g, now) {
				return moment{}, false
			}
			s = s[:loc[0]] + " " + s[loc[1]:]
			break
		}
	}
	if !fillerPattern.MatchString(s) || !(m.hasExact || m.hasDay || m.hasClock) {
		return moment{}, false
	}
	if m.hasExact && (m.hasDay || m.hasClock) {
		return moment{}, false // "in 2 days at 8am": too clever to guess
	}
	if m.hasClock {
		m.h = applyPart(m.h, m.part)
	}
	return m, true
}

func days(n int, part dayPart) func(m *moment, g []string, now time.Time) bool {
	return func(m *moment, _ []string, now time.Time) bool {
		m.day, m.hasDay = midnight(now).AddDate(0, 0, n), true
		m.part = part
		return true
	}
}

func (m *moment) offset(now time.Time, n, unit string) bool {
	k, ok := smallNumber(n)
	if !ok {
		return false
	}
	switch {
	case strings.HasPrefix(unit, "min"), unit == "分钟":
		m.exact = now.Add(time.Duration(k) * time.Minute)
	case strings.HasPrefix(unit, "h"), strings.HasSuffix(unit, "小时"), strings.HasSuffix(unit, "钟头"):
		m.exact = now.Add(time.Duration(k) * time.Hour)
	case unit == "day", unit == "天", unit == "日":
		m.exact = now.AddDate(0, 0, k)
	default: // weeks
		m.exact = now.AddDate(0, 0, 7*k)
	}
	m.hasExact = true
	return true
}

func (m *moment) date(now time.Time, y, mon, d int) bool {
	if mon < 1 || mon > 12 || d < 1 || d > 31 || y < 1900 || y > 9999 {
		return false
	}
	t := time.Date(y, time.Month(mon), d, 0, 0, 0, 0, now.Location())
	if t.Day() != d { // February 30th
		return false
	}
	m.day, m.hasDay = t, true
	return true
}

// weekday sets the day to the named weekday: the next one from today
// (today itself included) with no mode, the one in this week (Monday to
// Sunday) with "this", the one in next week with "next".
func (m *moment) weekday(now time.Time, wd time.Weekday, mode string) bool {
	today := midnight(now)
	idx := func(d time.Weekday) int { return (int(d) + 6) % 7 } // Monday = 0
	switch mode {
	case "this":
		m.day = today.AddDate(0, 0, idx(wd)-idx(today.Weekday()))
	case "next":
		m.day = today.AddDate(0, 0, 7+idx(wd)-idx(today.Weekday()))
	default:
		m.day = today.AddDate(0, 0, (int(wd)-int(today.Weekday())+7)%7)
	}
	m.hasDay = true
	return true
}

func (m *moment) clock(h, min, sec int, part dayPart) bool {
	if h > 24 || min > 59 || sec > 59 || (h == 24 && (min > 0 || sec > 0)) {
		return false
	}
	m.h, m.m, m.s, m.hasClock = h%24, min, sec, true
	if part != partNone {
		m.part = part
	}
	return true
}

// applyPart shifts a 12-hour clock's hour into the part of the day.
func applyPart(h int, p dayPart) int {
	switch p {
	case partAM:
		if h == 12 {
			return 0
		}
	case partNoon:
		if h < 6 {
			return h + 12
		}
	case partPM:
		if h < 12 {
			return h + 12
		}
	case partNight:
		if h == 12 {
			return 0
		}
		if h >= 5 && h < 12 {
			return h + 12
		}
	}
	return h
}

func midnight(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
}

var (
	enWeekdays = map[string]time.Weekday{
		"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
		"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
	}
	zhWeekdays = map[string]time.Weekday{
		"一": time.Monday, "二": time.Tuesday, "三": time.Wednesday, "四": time.Thursday,
		"五": time.Friday, "六": time.Saturday, "日": time.Sunday, "天": time.Sunday,
		"1": time.Monday, "2": time.Tuesday, "3": time.Wednesday, "4": time.Thursday,
		"5": time.Friday, "6": time.Saturday, "7": time.Sunday,
	}
	zhParts = map[string]dayPart{
		"凌晨": partAM, "早上": partAM, "早晨": partAM, "清晨": partAM, "上午": partAM,
		"中午": partNoon, "下午": partPM, "傍晚": partPM, "晚上": partNight, "夜里": partNight, "夜间": partNight,
	}
	enNumbers = map[string]int{
		"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
		"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
	}
	months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

func monthNum(s string) int {
	for i, m := range months {
		if strings.HasPrefix(s, m) {
			return i + 1
		}
	}
	return 0
}

func yearOr(s string, now time.Time) int {
	if s == "" {
		return now.Year()
	}
	return atoi(s)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// smallNumber reads a number from 0 to 99 in digits, English words or
// Chinese characters (八, 十二, 二十三, 两).
func smallNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n < 10000
	}
	if n, ok := enNumbers[s]; ok {
		return n, true
	}
	digit := func(r rune) (int, bool) {
		i := strings.IndexRune("零一二三四五六七八九", r)
		if r == '〇' {
			return 0, true
		}
		if r == '两' {
			return 2, true
		}
		if i < 0 {
			return 0, false
		}
		return i / len("一"), true
	}
	rs := []rune(s)
	switch {
	case len(rs) == 1 && rs[0] == '十':
		return 10, true
	case len(rs) == 1:
		return digit(rs[0])
	case len(rs) == 2 && rs[0] == '十':
		d, ok := digit(rs[1])
		return 10 + d, ok
	case len(rs) == 2 && rs[1] == '十':
		d, ok := digit(rs[0])
		return 10 * d, ok
	case len(rs) == 3 && rs[1] == '十':
		a, ok1 := digit(rs[0])
		b, ok2 := digit(rs[2])
		return 10*a + b, ok1 && ok2
	}
	return 0, false
}
