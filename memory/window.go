package memory

// Turn is one message of a conversation as it goes into a prompt.
type Turn struct {
	// Role is who spoke: "user", "assistant", "tool" or "system".
	Role string `json:"role"`
	// Text is what was said.
	Text string `json:"text"`
}

// TurnOverhead is the tokens Window counts for each turn on top of its
// text: chat formats spend about that many on the role and the message
// framing.
const TurnOverhead = 4

// Window returns the most recent turns whose cost fits budget: the longest
// suffix of turns whose costs, count(turn.Text) + TurnOverhead each, add up
// to at most budget. The last turn is always kept, even if it alone is over
// budget, because an agent must at least see what it is answering. A nil
// count means EstimateTokens. The result shares turns' backing array, and
// is nil when turns is empty.
func Window(turns []Turn, budget int, count func(string) int) []Turn {
	if len(turns) == 0 {
		return nil
	}
	if count == nil {
		count = EstimateTokens
	}
	last := len(turns) - 1
	used := count(turns[last].Text) + TurnOverhead
	start := last
	for i := last - 1; i >= 0; i-- {
		c := count(turns[i].Text) + TurnOverhead
		if used+c > budget {
			break
		}
		used += c
		start = i
	}
	return turns[start:]
}

// EstimateTokens estimates how many tokens a BPE tokenizer of today's
// models (cl100k, o200k and the like) makes of s, with no vocabulary to
// load and no network. The estimate is:
//
//   - 1 token per Chinese, Japanese or Korean character, and per full-width
//     punctuation mark (。，「」…), which such tokenizers mostly encode as
//     one or two tokens each;
//   - 1 token per 4 ASCII characters, spaces and punctuation included, the
//     usual average for English prose and code;
//   - 1 token per 2 other characters (accented Latin, Cyrillic, Arabic, …),
//     which take more tokens per character than ASCII;
//
// with the last two rounded up together. It errs high for plain English and
// may err low for rare Chinese characters; budgets should leave a margin.
func EstimateTokens(s string) int {
	wide, quarters := 0, 0
	for _, r := range s {
		switch {
		case r < utf8RuneSelf:
			quarters++
		case isCJK(r) || isWidePunct(r):
			wide++
		default:
			quarters += 2
		}
	}
	return wide + (quarters+3)/4
}

// isWidePunct reports whether r is CJK or full-width punctuation.
func isWidePunct(r rune) bool {
	return (r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF)
}
