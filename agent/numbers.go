package agent

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads numbers as people write them: digits with separators and
// suffixes ("60,000", "1.5k", "$250", "5万"), Chinese numerals ("十二",
// "五万", "百分之五") and English number words ("two", "half an").

// maxAmount bounds every number the planner accepts, so that no slot holds an
// infinity (which JSON cannot encode) or an absurd value.
const maxAmount = 1e15

var enNumberWords = map[string]float64{
	"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
	"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
	"thirty": 30, "forty": 40, "forty-five": 45, "forty five": 45, "sixty": 60, "ninety": 90,
	"half a": 0.5, "half an": 0.5, "half": 0.5,
}

// parseNumber reads a plain number: digits, an English number word, a
// Chinese numeral, 半 (a half) or "N个半" (N and a half).
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if v, ok := enNumberWords[strings.ToLower(s)]; ok {
		return v, true
	}
	if s == "半" {
		return 0.5, true
	}
	if head, ok := strings.CutSuffix(s, "个半"); ok {
		v, ok := parseCN(head)
		return v + 0.5, ok
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, finite(v)
	}
	return parseCN(s)
}

// parseSmallInt reads a small whole number such as an hour or a day.
func parseSmallInt(s string) (int, bool) {
	v, ok := parseNumber(s)
	if !ok || v < 0 || v > 10000 || v != math.Trunc(v) {
		return 0, false
	}
	return int(v), true
}

var (
	cnDigits = map[rune]float64{'零': 0, '〇': 0, '一': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5, '六': 6, '七': 7, '八': 8, '九': 9}
	cnUnits  = map[rune]float64{'十': 10, '百': 100, '千': 1000}
)

// parseCN reads a Chinese numeral: "十二", "二十五", "一百零五", "五万",
// "三点五". Units may follow digits ("5万" is read by parseAmount, not here).
func parseCN(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	if whole, frac, ok := strings.Cut(s, "点"); ok {
		w, ok1 := parseCN(whole)
		if !ok1 || frac == "" {
			return 0, false
		}
		scale := 0.1
		for _, r := range frac {
			d, ok := cnDigits[r]
			if !ok {
				return 0, false
			}
			w += d * scale
			scale /= 10
		}
		return w, true
	}
	var total, section float64
	num := -1.0
	for _, r := range s {
		if d, ok := cnDigits[r]; ok {
			num = d
			continue
		}
		if u, ok := cnUnits[r]; ok {
			if num < 0 {
				num = 1
			}
			section += num * u
			num = -1
			continue
		}
		switch r {
		case '万', '亿':
			if num >= 0 {
				section += num
			}
			if section == 0 {
				section = 1
			}
			if r == '万' {
				total += section * 1e4
			} else {
				total = (total + section) * 1e8
			}
			section, num = 0, -1
			continue
		}
		return 0, false
	}
	if num >= 0 {
		section += num
	}
	v := total + section
	return v, finite(v)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && math.Abs(v) <= maxAmount }

// amount is a number found in text, with where it was.
type amount struct {
	value      float64
	start, end int
	percent    bool
}

var (
	digitAmountRe = regexp.MustCompile(`(?i)(?:(?:us\$|\$|¥|￥)\s*)?(\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s*(bn|k|m|b|w|万|千|百|亿)?`)
	cnAmountRe    = regexp.MustCompile(`[零〇一二两三四五六七八九十百千万亿点]+`)
	percentTailRe = regexp.MustCompile(`(?i)^\s*(?:%|percent\b|per\s+cent\b|pct\b|个百分点)`)
	cnPercentRe   = regexp.MustCompile(`百分之\s*([零〇一二两三四五六七八九十百点\d.]+)`)
	moneyTailRe   = regexp.MustCompile(`^\s*(?:元|美元|块|刀|美金|人民币|港币|欧元|日元)`)
	suffixScale   = map[string]float64{"k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9, "w": 1e4, "万": 1e4, "千": 1e3, "百": 100, "亿": 1e8}
)

// amounts returns the numbers in s in order, marking percentages. Digits
// glued to letters ("v1", "H2") are skipped, and so are bare Chinese
// numerals ("一下", "三天") unless they carry a unit or a currency.
func amounts(s string) []amount {
	var out []amount
	taken := func(a, b int) bool {
		for _, x := range out {
			if a < x.end && x.start < b {
				return true
			}
		}
		return false
	}
	for _, m := range cnPercentRe.FindAllStringSubmatchIndex(s, -1) {
		if v, ok := parseNumber(s[m[2]:m[3]]); ok {
			out = append(out, amount{value: v, start: m[0], end: m[1], percent: true})
		}
	}
	for _, m := range digitAmountRe.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[0], m[1]
		if taken(start, end) || isASCIILetter(lastRune(s[:start])) {
			continue
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(s[m[2]:m[3]], ",", ""), 64)
		if err != nil {
			continue
		}
		if m[4] >= 0 {
			if isASCIILetter(firstRune(s[m[5]:])) {
				end = m[4] // "5 minutes": the m is a word, not a suffix
			} else {
				v *= suffixScale[strings.ToLower(s[m[4]:m[5]])]
			}
		}
		if !finite(v) {
			continue
		}
		a := amount{value: v, start: start, end: end}
		if loc := percentTailRe.FindStringIndex(s[end:]); loc != nil {
			a.percent, a.end = true, end+loc[1]
		}
		out = append(out, a)
	}
	for _, m := range cnAmountRe.FindAllStringIndex(s, -1) {
		word := s[m[0]:m[1]]
		if taken(m[0], m[1]) || !strings.ContainsAny(word, "百千万亿") && !moneyTailRe.MatchString(s[m[1]:]) {
			continue
		}
		if v, ok := parseCN(word); ok {
			out = append(out, amount{value: v, start: m[0], end: m[1]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

func isASCIILetter(r rune) bool { return r < utf8.RuneSelf && (r|0x20) >= 'a' && (r|0x20) <= 'z' }
