package agent

import (
	"regexp"
	"strings"
	"unicode"
)

// This file pulls slots out of a request: URLs, cities, market symbols and
// conditions, reminder messages and topics. Every extractor reads the text
// with time expressions (and URLs, where they would confuse it) masked out.

// mask returns s with the byte ranges in spans replaced by spaces, keeping
// every other byte where it was.
func mask(s string, spans ...[2]int) string {
	b := []byte(s)
	for _, sp := range spans {
		for i := max(sp[0], 0); i < sp[1] && i < len(b); i++ {
			b[i] = ' '
		}
	}
	return string(b)
}

// squeeze collapses runs of white space into one space and trims the ends.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

var (
	urlRe      = regexp.MustCompile(`(?i)\bhttps?://[^\s"'<>()\[\]{}\p{Han}，。！？、；：“”]+`)
	bareHostRe = regexp.MustCompile(`(?i)(?:^|[^@\w.])((?:www\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|dev|cn|co|ai|app|edu|gov|me|info|xyz|site|cloud|tech)(?::\d+)?(?:/[^\s\p{Han}，。]*)?)`)
)

// findURL returns the first URL in s and where it is. A bare host name
// ("example.com/health") counts when there is no scheme-qualified URL.
func findURL(s string) (string, [2]int) {
	if loc := urlRe.FindStringIndex(s); loc != nil {
		u := strings.TrimRight(s[loc[0]:loc[1]], ".,;:!?'\"")
		return u, [2]int{loc[0], loc[0] + len(u)}
	}
	if m := bareHostRe.FindStringSubmatchIndex(s); m != nil {
		u := strings.TrimRight(s[m[2]:m[3]], ".,;:!?'\"")
		return u, [2]int{m[2], m[2] + len(u)}
	}
	return "", [2]int{}
}

// City patterns for cities not in the lexicon.
var (
	cityIsRe     = regexp.MustCompile(`城市\s*(?:是|为|:|=)\s*([\p{Han}]{2,6}|[A-Za-z][A-Za-z .'-]{1,30})`)
	cityShiRe    = regexp.MustCompile(`([\p{Han}]{2,4})市`)
	enCityRe     = regexp.MustCompile(`\b(?:in|for|at|to|of|visit|visiting)\s+((?:[A-Z][a-z'.-]+)(?:\s+[A-Z][a-z'.-]+){0,2})`)
	notShiCity   = set("超市", "股市", "城市", "上市", "夜市", "菜市", "门市", "集市", "楼市", "币市", "黑市", "开市", "闭市", "休市", "早市", "车市", "这个城市", "哪个城市")
	notCityWords = set("The", "My", "A", "An", "This", "That", "Next", "Every", "Each", "Today", "Tomorrow", "Tonight",
		"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
		"December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Celsius",
		"Fahrenheit", "English", "Chinese", "I", "Me", "Us", "It", "Please", "Hacker", "News", "AI", "GitHub")
	zhLeadVerbs = []string{"请", "帮我做", "帮我", "给我", "麻烦", "推送", "发送", "发我", "发给我", "告诉我", "通知我", "播报", "查询",
		"查一下", "查", "看看", "看一下", "报告", "提醒我", "一下", "下", "的", "关于", "生成", "写", "规划", "去", "到", "在"}
)

// findCity returns the city the request names: a known one first, then one
// named by a pattern ("城市是X", "X市", "in Springfield").
func findCity(s string) string { return findCityIn(s, true) }

// findCityIn is findCity; capitalised tells whether an unknown capitalised
// name after "in", "to" or "for" may be taken as a city.
func findCityIn(s string, capitalised bool) string {
	if name, at := cityMatcher.find(s); at >= 0 {
		return name
	}
	if m := cityIsRe.FindStringSubmatch(s); m != nil {
		return strings.TrimSpace(m[1])
	}
	for _, m := range cityShiRe.FindAllStringSubmatch(s, -1) {
		if c := stripLead(m[1]); len([]rune(c)) >= 2 && !notShiCity[m[1]+"市"] && !notShiCity[string(lastRune(c))+"市"] && !notShiCity[c+"市"] {
			return c
		}
	}
	if !capitalised {
		return ""
	}
	for _, m := range enCityRe.FindAllStringSubmatch(s, -1) {
		words := strings.Fields(m[1])
		for len(words) > 0 && notCityWords[words[0]] {
			words = words[1:]
		}
		for i, w := range words {
			if notCityWords[w] {
				words = words[:i]
				break
			}
		}
		if len(words) > 0 {
			return strings.Join(words, " ")
		}
	}
	return ""
}

// zhCityBefore finds an unknown Chinese city written just before a keyword,
// as in "推送临沂天气": the run of Han characters before the keyword with
// leading verbs stripped.
func zhCityBefore(s, keyword string) string {
	i := strings.Index(s, keyword)
	if i <= 0 {
		return ""
	}
	head := strings.TrimSuffix(s[:i], "的")
	rs := []rune(head)
	j := len(rs)
	for j > 0 && unicode.Is(unicode.Han, rs[j-1]) {
		j--
	}
	c := stripLead(string(rs[j:]))
	if n := len([]rune(c)); n < 2 || n > 4 || strings.ContainsAny(c, "天周月今明后每早晚午点时我你他的") {
		return ""
	}
	return c
}

// stripLead removes leading verbs and particles from a Chinese phrase.
func stripLead(s string) string {
	for changed := true; changed; {
		changed = false
		for _, v := range zhLeadVerbs {
			if rest, ok := strings.CutPrefix(s, v); ok {
				s, changed = rest, true
			}
		}
	}
	return s
}

// findSymbol returns the canonical market symbol the request names, from the
// lexicon or else a ticker in capitals ("AAPL", "$TSLA"), and where the name
// is (so that the 500 of "S&P 500" is not read as a price).
func findSymbol(s string) (string, [2]int) {
	best, span := "", [2]int{-1, -1}
	for _, sym := range symbolRules {
		for _, zh := range sym.zh {
			if i := strings.Index(s, zh); i >= 0 && (span[0] < 0 || i < span[0]) {
				best, span = sym.canon, [2]int{i, i + len(zh)}
			}
		}
		if loc := sym.en.FindStringIndex(s); loc != nil && (span[0] < 0 || loc[0] < span[0]) {
			best, span = sym.canon, [2]int{loc[0], loc[1]}
		}
	}
	if best != "" {
		return best, span
	}
	for _, m := range tickerRe.FindAllStringSubmatchIndex(s, -1) {
		if m[2] >= 0 {
			return strings.ToUpper(s[m[2]:m[3]]), [2]int{m[0], m[1]}
		}
		if t := s[m[4]:m[5]]; !notTickers[t] {
			return t, [2]int{m[0], m[1]}
		}
	}
	return "", [2]int{}
}

var tickerRe = regexp.MustCompile(`\$([A-Za-z]{1,5})\b|\b([A-Z]{2,5})\b`)

// symbolRule is a compiled symbolTable entry.
type symbolRule struct {
	canon string
	en    *regexp.Regexp
	zh    []string
}

var symbolRules = func() []symbolRule {
	var out []symbolRule
	for _, s := range symbolTable {
		var en []string
		for _, w := range s.en {
			en = append(en, regexp.QuoteMeta(w))
		}
		out = append(out, symbolRule{s.canon, regexp.MustCompile(`(?i)\b(?:` + strings.Join(en, "|") + `)\b`), s.zh})
	}
	return out
}()

// Direction cues in three tiers: verbs of movement, comparisons, and weak
// "reaches" words. The earliest cue of the strongest tier present decides.
var directionTiers = []struct{ down, up *regexp.Regexp }{
	{
		regexp.MustCompile(`(?i)\b(?:drops?|dropped|dropping|falls?|fell|falling|dips?|dipped|declines?|declined|sinks?|sank|plunges?|plummets?|crash(?:es)?|tanks?|slides?|loses?|go(?:es)?\s+down|is\s+down|down\s+(?:by\s+)?\d)\b|跌|降|下滑|下挫|回落|贬值`),
		regexp.MustCompile(`(?i)\b(?:rises?|rose|rising|climbs?|climbed|jumps?|jumped|surges?|surged|soars?|spikes?|gains?|go(?:es)?\s+up|is\s+up|up\s+(?:by\s+)?\d|rallies)\b|涨|升|攀升|飙|升值`),
	},
	{
		regexp.MustCompile(`(?i)\b(?:below|under|beneath|less\s+than|lower\s+than|cheaper\s+than)\b|低于|少于|小于|不到|不足`),
		regexp.MustCompile(`(?i)\b(?:above|over|exceeds?|exceeded|more\s+than|higher\s+than|greater\s+than|tops?|breaks?|crosses)\b|高于|超过|大于|突破|站上|超出`),
	},
	{
		nil,
		regexp.MustCompile(`(?i)\b(?:hits?|reach(?:es)?|gets?\s+to|goes\s+to)\b|达到|到达|到`),
	},
}

// findDirection returns "up", "down" or "".
func findDirection(s string) string {
	for _, tier := range directionTiers {
		d, u := -1, -1
		if tier.down != nil {
			if loc := tier.down.FindStringIndex(s); loc != nil {
				d = loc[0]
			}
		}
		if loc := tier.up.FindStringIndex(s); loc != nil {
			u = loc[0]
		}
		switch {
		case d >= 0 && (u < 0 || d < u):
			return "down"
		case u >= 0:
			return "up"
		}
	}
	return ""
}

// condition is a price trigger: a threshold or a percentage and a direction.
type condition struct {
	threshold, percent *float64
	direction          string
}

// findCondition reads the first threshold and the first percentage in s.
func findCondition(s string) condition {
	var c condition
	for _, a := range amounts(s) {
		v := a.value
		switch {
		case a.percent && c.percent == nil:
			c.percent = &v
		case !a.percent && c.threshold == nil:
			c.threshold = &v
		}
	}
	c.direction = findDirection(s)
	return c
}

// Reminder message patterns, tried in order on text with times masked.
var (
	enMessageRes = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\bremind\s+me\b\s*(?:again\s+)?(?:(?:to|about|of|that|re:?)\s+)?(.*)$`),
		regexp.MustCompile(`(?i)\b(?:set|create|add|make|schedule)\s+(?:me\s+)?(?:a|an)\s+(?:\w+\s+)?reminder\s+(?:(?:to|about|for|that)\s+)?(.*)$`),
		regexp.MustCompile(`(?i)\bdon'?t\s+let\s+me\s+forget\s+(?:(?:to|about)\s+)?(.*)$`),
		regexp.MustCompile(`(?i)\breminder\s*[:：-]\s*(.*)$`),
		regexp.MustCompile(`(?i)\breminder\s+(?:to|about|that)\s+(.*)$`),
		regexp.MustCompile(`(?i)\b(?:tell|ping|text|notify|alert)\s+me\s+to\s+(.*)$`),
	}
	wakeRe       = regexp.MustCompile(`(?i)\bwake\s+me(?:\s+up)?\b`)
	alarmRe      = regexp.MustCompile(`(?i)\b(?:set|create|add)\s+(?:an?\s+)?alarm\b`)
	zhMessageRes = []*regexp.Regexp{
		regexp.MustCompile(`提醒(?:一下|下)?我(?:一下)?(.*)$`),
		regexp.MustCompile(`叫(?:一下)?我(.*)$`),
		regexp.MustCompile(`(?:记得|别忘了|别忘记|不要忘了|不要忘记)(.*)$`),
		regexp.MustCompile(`(?:设|设置|定)(?:一)?个?提醒[,，:：]?(.*)$`),
	}
	enMsgEdgeRe  = regexp.MustCompile(`(?i)^(?:to|about|that|of|please|and|then|,)\s+|\s+(?:please|at|on|in|by|every|each|for|and|then|from|starting|beginning)$`)
	zhMsgTrim    = "，,。.！!？?~～ 吧哦啊呀哈了"
	zhMsgLead    = []string{"一下", "要", "该", "的是", "：", ":", "，", ","}
	enMsgBefore  = regexp.MustCompile(`(?i)^(?:please|hey|ok|okay)\s+`)
	zhBeforeTail = []string{"的时候", "时候", "时", "的话", "，", ",", "就", "请", "记得", "要", "得"}
)

// findMessage returns what a reminder is about, the span of s it came from,
// and whether the request was phrased as a reminder at all.
func findMessage(s string, zh bool) (msg string, span [2]int, ok bool) {
	if zh {
		return findZhMessage(s)
	}
	for _, re := range enMessageRes {
		if m := re.FindStringSubmatchIndex(s); m != nil {
			if msg = cleanEnMessage(s[m[2]:m[3]]); msg != "" {
				return msg, [2]int{m[2], m[3]}, true
			}
			return cleanEnMessage(enMsgBefore.ReplaceAllString(s[:m[0]], "")), [2]int{0, m[0]}, true
		}
	}
	if loc := wakeRe.FindStringIndex(s); loc != nil {
		return "wake up", [2]int{loc[0], loc[1]}, true
	}
	if loc := alarmRe.FindStringIndex(s); loc != nil {
		return "alarm", [2]int{loc[0], loc[1]}, true
	}
	return "", [2]int{}, false
}

func cleanEnMessage(s string) string {
	s = squeeze(strings.Trim(s, " .!?,;:"))
	for prev := ""; prev != s; {
		prev = s
		s = squeeze(enMsgEdgeRe.ReplaceAllString(s, ""))
		s = strings.Trim(s, " .!?,;:")
	}
	if !strings.ContainsFunc(s, unicode.IsLetter) || enFiller[strings.ToLower(s)] {
		return ""
	}
	return s
}

// enFiller are words that may be left where a message should be.
var enFiller = set("please", "pls", "now", "thanks", "thank you", "ok", "okay", "again", "later", "then", "too", "also")

func findZhMessage(s string) (string, [2]int, bool) {
	for _, re := range zhMessageRes {
		m := re.FindStringSubmatchIndex(s)
		if m == nil {
			continue
		}
		if msg := cleanZhMessage(s[m[2]:m[3]]); msg != "" {
			return msg, [2]int{m[2], m[3]}, true
		}
		before := cleanZhMessage(stripLead(squeeze(s[:m[0]])))
		for changed := true; changed; {
			changed = false
			for _, t := range zhBeforeTail {
				if rest, ok := strings.CutSuffix(before, t); ok {
					before, changed = strings.TrimSpace(rest), true
				}
			}
		}
		return cleanZhMessage(before), [2]int{0, m[0]}, true
	}
	return "", [2]int{}, false
}

func cleanZhMessage(s string) string {
	s = strings.Join(strings.Fields(s), "")
	for changed := true; changed; {
		changed = false
		s = strings.Trim(s, zhMsgTrim)
		for _, l := range zhMsgLead {
			if rest, ok := strings.CutPrefix(s, l); ok {
				s, changed = rest, true
			}
		}
		if rest, ok := strings.CutSuffix(s, "一下"); ok {
			s, changed = rest, true
		}
	}
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.Is(unicode.Han, r) }) {
		return ""
	}
	return s
}

// Topic patterns.
var (
	enNewsAboutRe  = regexp.MustCompile(`(?i)\b(?:news|headlines|stories|articles|updates)\s+(?:about|on|regarding|related\s+to|from|in|for)\s+([^,.;!?]+)`)
	enBeforeNewsRe = regexp.MustCompile(`(?i)((?:[\w'&.-]+\s+){1,3})(?:news|headlines)\b`)
	zhAboutRe      = regexp.MustCompile(`关于\s*(.+?)\s*的`)
	zhBeforeNewsRe = regexp.MustCompile(`([\p{Han}A-Za-z0-9]+?)(?:的)?(?:新闻|资讯|头条|热点|快讯|动态|要闻|热搜|热榜|热门)`)
	enStopTopic    = set("top", "latest", "the", "daily", "today's", "todays", "morning", "evening", "week's", "weeks",
		"a", "an", "of", "me", "some", "breaking", "send", "get", "give", "show", "tell", "summary", "digest", "my",
		"weekly", "recent", "new", "all", "any", "major", "big", "important", "key", "headline", "with", "and", "us",
		"push", "post", "fetch", "compile", "summarize", "summarise", "deliver", "email", "text", "read", "day's")
	enReportRe = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(?:report|analysis|overview|summary|brief|briefing|study|research|whitepaper|article|essay|guide|review|paper|deep dive|proposal)\s+(?:on|about|of|regarding|into|covering|for|to)\s+([^,.;!?]+)`),
		regexp.MustCompile(`(?i)^(?:please\s+)?research\s+([^,.;!?]+?)(?:\s+and\b|$)`),
		regexp.MustCompile(`(?i)\b(?:write|draft|prepare|generate|create|produce|compile|make|do)\s+(?:me\s+)?(?:a|an|the|my)?\s*(.+?)\s+(?:report|analysis|overview|whitepaper|study|proposal|essay|article|review)\b`),
	}
	enReportLead = regexp.MustCompile(`(?i)^(?:(?:the|a|an|detailed|comprehensive|full|brief|short|long|in-depth|quick|thorough|current|state|of|latest)\s+)+`)
	zhReportRe   = regexp.MustCompile(`([\p{Han}A-Za-z0-9]+?)(?:的)?(?:深度分析报告|研究报告|调研报告|分析报告|行业报告|报告|周报|月报|日报|分析|综述|调研|白皮书|攻略|方案)`)
	zhStudyRe    = regexp.MustCompile(`(?:调研|研究|分析|了解)(?:一下)?\s*([\p{Han}A-Za-z0-9]{2,})`)
)

// findNewsTopic returns what news the request asks for, in the user's words.
func findNewsTopic(s string) string {
	if t := lexiconTopic(s); t != "" {
		return t
	}
	if m := enNewsAboutRe.FindStringSubmatch(s); m != nil {
		return trimTopic(m[1])
	}
	if m := zhAboutRe.FindStringSubmatch(s); m != nil {
		return squeeze(m[1])
	}
	if m := enBeforeNewsRe.FindStringSubmatch(s); m != nil {
		words := strings.Fields(m[1])
		i := len(words)
		for i > 0 && !enStopTopic[strings.ToLower(words[i-1])] {
			i--
		}
		if t := strings.Join(words[i:], " "); t != "" {
			return t
		}
	}
	if m := zhBeforeNewsRe.FindStringSubmatch(s); m != nil {
		if t := stripLead(m[1]); t != "" && !strings.ContainsAny(t, "我你天周月") {
			return t
		}
	}
	return ""
}

// lexiconTopic returns the first known topic in s as the user wrote it.
func lexiconTopic(s string) string {
	best, at := "", -1
	for _, t := range topicRules {
		for _, zh := range t.zh {
			if i := strings.Index(s, zh); i >= 0 && (at < 0 || i < at) {
				best, at = zh, i
			}
		}
		if loc := t.en.FindStringIndex(s); loc != nil && (at < 0 || loc[0] < at) {
			best, at = s[loc[0]:loc[1]], loc[0]
		}
	}
	return best
}

// topicRule is a compiled topicTable entry.
type topicRule struct {
	en *regexp.Regexp
	zh []string
}

var topicRules = func() []topicRule {
	var out []topicRule
	for _, t := range topicTable {
		var en []string
		for _, w := range t.en {
			en = append(en, regexp.QuoteMeta(w))
		}
		out = append(out, topicRule{regexp.MustCompile(`(?i)\b(?:` + strings.Join(en, "|") + `)\b`), t.zh})
	}
	return out
}()

// findReportTopic returns the subject of a report or guide.
func findReportTopic(s string) string {
	for _, re := range enReportRe {
		if m := re.FindStringSubmatch(s); m != nil {
			if t := trimTopic(enReportLead.ReplaceAllString(squeeze(m[1]), "")); t != "" {
				return t
			}
		}
	}
	if m := zhAboutRe.FindStringSubmatch(s); m != nil {
		return squeeze(m[1])
	}
	for _, m := range zhReportRe.FindAllStringSubmatch(s, -1) {
		t := stripLead(m[1])
		for _, p := range []string{"一份", "一篇", "一个", "份", "篇", "本周", "这周", "本月", "最新"} {
			t = strings.TrimPrefix(t, p)
		}
		if t = stripLead(t); len([]rune(t)) >= 2 {
			return t
		}
	}
	if m := zhStudyRe.FindStringSubmatch(s); m != nil && !strings.HasPrefix(m[1], "报告") {
		return m[1]
	}
	return ""
}

var topicTailRe = regexp.MustCompile(`(?i)\s+(?:and|then|every|each|daily|weekly|please|for\s+me|by|before|at|on|in|to\s+me)(?:\s.*)?$`)

func trimTopic(s string) string {
	s = squeeze(s)
	for prev := ""; prev != s; {
		prev = s
		s = squeeze(topicTailRe.ReplaceAllString(s, ""))
	}
	s = strings.Trim(s, " .,;:!?'\"")
	if enStopTopic[strings.ToLower(s)] {
		return "" // "write a report": the article is no topic
	}
	return s
}
