package agent

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// This file finds the tasks a management request is about ("暂停天气提醒",
// "delete the reminder to call mom") and reads the short answers a
// conversation turns on: yes, no, and which of several tasks.

// confirmWords and cancelWords are whole messages that confirm or cancel
// what the assistant proposed, compared after folding case and trimming
// punctuation and particles.
var (
	confirmWords = set("yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "ok!", "confirm", "confirmed",
		"go ahead", "do it", "please do", "sounds good", "looks good", "lgtm", "yes please", "ok thanks", "correct",
		"确认", "确定", "好", "好的", "好啊", "可以", "行", "是", "是的", "对", "对的", "没问题", "嗯", "嗯嗯", "确认创建", "就这样")
	cancelWords = set("cancel", "no", "nope", "never mind", "nevermind", "forget it", "don't", "dont", "no thanks", "abort",
		"取消", "不要", "不要了", "算了", "不用", "不用了", "不", "否", "放弃", "不需要")
)

var shortAnswerTrim = regexp.MustCompile(`(?i)^[\s\p{P}]+|[\s\p{P}]+$|(?:吧|啦|了|呀|啊|哦)+[\s\p{P}]*$`)

func shortAnswer(text string) string {
	s := strings.ToLower(normalize(text))
	for prev := ""; prev != s; {
		prev = s
		s = shortAnswerTrim.ReplaceAllString(s, "")
	}
	return strings.Join(strings.Fields(s), " ")
}

// isConfirm reports whether text, as a whole, says yes.
func isConfirm(text string) bool { return confirmWords[shortAnswer(text)] }

// isCancel reports whether text, as a whole, says no.
func isCancel(text string) bool { return cancelWords[shortAnswer(text)] }

// Words of a management request that say what to do rather than which
// task: they are removed before the request is matched against tasks.
var (
	enManageNoise = regexp.MustCompile(`(?i)\b(?:please|pls|can you|could you|would you|i want to|i'd like to|help me|pause|suspend|stop|halt|disable|mute|deactivate|freeze|silence|resume|unpause|restart|reactivate|re-enable|enable|unmute|continue|delete|remove|cancel|drop|erase|clear|kill|get rid of|run|trigger|execute|rerun|re-run|fire|kick off|turn off|turn on|start|again|now|right away|immediately|once|for now|task|tasks|job|jobs|alert|alerts|reminder|reminders|notification|notifications|subscription|subscriptions|monitor|monitors|schedule|schedules|automation|automations|my|the|all|one|ones|that|this|it|for|me|list|show)\b`)
	zhManageNoise = func() *regexp.Regexp {
		words := []string{"任务", "提醒", "订阅", "推送", "通知", "监控", "定时", "一下", "那个", "这个", "那条", "这条", "所有", "全部",
			"我的", "帮我", "麻烦", "请", "把", "给我", "吧", "了", "先", "的"}
		for _, v := range zhVerbs {
			words = append(words, regexp.QuoteMeta(v.verb))
		}
		slices.SortFunc(words, func(a, b string) int { return len(b) - len(a) })
		return regexp.MustCompile(strings.Join(words, "|"))
	}()
)

// subjectTerms returns the keywords of what a management request names
// ("北京天气" of "暂停北京天气提醒"), without its verbs and generic words.
func subjectTerms(text string) []string {
	s := normalize(text)
	s = enManageNoise.ReplaceAllString(s, " ")
	s = zhManageNoise.ReplaceAllString(s, " ")
	return memory.Keywords(s)
}

// domainWords are the words a task of each domain answers to, in both
// languages, beside its title and slots.
var domainWords = map[string]string{
	DomainWeather:  "weather forecast 天气 预报",
	DomainPrice:    "price prices quote 价格 行情",
	DomainNews:     "news headlines 新闻 资讯",
	DomainReminder: "remind 提醒",
	DomainWeb:      "website site page url check 网站 网页 网址 检查",
	DomainReport:   "report guide 报告 攻略",
}

var reportTitleRe = regexp.MustCompile(`(?i)\breport\b|报告|攻略`)

// taskDomain infers the domain of a task the assistant made from its slots
// and kind: the Spec does not record the domain.
func taskDomain(t tasks.Task) string {
	has := func(k string) bool { _, ok := t.Slots[k]; return ok }
	reportish := t.Kind == tasks.KindLongRunning || reportTitleRe.MatchString(t.Title)
	switch {
	case has(SlotSymbol):
		return DomainPrice
	case has(SlotURL):
		return DomainWeb
	case has(SlotMessage):
		return DomainReminder
	case has(SlotTopic) && reportish, has(SlotCity) && reportish:
		return DomainReport
	case has(SlotTopic):
		return DomainNews
	case has(SlotCity):
		return DomainWeather
	}
	return ""
}

// taskTerms returns the keywords a task answers to: its title, its slots'
// values, the other names of its city and symbol, and its domain's words.
func taskTerms(t tasks.Task) map[string]bool {
	parts := []string{t.Title, domainWords[taskDomain(t)]}
	for _, k := range sortedSlotNames(t.Slots) {
		v, ok := t.Slots[k].(string)
		if !ok {
			continue
		}
		parts = append(parts, v)
		for _, c := range cityTable {
			if strings.EqualFold(v, c.zh) || strings.EqualFold(v, c.en) {
				parts = append(parts, c.zh, c.en)
			}
		}
		for _, s := range symbolTable {
			if strings.EqualFold(v, s.canon) {
				parts = append(parts, s.canon)
				parts = append(parts, s.en...)
				parts = append(parts, s.zh...)
			}
		}
	}
	out := map[string]bool{}
	for _, k := range memory.Keywords(strings.Join(parts, " ")) {
		out[k] = true
	}
	return out
}

func sortedSlotNames(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// matchTasks returns the tasks of ts that the request text names best.
// Every keyword of the request's subject that a task answers to scores 2,
// or 1 for a single Chinese character; the tasks with the top score match.
// A request that names no subject ("pause my task") matches every task;
// one whose subject no task answers to matches none.
func matchTasks(text string, ts []tasks.Task) []tasks.Task {
	terms := subjectTerms(text)
	if len(terms) == 0 {
		return ts
	}
	best, top := []tasks.Task(nil), 0
	for _, t := range ts {
		desc, score := taskTerms(t), 0
		for _, term := range terms {
			if desc[term] {
				if len([]rune(term)) == 1 && hasHan(term) {
					score++
				} else {
					score += 2
				}
			}
		}
		switch {
		case score == 0 || score < top:
		case score > top:
			best, top = []tasks.Task{t}, score
		default:
			best = append(best, t)
		}
	}
	return best
}

var (
	ordinalRe  = regexp.MustCompile(`(?i)^(?:the\s+|no\.?\s*|#|第\s*)?([0-9]+|[一二三四五六七八九十]|first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last)(?:\s*(?:个|项|条|one))?(?:$|\s|的)`)
	ordinalMap = map[string]int{"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
		"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5}
)

// choose reads the answer to "which task?" among cands: a task id, a
// position in the list ("2", "第一个", "the second one", "last"), or words
// that match exactly one of them best.
func choose(text string, cands []tasks.Task) (tasks.Task, bool) {
	for _, t := range cands {
		if strings.Contains(text, t.ID) {
			return t, true
		}
	}
	s := shortAnswer(text)
	if m := ordinalRe.FindStringSubmatch(s); m != nil {
		n, ok := ordinalMap[strings.ToLower(m[1])]
		if !ok {
			n, _ = strconv.Atoi(m[1])
		}
		if strings.EqualFold(m[1], "last") {
			n = len(cands)
		}
		if n >= 1 && n <= len(cands) {
			return cands[n-1], true
		}
	}
	if terms := subjectTerms(text); len(terms) > 0 {
		if best := matchTasks(text, cands); len(best) == 1 {
			return best[0], true
		}
	}
	return tasks.Task{}, false
}

// eligible reports whether a task in status s can undergo intent.
func eligible(intent string, s tasks.Status) bool {
	switch intent {
	case IntentPause:
		return s == tasks.StatusActive
	case IntentResume:
		return s == tasks.StatusPaused
	case IntentRun:
		return s == tasks.StatusActive || s == tasks.StatusPaused
	case IntentDelete:
		return s != tasks.StatusArchived
	}
	return false
}

// maxChoices is how many matching tasks a clarification lists at most.
const maxChoices = 10

// intentVerbs name management intents in messages.
var intentVerbs = map[string][2]string{
	IntentPause: {"pause", "暂停"}, IntentResume: {"resume", "恢复"}, IntentDelete: {"delete", "删除"}, IntentRun: {"run", "运行"},
}

// statusNames name task states in messages.
var statusNames = map[tasks.Status][2]string{
	tasks.StatusDraft: {"draft", "草稿"}, tasks.StatusActive: {"active", "运行中"}, tasks.StatusPaused: {"paused", "已暂停"}, tasks.StatusArchived: {"archived", "已归档"},
}

// ownTasks returns the tasks of the principal's user that are not
// archived, oldest first.
func (t *turn) ownTasks() ([]tasks.Task, error) {
	p, _ := vigil.PrincipalFrom(t.ctx)
	f := tasks.TaskFilter{Owner: p.User, Limit: tasks.MaxLimit}
	var out []tasks.Task
	for range 10 {
		page, err := t.a.tasks.List(t.ctx, f)
		if err != nil {
			return nil, err
		}
		for _, task := range page.Tasks {
			if task.Status != tasks.StatusArchived {
				out = append(out, task)
			}
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	return out, nil
}

// manage carries out a management intent on the user's task that the
// message names best, asking which when several do.
func (t *turn) manage(plan Plan) error {
	t.lang = plan.Language
	zh := t.zh()
	if t.a.tasks == nil {
		return vigil.Errorf(vigil.Unavailable, "task management is not available on this server")
	}
	all, err := t.ownTasks()
	if err != nil {
		return err
	}
	base := plan.Reasoning
	if base == "" {
		base = reasonManage(plan.Intent, "", zh)
	}
	if plan.Intent == IntentList {
		return t.list(base, all)
	}
	verb := intentVerbs[plan.Intent]
	var cands []tasks.Task
	for _, task := range all {
		if eligible(plan.Intent, task.Status) {
			cands = append(cands, task)
		}
	}
	matches := matchTasks(t.text, cands)
	switch {
	case len(matches) == 1:
		task := matches[0]
		return t.act(plan.Intent, task, base+pick(zh, fmt.Sprintf(" It matches “%s”.", task.Title), fmt.Sprintf("匹配到“%s”。", task.Title)))
	case len(matches) > 1:
		return t.askWhich(plan.Intent, base, matches)
	}
	// No task can undergo the action: say why.
	if len(subjectTerms(t.text)) > 0 {
		if other := matchTasks(t.text, all); len(other) == 1 {
			task := other[0]
			st := statusNames[task.Status]
			if err := t.reason(base + pick(zh, fmt.Sprintf(" It matches “%s”, which is %s.", task.Title, st[0]),
				fmt.Sprintf("匹配到“%s”，但它的状态是%s。", task.Title, st[1]))); err != nil {
				return err
			}
			return t.say(streams.OutcomeSucceeded, pick(zh, fmt.Sprintf("“%s” is %s, so there is nothing to %s.", task.Title, st[0], verb[0]),
				fmt.Sprintf("“%s”当前是%s状态，无法%s。", task.Title, st[1], verb[1])), "nothing to "+verb[0])
		}
	}
	if err := t.reason(base + pick(zh, " No task of the user matches.", "没有匹配的任务。")); err != nil {
		return err
	}
	msg := pick(zh, fmt.Sprintf("I found no task to %s that matches “%s”.", verb[0], t.text), fmt.Sprintf("没有找到可以%s的、符合“%s”的任务。", verb[1], t.text))
	if len(cands) == 0 {
		msg = pick(zh, fmt.Sprintf("You have no task to %s.", verb[0]), fmt.Sprintf("你没有可以%s的任务。", verb[1]))
	}
	return t.say(streams.OutcomeSucceeded, msg, "no match")
}

// askWhich asks which of several matching tasks the action is for.
func (t *turn) askWhich(intent, base string, matches []tasks.Task) error {
	zh := t.zh()
	verb := intentVerbs[intent]
	if len(matches) > maxChoices {
		matches = matches[:maxChoices]
	}
	var ids, titles, lines []string
	for i, m := range matches {
		ids, titles = append(ids, m.ID), append(titles, m.Title)
		lines = append(lines, fmt.Sprintf("%d. %s", i+1, m.Title))
	}
	if err := t.reason(base + pick(zh, fmt.Sprintf(" %d tasks match; ask which.", len(matches)),
		fmt.Sprintf("有 %d 个任务符合，需要确认是哪一个。", len(matches)))); err != nil {
		return err
	}
	q := pick(zh, fmt.Sprintf("%d tasks match:\n%s\nWhich one should I %s?", len(matches), strings.Join(lines, "\n"), verb[0]),
		fmt.Sprintf("有 %d 个任务符合：\n%s\n要%s哪一个？", len(matches), strings.Join(lines, "\n"), verb[1]))
	cl := streams.Clarification{Question: q, Missing: []string{"task"}, Schema: choiceClarification(intent, ids, titles)}
	if err := t.emit(cl); err != nil {
		return err
	}
	return t.done(streams.OutcomeWaitingInput, "which task to "+verb[0])
}

// chosen reads the answer to askWhich. It reports false when the answer
// picks none of the tasks, so that the message is planned as any other.
func (t *turn) chosen(pend *pending) (tasks.Task, bool, error) {
	if t.a.tasks == nil {
		return tasks.Task{}, false, nil
	}
	var cands []tasks.Task
	for _, id := range pend.Candidates {
		task, err := t.a.tasks.Get(t.ctx, id)
		switch {
		case err == nil && t.owns(task):
			cands = append(cands, task)
		case err != nil && vigil.ErrorCode(err) != vigil.NotFound:
			return tasks.Task{}, false, err
		}
	}
	task, ok := choose(t.text, cands)
	return task, ok, nil
}

func (t *turn) chooseReasoning(task tasks.Task) string {
	return pick(t.zh(), fmt.Sprintf("The user picked “%s”.", task.Title), fmt.Sprintf("用户选择了“%s”。", task.Title))
}

// act carries out a management intent on one task.
func (t *turn) act(intent string, task tasks.Task, reasoning string) error {
	zh := t.zh()
	if err := t.reason(reasoning); err != nil {
		return err
	}
	t.result.TaskID = task.ID
	var (
		msg    string
		status streams.TaskStatus
		runID  string
	)
	switch intent {
	case IntentPause:
		got, err := t.a.tasks.Pause(t.ctx, task.ID)
		if err != nil {
			return err
		}
		status = streams.TaskStatus{TaskID: task.ID, From: string(task.Status), To: string(got.Status)}
		msg = pick(zh, fmt.Sprintf("Paused “%s”.", task.Title), fmt.Sprintf("已暂停“%s”。", task.Title))
	case IntentResume:
		got, err := t.a.tasks.Resume(t.ctx, task.ID)
		if err != nil {
			return err
		}
		status = streams.TaskStatus{TaskID: task.ID, From: string(task.Status), To: string(got.Status)}
		msg = pick(zh, fmt.Sprintf("Resumed “%s”.", task.Title), fmt.Sprintf("已恢复“%s”。", task.Title))
		if got.NextFire != nil {
			msg += pick(zh, " Next run: "+t.when(got, *got.NextFire)+".", "下次运行："+t.when(got, *got.NextFire)+"。")
		}
	case IntentDelete:
		if err := t.a.tasks.Delete(t.ctx, task.ID); err != nil {
			return err
		}
		status = streams.TaskStatus{TaskID: task.ID, From: string(task.Status), To: "deleted"}
		msg = pick(zh, fmt.Sprintf("Deleted “%s”.", task.Title), fmt.Sprintf("已删除“%s”。", task.Title))
	case IntentRun:
		run, err := t.a.tasks.RunNow(t.ctx, task.ID)
		if err != nil {
			return err
		}
		runID = run.ID
		status = streams.TaskStatus{TaskID: task.ID, RunID: run.ID, To: string(run.Status)}
		msg = pick(zh, fmt.Sprintf("Started a run of “%s”.", task.Title), fmt.Sprintf("已开始运行“%s”。", task.Title))
	default:
		return vigil.Errorf(vigil.Invalid, "%s is not an action on a task", intent)
	}
	if err := t.emitFor(task.ID, runID, status); err != nil {
		return err
	}
	return t.say(streams.OutcomeSucceeded, msg, intentVerbs[intent][0]+" "+task.ID)
}

// list answers with the user's tasks.
func (t *turn) list(base string, all []tasks.Task) error {
	zh := t.zh()
	if err := t.reason(base + pick(zh, fmt.Sprintf(" The user has %d tasks.", len(all)), fmt.Sprintf("用户有 %d 个任务。", len(all)))); err != nil {
		return err
	}
	if len(all) == 0 {
		return t.say(streams.OutcomeSucceeded, pick(zh, "You have no tasks yet.", "你还没有任务。"), "no tasks")
	}
	lines := []string{pick(zh, fmt.Sprintf("You have %d tasks:", len(all)), fmt.Sprintf("你有 %d 个任务：", len(all)))}
	for i, task := range all {
		st := statusNames[task.Status]
		line := fmt.Sprintf("%d. %s (%s", i+1, task.Title, st[0])
		if zh {
			line = fmt.Sprintf("%d. %s（%s", i+1, task.Title, st[1])
		}
		if task.NextFire != nil {
			line += pick(zh, ", next "+t.when(task, *task.NextFire), "，下次 "+t.when(task, *task.NextFire))
		}
		lines = append(lines, line+pick(zh, ")", "）"))
	}
	return t.say(streams.OutcomeSucceeded, strings.Join(lines, "\n"), fmt.Sprintf("%d tasks", len(all)))
}
