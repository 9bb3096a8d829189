package agent

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// This file fills a plan's missing slots: from the user's answer to a
// clarification, and from the user's profile.

// continuePlan merges the answer to a clarification into the plan it
// asked about and returns the merged plan, the user's words so far and
// the slots the answer filled. answer is the model's plan of the answer
// alone.
//
// An LLM reads the answer in the light of the conversation, so its plan of
// the same domain is taken for what it adds. The offline model reads one
// message: for it the user's words so far and the answer are planned
// together ("每天推送天气" + "北京, 早上8点"), and what is still missing is
// then looked for in the answer alone, read as the domain's slots, a time,
// or, for a short answer, the slot itself ("临沂", "call mom").
//
// Slots the plan already had are kept; so is its schedule, resolved when
// the user first gave it.
func continuePlan(pend pending, answer Plan, text string, loc *time.Location, now time.Time) (Plan, string, []string) {
	p := *pend.Plan
	p.Slots = maps.Clone(p.Slots)
	if p.Slots == nil {
		p.Slots = map[string]any{}
	}
	before := slices.Clone(p.Missing)
	words := strings.TrimSpace(pend.Words + " " + text)

	from := answer
	if from.Intent != IntentCreate || from.Domain != p.Domain {
		from = PlanOffline(Request{Text: words, TZ: loc, Now: now})
	}
	if from.Intent == IntentCreate && from.Domain == p.Domain {
		for k, v := range from.Slots {
			if _, ok := p.Slots[k]; !ok {
				p.Slots[k] = v
			}
		}
		if p.Schedule == nil && from.Schedule != nil {
			p.Schedule, p.Kind = from.Schedule, from.Kind
		}
	}
	p.Missing = missing(p, features{})
	p = fillFromAnswer(p, text, now)
	p.Missing = missing(p, features{})
	p.Question = question(p.Missing, p.Domain, p.Language == "zh")

	var filled []string
	for _, m := range before {
		if !slices.Contains(p.Missing, m) {
			filled = append(filled, m)
		}
	}
	return p, words, filled
}

// maxBareAnswer is the longest answer taken whole as a slot's value, and
// maxBareCity the longest taken as a city.
const (
	maxBareAnswer = 40
	maxBareCity   = 20
)

var digitRe = regexp.MustCompile(`\d`)

// fillFromAnswer looks for p's missing slots in the answer alone.
func fillFromAnswer(p Plan, text string, now time.Time) Plan {
	u := readUtterance(text)
	f := u.features()
	got := f.slots(p.Domain)
	bare := strings.Trim(squeeze(u.rest), " ,.;:!?，。；：！？、")
	useBare := bare != "" && utf8.RuneCountInString(bare) <= maxBareAnswer && !digitRe.MatchString(bare)
	for _, m := range p.Missing {
		switch m {
		case SlotTime:
			if s := u.when.schedule(now, p.Kind); s != nil {
				p.Schedule = s
			} else if h, min, ok := u.when.hourMinute(); ok && p.Kind == KindPeriodic {
				// "每天推送天气" then "8点": the recurrence was in the request,
				// the clock is in the answer.
				p.Schedule = &Schedule{Cron: fmt.Sprintf("%d %d * * *", min, h%24)}
			}
		case SlotThreshold:
			for _, k := range []string{SlotThreshold, SlotPercent, SlotDirection} {
				if v, ok := got[k]; ok {
					if _, has := p.Slots[k]; !has {
						p.Slots[k] = v
					}
				}
			}
			if _, ok := p.Slots[SlotThreshold]; !ok {
				if _, ok := p.Slots[SlotPercent]; !ok {
					if c := findCondition(u.rest); c.threshold != nil {
						p.Slots[SlotThreshold] = *c.threshold
					} else if c.percent != nil {
						p.Slots[SlotPercent] = *c.percent
					}
				}
			}
		case SlotURL:
			if u.url != "" {
				p.Slots[SlotURL] = u.url
			}
		case SlotSymbol:
			if sym, _ := findSymbol(u.rest); sym != "" {
				p.Slots[SlotSymbol] = sym
			}
		case SlotCity:
			if c := f.city(true); c != "" {
				p.Slots[SlotCity] = c
			} else if useBare && utf8.RuneCountInString(bare) <= maxBareCity && len(strings.Fields(bare)) <= 3 {
				p.Slots[SlotCity] = bare
			}
		case SlotMessage, SlotTopic:
			if v, ok := got[m]; ok {
				p.Slots[m] = v
			} else if useBare {
				v := bare
				if m == SlotMessage {
					if u.zh {
						v = cleanZhMessage(bare)
					} else {
						v = cleanEnMessage(bare)
					}
				}
				if v != "" {
					p.Slots[m] = v
				}
			}
		}
	}
	return p
}

// ownPlaceRe finds a request that speaks of the user's own place.
var ownPlaceRe = regexp.MustCompile(`(?i)\b(?:my|our)\s+(?:city|town|area|place|location|home)\b|\bwhere\s+i\s+(?:live|am)\b|\blocal\b|我(?:所在|住|在|家)?(?:的)?(?:城市|这里|这儿|这边|当地|那里)|本地|当地|我这(?:里|儿|边)?`)

// fillFromProfile fills a missing city from the user's home city: for a
// weather task whenever the city is missing ("my city", or none named),
// for a report when the user spoke of their own place. It returns the
// plan and whether it filled the city.
func fillFromProfile(p Plan, words, homeCity string) (Plan, bool) {
	if homeCity == "" {
		return p, false
	}
	if _, ok := p.Slots[SlotCity]; ok {
		return p, false
	}
	switch {
	case p.Domain == DomainWeather && slices.Contains(p.Missing, SlotCity):
	case p.Domain == DomainReport && ownPlaceRe.MatchString(words):
	default:
		return p, false
	}
	p.Slots = maps.Clone(p.Slots)
	if p.Slots == nil {
		p.Slots = map[string]any{}
	}
	p.Slots[SlotCity] = homeCity
	p.Missing = missing(p, features{})
	p.Question = question(p.Missing, p.Domain, p.Language == "zh")
	return p, true
}
