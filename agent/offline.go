package agent

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
)

// PlanOffline reads one request with rules alone, in English or Chinese, and
// returns its Plan. It needs no network and no model, and the same request
// always yields the same plan. It never fails: what it cannot read becomes a
// chat intent or a missing slot with a question to ask back.
func PlanOffline(r Request) Plan {
	loc := r.TZ
	if loc == nil {
		loc = time.UTC
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.In(loc).Truncate(time.Minute)

	u := readUtterance(r.Text)
	p := Plan{Language: "en", Missing: []string{}}
	if u.zh {
		p.Language = "zh"
	}
	if intent, verb := manageIntent(u.text, u.zh); intent != "" {
		p.Intent = intent
		p.Reasoning = reasonManage(intent, verb, u.zh)
		return p
	}
	f := u.features()
	if !f.wantsTask() {
		p.Intent = IntentChat
		p.Reasoning = pick(u.zh, "No task to create or manage in this message; answer it as chat.",
			"这条消息不是要创建或管理任务，按聊天回答。")
		return p
	}
	p.Intent = IntentCreate
	p.Kind, p.Domain = f.kindAndDomain()
	p.Schedule = u.when.schedule(now, p.Kind)
	p.Slots = f.slots(p.Domain)
	p.Missing = missing(p, f)
	p.Question = question(p.Missing, p.Domain, u.zh)
	p.Reasoning = reasonCreate(p, loc, u.zh)
	return p
}

// utterance is a request's text prepared for the rules.
type utterance struct {
	text    string   // normalised: ASCII forms of full-width characters, plain quotes
	zh      bool     // the text contains Chinese
	url     string   // the first URL, if any
	urlSpan [2]int   // where it is in text
	when    *when    // the time expressions
	rest    string   // text with the URL and time expressions masked by spaces
	spans   [][2]int // everything masked in rest
}

func readUtterance(raw string) utterance {
	u := utterance{text: normalize(raw)}
	u.zh = strings.ContainsFunc(u.text, func(r rune) bool { return unicode.Is(unicode.Han, r) })
	u.url, u.urlSpan = findURL(u.text)
	u.when = parseWhen(mask(u.text, u.urlSpan))
	u.spans = [][2]int{u.urlSpan}
	for _, sp := range u.when.spans {
		u.spans = append(u.spans, withPreposition(u.text, sp))
	}
	u.rest = mask(u.text, u.spans...)
	return u
}

var prepositionRe = regexp.MustCompile(`(?i)\b(?:at|on|in|by|around|from|until|before|starting|this|next|coming|for)\s*$`)

// withPreposition widens a time span over the English preposition just
// before it ("at 6pm", "on Friday"), so that masking the time does not leave
// the preposition stranded in a reminder's message.
func withPreposition(text string, sp [2]int) [2]int {
	if loc := prepositionRe.FindStringIndex(text[:sp[0]]); loc != nil {
		sp[0] = loc[0]
	}
	return sp
}

// normalize folds full-width ASCII (，：５％) to ASCII, curly quotes to
// straight ones and odd spaces to plain ones, and drops invalid UTF-8.
func normalize(s string) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		case r == 0x3000 || r == 0xA0 || r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case r == '‘' || r == '’':
			r = '\''
		case r == '“' || r == '”':
			r = '"'
		case r == '–':
			r = '-'
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// Management intents: a verb that acts on existing tasks opens the request
// (after politeness), or, in Chinese, closes it ("天气任务暂停一下") or
// follows 把.
var (
	enPoliteRe = regexp.MustCompile(`(?i)^(?:(?:please|pls|plz|hey|hi|hello|ok|okay|so|now|vigil|can you|could you|would you|will you|kindly|i want to|i'd like to|i would like to|i need to|i wanna|help me|go ahead and|let's|just)\b[\s,!.]*)+`)
	enManage   = []struct {
		intent string
		re     *regexp.Regexp
	}{
		{IntentDelete, regexp.MustCompile(`(?i)^get\s+rid\s+of\b`)},
		{IntentList, regexp.MustCompile(`(?i)^(?:list|show|display|view|see|get|give me|check|review|tell me)\b.{0,30}?\b(?:i(?:'ve| have)\s+(?:scheduled|set up|subscribed|created)|scheduled|active|running)\b`)},
		{IntentList, regexp.MustCompile(`(?i)^(?:list|show|display|view|see|get|give me|check|review|what are|what're|which are)\b.{0,40}?\b(?:tasks?|reminders?|subscriptions?|alerts?|monitors?|jobs?|schedules?|automations?|digests?)\b`)},
		{IntentList, regexp.MustCompile(`(?i)^(?:what|which)\b.{0,40}?\b(?:tasks?|reminders?|subscriptions?|alerts?|monitors?|jobs?|automations?)\b.{0,30}?\b(?:have|got|set|running|active|scheduled|there|exist)\b`)},
		{IntentList, regexp.MustCompile(`(?i)^what(?:'s| is| have i| do i have)\s+(?:scheduled|running|set up|subscribed)`)},
		{IntentList, regexp.MustCompile(`(?i)^(?:do|have)\s+i\s+(?:have|got|set)\b.{0,30}?\b(?:tasks?|reminders?|subscriptions?|alerts?|monitors?|jobs?)\b`)},
		{IntentList, regexp.MustCompile(`(?i)^(?:list|(?:all\s+)?my\s+(?:tasks|reminders|subscriptions|alerts|jobs)|(?:list|show)\s+(?:me\s+)?(?:everything|all))\W*$`)},
		{IntentRun, regexp.MustCompile(`(?i)^(?:run|trigger|execute|rerun|re-run|fire)\s+(?:my|the|this|that|it|now|again|all)\b`)},
		{IntentRun, regexp.MustCompile(`(?i)^(?:run|trigger|execute|rerun|re-run)\b.*\b(?:now|immediately|right away|once)\b`)},
		{IntentRun, regexp.MustCompile(`(?i)^kick\s+off\s+(?:my|the)\b`)},
		{IntentPause, regexp.MustCompile(`(?i)^(?:pause|suspend|halt|disable|mute|deactivate|freeze|silence)\b`)},
		{IntentPause, regexp.MustCompile(`(?i)^stop(?:\W*$|\s+(?:the|my|all|that|this|it|those|these|every|daily|weekly|any|\w+ing)\b)`)},
		{IntentPause, regexp.MustCompile(`(?i)^turn\b.*\boff\b`)},
		{IntentPause, regexp.MustCompile(`(?i)^(?:put|place)\b.*\bon\s+hold\b`)},
		{IntentPause, regexp.MustCompile(`(?i)^hold\s+off\b`)},
		{IntentPause, regexp.MustCompile(`(?i)^(?:don'?t|do not|never)\s+(?:send|remind|notify|alert|push|text|email|tell|ping)\b.*\b(?:anymore|any more|again|for now|for a while|until)\b`)},
		{IntentPause, regexp.MustCompile(`(?i)^no\s+more\b`)},
		{IntentResume, regexp.MustCompile(`(?i)^(?:resume|unpause|un-pause|restart|reactivate|re-enable|reenable|enable|unmute|restore|reinstate|continue)\b`)},
		{IntentResume, regexp.MustCompile(`(?i)^turn\b.*\bon\b`)},
		{IntentResume, regexp.MustCompile(`(?i)^start\b.*\bagain\b`)},
		{IntentDelete, regexp.MustCompile(`(?i)^(?:delete|remove|cancel|drop|erase|clear|unsubscribe|kill|trash|discard|dismiss)\b`)},
		{IntentDelete, regexp.MustCompile(`(?i)^(?:i\s+)?(?:don'?t|do not)\s+(?:want|need)\b.*\b(?:anymore|any more|any longer)\b`)},
	}
	zhPoliteRe = regexp.MustCompile(`^(?:请|麻烦你?|帮我|帮忙|给我|你|能不能|能否|可以|可不可以|我想要|我想|我要|我需要|先|把|现在就|马上就|立即就|立刻就)+`)
	zhVerbs    = []struct{ verb, intent string }{
		{"取消暂停", IntentResume}, {"重新开启", IntentResume}, {"重新启用", IntentResume}, {"重新打开", IntentResume},
		{"恢复", IntentResume}, {"继续", IntentResume}, {"重启", IntentResume}, {"启用", IntentResume},
		{"立即执行", IntentRun}, {"立刻执行", IntentRun}, {"马上执行", IntentRun}, {"现在执行", IntentRun},
		{"立即运行", IntentRun}, {"立刻运行", IntentRun}, {"马上运行", IntentRun}, {"现在运行", IntentRun},
		{"手动执行", IntentRun}, {"手动运行", IntentRun}, {"手动触发", IntentRun}, {"立即触发", IntentRun},
		{"执行", IntentRun}, {"运行", IntentRun}, {"触发", IntentRun}, {"跑一下", IntentRun}, {"跑一次", IntentRun},
		{"暂停", IntentPause}, {"停止", IntentPause}, {"停掉", IntentPause}, {"停用", IntentPause}, {"先停", IntentPause},
		{"关闭", IntentPause}, {"关掉", IntentPause}, {"不要再", IntentPause}, {"别再", IntentPause}, {"不再", IntentPause},
		{"删除", IntentDelete}, {"删掉", IntentDelete}, {"删了", IntentDelete}, {"移除", IntentDelete}, {"去掉", IntentDelete},
		{"取消", IntentDelete}, {"清除", IntentDelete}, {"清空", IntentDelete}, {"撤销", IntentDelete},
	}
	zhList = []*regexp.Regexp{
		regexp.MustCompile(`^(?:列出|查看|看看|看一下|看下|显示|列一下|查一下)(?:一下)?(?:我的|所有的?|全部的?|现在的?)?.{0,8}?(?:任务|提醒|订阅|监控|定时|推送)`),
		regexp.MustCompile(`(?:我|我的)?(?:都|现在|目前)?有(?:哪些|什么|几个|多少)(?:个)?(?:任务|提醒|订阅|监控|定时|推送)`),
		regexp.MustCompile(`^(?:我的|所有)(?:任务|提醒|订阅|监控)(?:列表|清单)?(?:有哪些|是什么)?[?]?$`),
		regexp.MustCompile(`(?:任务|提醒|订阅)(?:列表|清单)`),
		regexp.MustCompile(`(?:订阅|设置|设|定)了(?:哪些|什么)(?:任务|提醒)?`),
	}
	zhCreateCue = regexp.MustCompile(`提醒我|叫我|通知我|告诉我`)
	zhTailTrim  = regexp.MustCompile(`(?:一下|吧|了|啊|呀|哦|。|!|\.|\?|~|\s)+$`)
)

// manageIntent returns the management intent of text and the verb that
// showed it, or "" when the request is not about existing tasks.
func manageIntent(text string, zh bool) (intent, verb string) {
	en := enPoliteRe.ReplaceAllString(text, "")
	for _, r := range enManage {
		if m := r.re.FindString(en); m != "" {
			return r.intent, strings.Fields(m)[0]
		}
	}
	if !zh {
		return "", ""
	}
	s := zhPoliteRe.ReplaceAllString(text, "")
	for _, re := range zhList {
		if re.MatchString(text) || re.MatchString(s) {
			return IntentList, "查看"
		}
	}
	for _, v := range zhVerbs {
		if strings.HasPrefix(s, v.verb) {
			return v.intent, v.verb
		}
	}
	if zhCreateCue.MatchString(text) {
		return "", ""
	}
	tail := zhTailTrim.ReplaceAllString(s, "")
	for _, v := range zhVerbs {
		if strings.HasSuffix(tail, v.verb) {
			return v.intent, v.verb
		}
	}
	return "", ""
}

// features are the signals the rules found in a create request.
type features struct {
	u          utterance
	domainText string // rest without a reminder's to-do, for domain keywords

	message      string
	remind       bool
	weather      bool
	news         bool
	newsEvent    bool // "tell me when there is news about X"
	longRunning  bool
	report       bool // report words ("daily report", "周报") without a writing verb
	notifyWhen   bool // "let me know if", "alert me when", "…时通知我"
	web          bool // a URL, or site words with a check verb
	watch        bool
	deliver      bool
	question     bool
	symbol       string
	cond         condition
	priceContext bool
}

var (
	enQuestionRe = regexp.MustCompile(`(?i)^(?:what|what's|whats|how|why|where|who|which|when|is|are|does|do|did|was|were|should)\b`)
	zhQuestionRe = regexp.MustCompile(`[吗呢么][?]?$|怎么样|多少|什么|哪些|为什么|如何|怎么|是不是|能不能`)
	notifyWhenRe = regexp.MustCompile(`(?i)\b(?:tell|let|notify|alert|ping|text|email|message|warn)\s+me\b.{0,20}\b(?:when|whenever|if|as soon as|once)\b|^(?:when|whenever|if|once|as soon as)\b.*\b(?:tell|let|notify|alert|ping|text|email|message|warn)\s+me\b|(?:时|的时候|就)(?:提醒|通知|告诉|叫)我|一旦|如果`)
	newsEventRe  = regexp.MustCompile(`(?i)\b(?:tell|let|notify|alert|ping|text|email)\s+me\b.{0,20}\b(?:when|whenever|if|as soon as|once)\b|\b(?:when|whenever|as soon as|once)\s+there\b|一旦|有.{0,12}(?:新闻|消息).{0,6}(?:时|就)`)
	travelRe     = regexp.MustCompile(`(?i)\b(?:trip|travel|travell?ing|vacation|holiday|itinerary|journey|tour|visit|visiting|getaway|honeymoon|guide)\b|旅行|旅游|攻略|行程|游玩|出游|自由行|[一二两三四五六七八九十\d]+日游`)
	aboutTailRe  = regexp.MustCompile(`(?i)\b(?:about|of|re:?)\s*$`)
	zhActionHead = "去看买吃喝交打写做开参取拿带给还收送接回发提办洗读学练跑起睡关检查订预缴充续换修约见准备复填签存浇喂遛背练听搬寄退"
)

func (u utterance) features() features {
	f := features{u: u, domainText: u.rest}
	msg, span, ok := findMessage(u.rest, u.zh)
	f.message, f.remind = msg, ok || remindWords.in(u.rest)
	if ok && msg != "" && messageIsTodo(u.rest, span, msg, u.zh) {
		f.domainText = mask(u.rest, span)
	}
	d := f.domainText
	f.weather = weatherWords.in(d)
	f.news = newsWords.in(d)
	f.newsEvent = f.news && newsEventRe.MatchString(u.text)
	f.longRunning = longRunningWords.in(d)
	f.report = reportWords.in(d)
	f.notifyWhen = notifyWhenRe.MatchString(u.text)
	f.watch = watchWords.in(u.rest)
	f.deliver = deliverWords.in(u.rest)
	f.web = u.url != "" || webWords.in(d) && (checkWords.in(d) || f.watch)
	f.question = enQuestionRe.MatchString(enPoliteRe.ReplaceAllString(u.text, "")) || u.zh && zhQuestionRe.MatchString(u.text)
	var symbolSpan [2]int
	f.symbol, symbolSpan = findSymbol(u.rest)
	f.cond = findCondition(mask(u.rest, symbolSpan))
	f.priceContext = priceWords.in(u.rest) || f.cond.percent != nil
	return f
}

// messageIsTodo reports whether a reminder's message is something the user
// has to do ("to call mom", "提醒我看天气预报") rather than the subject of the
// task ("about the weather in Paris", "提醒我北京的天气").
func messageIsTodo(rest string, span [2]int, msg string, zh bool) bool {
	if zh {
		return strings.ContainsRune(zhActionHead, firstRune(msg))
	}
	return !aboutTailRe.MatchString(rest[:span[0]])
}

// priceMonitor reports whether the request sets a price condition.
func (f features) priceMonitor() bool {
	c := f.cond
	hasLevel := c.threshold != nil || c.percent != nil
	switch {
	case f.symbol != "":
		return hasLevel && (c.direction != "" || f.priceContext)
	default:
		return hasLevel && c.direction != "" && f.priceContext
	}
}

// wantsTask reports whether the request asks for a task to be created.
func (f features) wantsTask() bool {
	w := f.u.when
	switch {
	case f.remind, f.priceMonitor(), f.newsEvent:
		return true
	case w.recurring() && (f.deliver || f.weather || f.news || f.priceContext || f.web || f.longRunning || f.report):
		return true
	case f.question:
		return false
	case f.u.url != "" && (w.every > 0 || checkWords.in(f.u.rest) || f.watch || f.notifyWhen):
		return true
	case f.weather && f.notifyWhen:
		return true
	case f.watch && (f.symbol != "" || f.web):
		return true
	case f.longRunning:
		return true
	case w.oneShot() && f.deliver:
		return true
	}
	return false
}

// kindAndDomain decides what sort of task the request describes.
func (f features) kindAndDomain() (kind, domain string) {
	w := f.u.when
	timed := KindOneShot
	if w.recurring() {
		timed = KindPeriodic
	}
	switch {
	case f.web:
		switch {
		case w.every > 0 || !w.any():
			return KindMonitor, DomainWeb
		}
		return timed, DomainWeb
	case f.priceMonitor():
		return KindMonitor, DomainPrice
	case f.watch && f.symbol != "" && !w.recurring():
		return KindMonitor, DomainPrice
	case f.newsEvent && !w.recurring():
		return KindMonitor, DomainNews
	case f.weather && f.notifyWhen && !w.recurring() && !w.clock.set:
		return KindMonitor, DomainWeather // "let me know if it rains tomorrow"
	case f.longRunning && !w.firmlyRecurring():
		return KindLongRunning, DomainReport
	case f.weather:
		return timed, DomainWeather
	case f.news:
		return timed, DomainNews
	case f.longRunning, f.report && w.recurring():
		return timed, DomainReport
	case f.symbol != "" && f.priceContext:
		return timed, DomainPrice
	}
	return timed, DomainReminder
}

// slots returns the slots that matter for the domain.
func (f features) slots(domain string) map[string]any {
	s := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			s[k] = v
		}
	}
	switch domain {
	case DomainWeather:
		put(SlotCity, f.city(true, "天气"))
	case DomainReminder:
		put(SlotMessage, f.message)
	case DomainNews:
		put(SlotTopic, findNewsTopic(f.domainText))
	case DomainWeb:
		put(SlotURL, f.u.url)
	case DomainReport:
		put(SlotCity, f.city(travelRe.MatchString(f.u.rest), "旅游", "旅行", "攻略", "行程"))
		put(SlotTopic, findReportTopic(f.domainText))
	case DomainPrice:
		put(SlotSymbol, f.symbol)
		put(SlotDirection, f.cond.direction)
		if f.cond.threshold != nil {
			s[SlotThreshold] = *f.cond.threshold
		}
		if f.cond.percent != nil {
			s[SlotPercent] = *f.cond.percent
		}
	}
	return s
}

// city finds the city in the request, trying an unknown Chinese name written
// just before one of the keywords as a last resort.
func (f features) city(capitalised bool, keywords ...string) string {
	if c := findCityIn(f.u.rest, capitalised); c != "" {
		return c
	}
	for _, k := range keywords {
		if c := zhCityBefore(f.u.rest, k); c != "" {
			return c
		}
	}
	if name, at := destinationMatcher.find(f.u.rest); at >= 0 && travelRe.MatchString(f.u.rest) {
		return name
	}
	return ""
}

// missing lists the required slots the plan lacks.
func missing(p Plan, f features) []string {
	out := []string{}
	has := func(k string) bool { _, ok := p.Slots[k]; return ok }
	switch p.Domain {
	case DomainWeather:
		if !has(SlotCity) {
			out = append(out, SlotCity)
		}
	case DomainReminder:
		if !has(SlotMessage) {
			out = append(out, SlotMessage)
		}
	case DomainPrice:
		if !has(SlotSymbol) {
			out = append(out, SlotSymbol)
		}
		if p.Kind == KindMonitor && !has(SlotThreshold) && !has(SlotPercent) {
			out = append(out, SlotThreshold)
		}
	case DomainWeb:
		if !has(SlotURL) {
			out = append(out, SlotURL)
		}
	case DomainReport:
		if !has(SlotTopic) && !has(SlotCity) {
			out = append(out, SlotTopic)
		}
	}
	if (p.Kind == KindPeriodic || p.Kind == KindOneShot) && p.Schedule == nil {
		out = append(out, SlotTime)
	}
	return out
}

// questions holds the clarifying question for each slot, in English and
// Chinese.
var questions = map[string][2]string{
	SlotCity:      {"Which city is it for?", "请问是哪个城市？"},
	SlotTime:      {"When should it run? Please give a time, such as 8am.", "请问具体什么时间？比如早上8点。"},
	SlotMessage:   {"What should I remind you about?", "要提醒你做什么事？"},
	SlotSymbol:    {"Which asset should I watch (for example gold, BTC or AAPL)?", "要关注哪个品种（比如黄金、比特币或AAPL）？"},
	SlotThreshold: {"At what price or percentage change should I alert you?", "涨跌到什么价格或幅度时通知你？"},
	SlotURL:       {"Which URL should I check?", "要检查哪个网址？"},
	SlotTopic:     {"What topic should it cover?", "主题是什么？"},
}

// zhSlotNames names slots in Chinese reasoning.
var zhSlotNames = map[string]string{
	SlotCity: "城市", SlotMessage: "提醒内容", SlotTopic: "主题", SlotURL: "网址", SlotSymbol: "标的",
	SlotThreshold: "阈值", SlotPercent: "涨跌幅", SlotDirection: "方向", SlotTime: "时间",
}

// question joins the questions for the missing slots in the user's language.
func question(missing []string, domain string, zh bool) string {
	var qs []string
	for _, slot := range missing {
		q := questions[slot]
		if slot == SlotCity && domain == DomainWeather {
			q = [2]string{"Which city's weather do you want?", "请问要哪个城市的天气？"}
		}
		qs = append(qs, pick(zh, q[0], q[1]))
	}
	return strings.Join(qs, pick(zh, " ", ""))
}

var (
	kindNames   = map[string][2]string{KindPeriodic: {"periodic", "周期"}, KindOneShot: {"one-shot", "一次性"}, KindMonitor: {"monitor", "监控"}, KindLongRunning: {"long-running", "长时"}}
	domainNames = map[string][2]string{DomainWeather: {"weather", "天气"}, DomainPrice: {"price", "价格"}, DomainNews: {"news", "新闻"}, DomainReminder: {"reminder", "提醒"}, DomainWeb: {"web", "网站"}, DomainReport: {"report", "报告"}}
	intentNames = map[string][2]string{IntentList: {"list their tasks", "查看任务列表"}, IntentPause: {"pause an existing task", "暂停已有任务"}, IntentResume: {"resume a paused task", "恢复已暂停的任务"}, IntentDelete: {"delete an existing task", "删除已有任务"}, IntentRun: {"run an existing task now", "立即运行已有任务"}}
)

func reasonManage(intent, verb string, zh bool) string {
	n := intentNames[intent]
	return pick(zh, fmt.Sprintf("The user wants to %s (cue: %q); no new task.", n[0], verb),
		fmt.Sprintf("用户想%s（线索：“%s”），不创建新任务。", n[1], verb))
}

// reasonCreate summarises a create plan: what the user wants, the trigger,
// the slots filled and those missing.
func reasonCreate(p Plan, loc *time.Location, zh bool) string {
	var trigger string
	switch s := p.Schedule; {
	case s == nil && p.Kind == KindMonitor:
		trigger = pick(zh, "fires when the condition holds (default poll interval)", "条件满足时触发（默认轮询间隔）")
	case s == nil && p.Kind == KindLongRunning:
		trigger = pick(zh, "starts once confirmed", "确认后开始")
	case s == nil:
		trigger = pick(zh, "no time given yet", "尚未给出时间")
	case s.Cron != "":
		trigger = fmt.Sprintf("cron %q (%s)", s.Cron, loc)
	case s.Every != "":
		trigger = pick(zh, "every ", "每隔 ") + s.Every
	case s.At != nil:
		trigger = pick(zh, "at ", "于 ") + s.At.Format(time.RFC3339)
	}
	keys := make([]string, 0, len(p.Slots))
	for k := range p.Slots {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	name := func(slot string) string {
		if n, ok := zhSlotNames[slot]; ok && zh {
			return n
		}
		return slot
	}
	var filled, lacking []string
	for _, k := range keys {
		filled = append(filled, fmt.Sprintf("%s=%v", name(k), p.Slots[k]))
	}
	for _, m := range p.Missing {
		lacking = append(lacking, name(m))
	}
	list := func(xs []string) string {
		if len(xs) == 0 {
			return pick(zh, "none", "无")
		}
		return strings.Join(xs, pick(zh, ", ", "、"))
	}
	k, d := kindNames[p.Kind], domainNames[p.Domain]
	if zh {
		return fmt.Sprintf("用户想创建%s任务（%s）。触发：%s。已填：%s。缺少：%s。", k[1], d[1], trigger, list(filled), list(lacking))
	}
	return fmt.Sprintf("The user wants a %s %s task. Trigger: %s. Slots: %s. Missing: %s.", k[0], d[0], trigger, list(filled), list(lacking))
}

func pick(zh bool, en, cn string) string {
	if zh {
		return cn
	}
	return en
}
