package memory

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Embedder turns texts into vectors whose cosine similarity measures how
// alike the texts mean. When Options.Embedder is set, Recall ranks by it.
// Vigil ships none (none is configured by default); a deployment plugs one
// in over its model provider.
//
// Embed returns one vector per text, in order, all of one dimension. It is
// called concurrently by many requests and must be safe for that.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// embedError marks a failure of the Embedder, after which Recall falls back
// to keywords.
type embedError struct{ err error }

func (e *embedError) Error() string { return "memory: embedder: " + e.err.Error() }
func (e *embedError) Unwrap() error { return e.err }

// embed calls the embedder and checks its answer's shape.
func (s *Service) embed(ctx context.Context, texts []string) ([][]float32, error) {
	vs, err := s.embedder.Embed(ctx, texts)
	if err != nil {
		return nil, &embedError{err}
	}
	if len(vs) != len(texts) {
		return nil, &embedError{fmt.Errorf("%d vectors for %d texts", len(vs), len(texts))}
	}
	return vs, nil
}

// recallByVector ranks the newest MaxCandidates facts of the thread by
// cosine similarity to the query. Embedder failures are *embedError.
func (s *Service) recallByVector(ctx context.Context, tenant, thread, query string, limit int) ([]Fact, error) {
	qv, err := s.embed(ctx, []string{query})
	if err != nil {
		return nil, err
	}
	cands, err := s.store.ListFacts(ctx, tenant, thread, s.maxCandidates)
	if err != nil {
		return nil, fmt.Errorf("memory: recall in %s: %w", thread, err)
	}
	// Facts remembered before the embedder was configured, or under one of
	// another dimension, are embedded now, in one call.
	var missing []int
	var texts []string
	for i, f := range cands {
		if len(f.Vector) != len(qv[0]) {
			missing = append(missing, i)
			texts = append(texts, embedText(f))
		}
	}
	if len(missing) > 0 {
		vs, err := s.embed(ctx, texts)
		if err != nil {
			return nil, err
		}
		for j, i := range missing {
			cands[i].Vector = vs[j]
		}
	}
	scores := make(map[string]float64, len(cands))
	for _, f := range cands {
		scores[f.ID] = cosine(qv[0], f.Vector)
	}
	return rank(cands, scores, limit), nil
}

// cosine returns the cosine similarity of a and b, 0 if either is zero or
// their lengths differ.
func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// rankByKeywords scores each candidate by how many of the query's distinct
// terms its own keywords hold, drops those with none and returns the best
// limit.
func rankByKeywords(cands []Fact, query []string, limit int) []Fact {
	scores := make(map[string]float64, len(cands))
	var kept []Fact
	for _, f := range cands {
		have := make(map[string]bool)
		for _, t := range factTerms(f) {
			have[t] = true
		}
		n := 0
		for _, t := range query {
			if have[t] {
				n++
			}
		}
		if n > 0 {
			scores[f.ID] = float64(n)
			kept = append(kept, f)
		}
	}
	return rank(kept, scores, limit)
}

// rank sorts facts by score, best first, breaking ties by newer CreatedAt
// and then larger ID, and returns the first limit.
func rank(fs []Fact, score map[string]float64, limit int) []Fact {
	slices.SortStableFunc(fs, func(a, b Fact) int {
		if sa, sb := score[a.ID], score[b.ID]; sa != sb {
			if sa > sb {
				return -1
			}
			return 1
		}
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(fs) > limit {
		fs = fs[:limit]
	}
	if fs == nil {
		fs = []Fact{}
	}
	return fs
}

// maxWordRunes caps the length of one keyword; longer words are cut.
const maxWordRunes = 64

// Keywords returns the search terms of text, each once, in order of first
// appearance. Recall matches a query's keywords against each fact's.
//
// The text is first normalised (Unicode NFKC, so full-width Ｂｅｉｊｉｎｇ
// reads as Beijing, then lower case). Words of letters and digits in
// space-separated scripts become terms, cut to 64 characters, except
// common English function words ("the", "my", "is", …) and single Latin
// letters. Chinese, Japanese and Korean characters, which are not
// separated by spaces, become terms one by one and as overlapping pairs
// ("北京天气" → 北, 京, 天, 气, 北京, 京天, 天气), so that a query matching
// a whole word scores above one matching only its characters; the most
// common function characters (的, 了, 是, 我, …) are left out on their own.
// There is no stemming: "city" does not match "cities".
func Keywords(text string) []string {
	text = norm.NFKC.String(text)
	var (
		out  []string
		seen = make(map[string]bool)
		word []rune
		run  []rune // a run of CJK characters
	)
	add := func(t string) {
		if !seen[t] && len(t) <= MaxTermBytes {
			seen[t] = true
			out = append(out, t)
		}
	}
	flushWord := func() {
		if len(word) == 0 {
			return
		}
		if len(word) > maxWordRunes {
			word = word[:maxWordRunes]
		}
		w := string(word)
		word = word[:0]
		if len([]rune(w)) == 1 && w[0] < utf8RuneSelf && unicode.IsLetter(rune(w[0])) {
			return
		}
		if !stopWords[w] {
			add(w)
		}
	}
	flushRun := func() {
		for i, r := range run {
			if !stopChars[r] {
				add(string(r))
			}
			if i+1 < len(run) && !(stopChars[r] && stopChars[run[i+1]]) {
				add(string(run[i : i+2]))
			}
		}
		run = run[:0]
	}
	for _, r := range text {
		switch {
		case isCJK(r):
			flushWord()
			run = append(run, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			flushRun()
			word = append(word, unicode.ToLower(r))
		default:
			flushWord()
			flushRun()
		}
	}
	flushWord()
	flushRun()
	return out
}

const utf8RuneSelf = 0x80

// isCJK reports whether r is written without spaces between words: Han
// ideographs, kana and Hangul.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// stopWords are English function words too common to tell facts apart.
var stopWords = setOf(strings.Fields(`
	a an and are as at be been but by can could did do does for from had has
	have he her hers him his how i if in into is it its me my myself no not
	of on or our ours she so than that the their them then there these they
	this those to too was we were what when where which who whom why will
	with would you your yours please tell about`))

// stopChars are Chinese function characters too common to match alone.
var stopChars = func() map[rune]bool {
	m := make(map[rune]bool)
	for _, r := range "的了是在和吗呢吧啊呀我你他她它们也就都而及与着或个这那有要" {
		m[r] = true
	}
	return m
}()

func setOf(words []string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}
