package memory_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// clock is a settable Now.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(t0.UnixMilli())
	return c
}
func (c *clock) Now() time.Time { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) tick()          { c.ms.Add(1000) }

func as(tenant, user string) context.Context {
	return vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: tenant, User: user})
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, memory.KeySize) }

func newService(t *testing.T, st memory.Store, opts memory.Options) *memory.Service {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := memory.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCode(t *testing.T, err error, code vigil.Code, what string) {
	t.Helper()
	if got := vigil.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func texts(fs []memory.Fact) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Text
	}
	return out
}

func TestKeywords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"What is my home city?", []string{"home", "city"}},
		{"The user's HOME city is Beijing, 8am.", []string{"user", "home", "city", "beijing", "8am"}},
		{"北京天气", []string{"北", "北京", "京", "京天", "天", "天气", "气"}},
		// 我, 的 and 是 are left out alone, and 我的 as a pair of them.
		{"我的城市是北京", []string{"的城", "城", "城市", "市", "市是", "是北", "北", "北京", "京"}},
		{"Ｂｅｉｊｉｎｇ　ＰＭ２.５", []string{"beijing", "pm2", "5"}},
		{"price > 5% 油价", []string{"price", "5", "油", "油价", "价"}},
		{"a I x 7", []string{"7"}},
		{"city City CITY", []string{"city"}},
		{"", nil},
	} {
		if got := memory.Keywords(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Keywords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("x", 1000)
	if got := memory.Keywords(long); len(got) != 1 || len(got[0]) != 64 {
		t.Errorf("Keywords of a 1000-letter word = %d terms of %d bytes, want one of 64", len(got), len(got[0]))
	}
	// Terms are what stores accept.
	for _, term := range memory.Keywords(strings.Repeat("长", 1000) + " " + strings.Repeat("é", 1000)) {
		if term == "" || len(term) > memory.MaxTermBytes || strings.ContainsRune(term, 0) {
			t.Errorf("Keywords made an unstorable term %q", term)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"hi", 1},
		{"hello world", 3},        // 11 ASCII characters
		{"北京天气", 4},               // one per Han character
		{"北京，天气。", 6},             // full-width punctuation counts like Han
		{"café", 2},               // 3 ASCII + 1 other (2 quarters) = 5 quarters
		{"每天8点推送 weather", 5 + 3}, // 5 Han + "8" and " weather" (9 ASCII)
		{strings.Repeat("a", 400), 100},
	} {
		if got := memory.EstimateTokens(c.in); got != c.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestWindow(t *testing.T) {
	turns := []memory.Turn{
		{Role: "user", Text: "aaaa"},                  // 1 + 4 overhead = 5
		{Role: "assistant", Text: "bbbbbbbbbbbbbbbb"}, // 4 + 4 = 8
		{Role: "user", Text: "cccc"},                  // 5
		{Role: "assistant", Text: "dddd"},             // 5
	}
	roles := func(ts []memory.Turn) string {
		var b strings.Builder
		for _, t := range ts {
			b.WriteString(t.Text[:1])
		}
		return b.String()
	}
	for _, c := range []struct {
		budget int
		want   string
	}{
		{100, "abcd"},
		{23, "abcd"},
		{22, "bcd"},
		{18, "bcd"},
		{17, "cd"},
		{10, "cd"},
		{9, "d"},
		{0, "d"},  // the last turn is always kept
		{-5, "d"}, // even with no budget at all
	} {
		if got := roles(memory.Window(turns, c.budget, nil)); got != c.want {
			t.Errorf("Window(budget %d) = %q, want %q", c.budget, got, c.want)
		}
	}
	// The window is a suffix: a turn over budget ends it, even when older
	// turns would fit.
	words := func(s string) int { return len(strings.Fields(s)) }
	ts := []memory.Turn{{Text: "x"}, {Text: strings.Repeat("long ", 50)}, {Text: "y z"}}
	if got := memory.Window(ts, 20, words); len(got) != 1 || got[0].Text != "y z" {
		t.Errorf("Window skipped over a long turn: %d turns", len(got))
	}
	if got := memory.Window(ts, 60, words); len(got) != 2 {
		t.Errorf("Window with a custom count: %d turns, want 2", len(got))
	}
	if got := memory.Window(nil, 10, nil); got != nil {
		t.Errorf("Window(nil) = %v, want nil", got)
	}
	s := newService(t, newMapStore(), memory.Options{ShortTermTokens: 10})
	if got := roles(s.Window(turns)); got != "cd" {
		t.Errorf("Service.Window with 10 tokens = %q, want cd", got)
	}
}

func TestRememberAndRecallByKeyword(t *testing.T) {
	clk := newClock()
	st := newMapStore()
	s := newService(t, st, memory.Options{Now: clk.Now})
	ctx := as("acme", "alice")

	remember := func(text string, tags ...string) memory.Fact {
		t.Helper()
		clk.tick()
		f, err := s.Remember(ctx, memory.Fact{Tenant: "globex", User: "mallory", ID: "chosen", Thread: "th_1", Text: "  " + text + " ", Tags: tags, Source: "chat"})
		if err != nil {
			t.Fatalf("Remember(%q): %v", text, err)
		}
		return f
	}
	f := remember("北京明天天气晴")
	if f.Tenant != "acme" || f.User != "alice" || !strings.HasPrefix(f.ID, "fct_") || !f.CreatedAt.Equal(clk.Now()) || f.Text != "北京明天天气晴" {
		t.Errorf("Remember stored %+v: tenant, user, id, time or text not the Service's", f)
	}
	remember("天津天气不错")
	remember("上海下雨")
	remember("The user's home city is Hangzhou", "city")
	remember("Oil price alert: notify when the price drops 5%")
	remember("Home office moved; the city office is closed")

	recall := func(q string, limit int) []string {
		t.Helper()
		fs, err := s.Recall(ctx, "th_1", q, limit)
		if err != nil {
			t.Fatalf("Recall(%q): %v", q, err)
		}
		return texts(fs)
	}
	for _, c := range []struct {
		q     string
		limit int
		want  []string
	}{
		// 6 of the query's 7 keywords beat 3; 上海下雨 shares none.
		{"北京天气", 10, []string{"北京明天天气晴", "天津天气不错"}},
		// Two keywords each (home, city): the tie goes to the newer fact.
		{"What is my home city?", 10, []string{"Home office moved; the city office is closed", "The user's home city is Hangzhou"}},
		{"what is my home city", 1, []string{"Home office moved; the city office is closed"}},
		// Tags are keywords too, and case and width do not matter.
		{"ＣＩＴＹ hangzhou", 10, []string{"The user's home city is Hangzhou", "Home office moved; the city office is closed"}},
		{"price", 10, []string{"Oil price alert: notify when the price drops 5%"}},
		{"the is my", 10, []string{}},       // only stop words
		{"nothing like it", 10, []string{}}, // no match
	} {
		if got := recall(c.q, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Recall(%q, %d) = %q, want %q", c.q, c.limit, got, c.want)
		}
	}
	// The same query always gives the same order.
	first := recall("city office home", 10)
	for range 5 {
		if got := recall("city office home", 10); !slices.Equal(got, first) {
			t.Fatalf("Recall is not deterministic: %q then %q", first, got)
		}
	}
	// An empty query lists the newest facts.
	if got := recall("  ", 2); !slices.Equal(got, []string{"Home office moved; the city office is closed", "Oil price alert: notify when the price drops 5%"}) {
		t.Errorf("Recall(empty, 2) = %q", got)
	}
	fs, err := s.Facts(ctx, "th_1", 0)
	if err != nil || len(fs) != 6 {
		t.Errorf("Facts: %d facts, %v", len(fs), err)
	}

	// Another tenant sees nothing of acme's thread, even with the same id.
	fs, err = s.Recall(as("globex", "alice"), "th_1", "北京", 10)
	if err != nil || len(fs) != 0 {
		t.Errorf("globex recalled %q (%v) from acme's thread", texts(fs), err)
	}
}

func TestRememberValidates(t *testing.T) {
	s := newService(t, newMapStore(), memory.Options{})
	ctx := as("acme", "alice")
	for _, c := range []struct {
		f     memory.Fact
		field string
	}{
		{memory.Fact{Thread: "th_1", Text: "  "}, "text"},
		{memory.Fact{Thread: "th/1", Text: "x"}, "thread"},
		{memory.Fact{Text: "x"}, "thread"},
		{memory.Fact{Thread: "th_1", Text: strings.Repeat("字", memory.MaxFactText+1)}, "text"},
		{memory.Fact{Thread: "th_1", Text: "x", Tags: make([]string, memory.MaxTags+1)}, "tags"},
		{memory.Fact{Thread: "th_1", Text: "x", Tags: []string{"ok", ""}}, "tags[1]"},
		{memory.Fact{Thread: "th_1", Text: "x", Source: strings.Repeat("s", memory.MaxSource+1)}, "source"},
	} {
		_, err := s.Remember(ctx, c.f)
		var ve *vigil.Error
		if !errors.As(err, &ve) || ve.Code != vigil.Invalid || ve.Field != c.field {
			t.Errorf("Remember(%.40v): %v, want invalid %s", c.f, err, c.field)
		}
	}
	_, err := s.Remember(context.Background(), memory.Fact{Thread: "th_1", Text: "x"})
	wantCode(t, err, vigil.Unauthorized, "Remember without a principal")
	_, err = s.Recall(context.Background(), "th_1", "x", 1)
	wantCode(t, err, vigil.Unauthorized, "Recall without a principal")
	_, err = s.Recall(ctx, "th:1", "x", 1)
	wantCode(t, err, vigil.Invalid, "Recall of an invalid thread")
}

// embedFunc is an Embedder made of a function.
type embedFunc func(ctx context.Context, texts []string) ([][]float32, error)

func (f embedFunc) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return f(ctx, texts)
}

// topicEmbedder embeds a text as how many of its words fall in each topic:
// weather, money, travel. Texts with no words in common can still be alike.
func topicEmbedder(calls *atomic.Int32, fail *atomic.Bool) memory.Embedder {
	topics := []map[string]bool{
		{"rain": true, "umbrella": true, "sunny": true, "cold": true, "weather": true, "晴": true},
		{"oil": true, "price": true, "stock": true, "cheap": true, "fuel": true},
		{"flight": true, "hotel": true, "trip": true, "fly": true, "hangzhou": true},
	}
	return embedFunc(func(ctx context.Context, texts []string) ([][]float32, error) {
		calls.Add(1)
		if fail.Load() {
			return nil, errors.New("embedding service down")
		}
		out := make([][]float32, len(texts))
		for i, text := range texts {
			v := make([]float32, len(topics))
			for _, w := range memory.Keywords(text) {
				for d, topic := range topics {
					if topic[w] {
						v[d]++
					}
				}
			}
			out[i] = v
		}
		return out, nil
	})
}

func TestRecallByEmbedding(t *testing.T) {
	clk := newClock()
	st := newMapStore()
	ctx := as("acme", "alice")

	// A fact remembered before any embedder was configured has no vector.
	plain := newService(t, st, memory.Options{Now: clk.Now})
	clk.tick()
	if _, err := plain.Remember(ctx, memory.Fact{Thread: "th_1", Text: "Booked a hotel near West Lake"}); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	var fail atomic.Bool
	s := newService(t, st, memory.Options{Now: clk.Now, Embedder: topicEmbedder(&calls, &fail)})
	for _, text := range []string{
		"Bring an umbrella: rain tomorrow, cold",
		"Fuel is cheap this week, oil price fell 5%",
		"Flight to Hangzhou on Friday",
	} {
		clk.tick()
		f, err := s.Remember(ctx, memory.Fact{Thread: "th_1", Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Vector) != 3 {
			t.Fatalf("Remember with an embedder stored vector %v", f.Vector)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("embedder called %d times for 3 facts, want 3", n)
	}

	// "sunny" is in no fact, so keywords find nothing; by meaning it is
	// about the weather.
	calls.Store(0)
	fs, err := s.Recall(ctx, "th_1", "will it be sunny?", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(fs); len(got) != 4 || got[0] != "Bring an umbrella: rain tomorrow, cold" {
		t.Fatalf("Recall by embedding = %q, want the weather fact first of all 4", got)
	}
	// Travel: the hotel fact (embedded on the way, one call for the query
	// and one for the facts without a vector) and the flight rank first;
	// their tie (one travel word each) goes to the newer, the flight.
	calls.Store(0)
	fs, err = s.Recall(ctx, "th_1", "trip plans", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(fs); !slices.Equal(got, []string{"Flight to Hangzhou on Friday", "Booked a hotel near West Lake"}) {
		t.Errorf("Recall(trip plans) = %q", got)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("embedder called %d times for one recall, want 2 (query, facts without vectors)", n)
	}

	// When the embedder fails, recall falls back to keywords, and facts are
	// still remembered, without a vector.
	fail.Store(true)
	fs, err = s.Recall(ctx, "th_1", "oil price", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(fs); !slices.Equal(got, []string{"Fuel is cheap this week, oil price fell 5%"}) {
		t.Errorf("Recall with a failing embedder = %q, want the keyword match", got)
	}
	f, err := s.Remember(ctx, memory.Fact{Thread: "th_1", Text: "sunny weekend ahead"})
	if err != nil || f.Vector != nil {
		t.Errorf("Remember with a failing embedder: %v, vector %v", err, f.Vector)
	}
}

func TestProfile(t *testing.T) {
	clk := newClock()
	st := newMapStore()
	s := newService(t, st, memory.Options{Key: key(1), Now: clk.Now})
	alice := as("acme", "alice")

	_, err := s.Profile(alice)
	wantCode(t, err, vigil.NotFound, "Profile before any PutProfile")

	in := memory.Profile{
		HomeCity:    "Zhangjiakou-unique-123",
		Language:    "zh",
		TimeZone:    "Asia/Shanghai",
		QuietHours:  &memory.QuietHours{Start: "22:00", End: "07:00"},
		Preferences: map[string]string{"units": "metric"},
		UpdatedAt:   time.Unix(1, 0), // ignored
	}
	put, err := s.PutProfile(alice, in)
	if err != nil {
		t.Fatal(err)
	}
	if !put.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("UpdatedAt = %v, want the clock's %v", put.UpdatedAt, clk.Now())
	}
	got, err := s.Profile(alice)
	if err != nil {
		t.Fatal(err)
	}
	if got.HomeCity != in.HomeCity || got.Language != "zh" || got.TimeZone != in.TimeZone || *got.QuietHours != *in.QuietHours ||
		got.Preferences["units"] != "metric" || !got.UpdatedAt.Equal(put.UpdatedAt) {
		t.Errorf("Profile = %+v, want %+v", got, put)
	}
	if got, err := s.ProfileOf(alice, "alice"); err != nil || got.HomeCity != in.HomeCity {
		t.Errorf("ProfileOf(alice) as alice: %+v, %v", got, err)
	}

	// Only alice reads alice's profile: bob of the same tenant, and alice of
	// another tenant, get not found.
	bob := as("acme", "bob")
	_, err = s.Profile(bob)
	wantCode(t, err, vigil.NotFound, "Profile as bob")
	_, err = s.ProfileOf(bob, "alice")
	wantCode(t, err, vigil.NotFound, "ProfileOf(alice) as bob")
	_, err = s.ProfileOf(vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "bob", Roles: []string{"admin"}}), "alice")
	wantCode(t, err, vigil.NotFound, "ProfileOf(alice) as an admin bob")
	_, err = s.Profile(as("globex", "alice"))
	wantCode(t, err, vigil.NotFound, "Profile as globex's alice")
	_, err = s.ProfileOf(context.Background(), "alice")
	wantCode(t, err, vigil.Unauthorized, "ProfileOf without a principal")
	_, err = s.Profile(as("acme", ""))
	wantCode(t, err, vigil.Forbidden, "Profile of a principal without a user")

	// Bob writing his own leaves alice's alone; deleting is per user too.
	if _, err := s.PutProfile(bob, memory.Profile{HomeCity: "Shenzhen"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProfile(bob); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProfile(bob); err != nil {
		t.Errorf("second DeleteProfile: %v", err)
	}
	if got, err := s.Profile(alice); err != nil || got.HomeCity != in.HomeCity {
		t.Errorf("alice's profile after bob's delete: %+v, %v", got, err)
	}
}

func TestProfileValidation(t *testing.T) {
	s := newService(t, newMapStore(), memory.Options{Key: key(1)})
	alice := as("acme", "alice")
	for _, c := range []struct {
		p     memory.Profile
		field string
	}{
		{memory.Profile{Language: "fr"}, "language"},
		{memory.Profile{Language: "ZH"}, "language"},
		{memory.Profile{TimeZone: "Mars/Olympus"}, "time_zone"},
		{memory.Profile{TimeZone: "Local"}, "time_zone"},
		{memory.Profile{QuietHours: &memory.QuietHours{Start: "25:00", End: "07:00"}}, "quiet_hours.start"},
		{memory.Profile{QuietHours: &memory.QuietHours{Start: "22:00", End: "7:00"}}, "quiet_hours.end"},
		{memory.Profile{QuietHours: &memory.QuietHours{Start: "22:00", End: "07:60"}}, "quiet_hours.end"},
		{memory.Profile{QuietHours: &memory.QuietHours{Start: "22:00"}}, "quiet_hours.end"},
		{memory.Profile{QuietHours: &memory.QuietHours{Start: "22:00", End: "22:00"}}, "quiet_hours.end"},
		{memory.Profile{HomeCity: strings.Repeat("城", memory.MaxHomeCity+1)}, "home_city"},
		{memory.Profile{Preferences: map[string]string{"": "x"}}, "preferences"},
		{memory.Profile{Preferences: map[string]string{"k": strings.Repeat("v", memory.MaxPreferenceText+1)}}, "preferences.k"},
	} {
		_, err := s.PutProfile(alice, c.p)
		var ve *vigil.Error
		if !errors.As(err, &ve) || ve.Code != vigil.Invalid || ve.Field != c.field {
			t.Errorf("PutProfile(%+v): %v, want invalid %s", c.p, err, c.field)
		}
	}
	ok := memory.Profile{Language: "en", TimeZone: "America/New_York", QuietHours: &memory.QuietHours{Start: "00:00", End: "23:59"}}
	if _, err := s.PutProfile(alice, ok); err != nil {
		t.Errorf("PutProfile(%+v): %v", ok, err)
	}
}

func TestQuiet(t *testing.T) {
	p := memory.Profile{TimeZone: "Asia/Shanghai", QuietHours: &memory.QuietHours{Start: "22:00", End: "07:00"}}
	for _, c := range []struct {
		utc  string
		want bool
	}{
		{"2026-11-22T13:59:00Z", false}, // 21:59 in Shanghai
		{"2026-11-22T14:00:00Z", true},  // 22:00
		{"2026-11-22T18:00:00Z", true},  // 02:00
		{"2026-11-22T22:59:00Z", true},  // 06:59
		{"2026-11-22T23:00:00Z", false}, // 07:00
	} {
		at, _ := time.Parse(time.RFC3339, c.utc)
		if got := p.Quiet(at); got != c.want {
			t.Errorf("Quiet(%s) = %v, want %v", c.utc, got, c.want)
		}
	}
	day := memory.Profile{QuietHours: &memory.QuietHours{Start: "12:00", End: "13:30"}}
	if !day.Quiet(time.Date(2026, 1, 1, 13, 29, 0, 0, time.UTC)) || day.Quiet(time.Date(2026, 1, 1, 13, 30, 0, 0, time.UTC)) {
		t.Errorf("Quiet of a span within one day is wrong at its end")
	}
	if (memory.Profile{}).Quiet(time.Now()) {
		t.Errorf("a profile without quiet hours is quiet")
	}
}

// TestProfileAtRest proves what the issue asks of long-term memory: the
// store holds no plain text, a sealed profile does not open for another
// user, and a wrong key fails to decrypt with an error that says so.
func TestProfileAtRest(t *testing.T) {
	const city = "Zhangjiakou-unique-123"
	st := newMapStore()
	s := newService(t, st, memory.Options{Key: key(1)})
	alice := as("acme", "alice")
	prof := memory.Profile{HomeCity: city, Preferences: map[string]string{"secret-pref": "secret-value-456"}}
	if _, err := s.PutProfile(alice, prof); err != nil {
		t.Fatal(err)
	}
	sealed, err := st.GetProfile(context.Background(), "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{city, "Zhangjiakou", "secret-pref", "secret-value", "home_city"} {
		if bytes.Contains(sealed, []byte(plain)) {
			t.Fatalf("stored profile contains %q in clear", plain)
		}
	}
	// A fresh nonce per write: the same profile seals differently.
	if _, err := s.PutProfile(alice, prof); err != nil {
		t.Fatal(err)
	}
	again, _ := st.GetProfile(context.Background(), "acme", "alice")
	if bytes.Equal(again[:len(again)-16], sealed[:len(sealed)-16]) {
		t.Errorf("two writes of one profile stored the same bytes; the nonce is not fresh")
	}

	// Copied to bob's key (by anyone with store access), it does not open as
	// bob's profile.
	if err := st.PutProfile(context.Background(), "acme", "bob", sealed); err != nil {
		t.Fatal(err)
	}
	_, err = s.Profile(as("acme", "bob"))
	if !errors.Is(err, memory.ErrDecrypt) || !strings.Contains(err.Error(), "belongs to another user") || strings.Contains(err.Error(), city) {
		t.Errorf("profile moved to bob: %v, want ErrDecrypt saying it belongs to another user", err)
	}
	// Altered bytes do not open either.
	bad := bytes.Clone(again)
	bad[len(bad)-1] ^= 1
	if err := st.PutProfile(context.Background(), "acme", "carol", bad); err != nil {
		t.Fatal(err)
	}
	if _, err = s.Profile(as("acme", "carol")); !errors.Is(err, memory.ErrDecrypt) {
		t.Errorf("altered profile: %v, want ErrDecrypt", err)
	}

	// A service with another key cannot read it, and says which key the
	// profile needs and which it has.
	wrong := newService(t, st, memory.Options{Key: key(2)})
	_, err = wrong.Profile(alice)
	if !errors.Is(err, memory.ErrDecrypt) {
		t.Fatalf("Profile under the wrong key: %v, want ErrDecrypt", err)
	}
	for _, want := range []string{memory.KeyID(key(1)), memory.KeyID(key(2)), "memory.key", "alice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("wrong-key error %q does not mention %q", err, want)
		}
	}
	if vigil.ErrorCode(err) != vigil.Internal || vigil.ErrorMessage(err) != "internal error" {
		t.Errorf("wrong-key error maps to %q %q; it must not reach clients", vigil.ErrorCode(err), vigil.ErrorMessage(err))
	}

	// Rotation: the old key as a previous key still opens the profile, and
	// the next write seals it under the new key.
	rotated := newService(t, st, memory.Options{Key: key(2), PreviousKeys: [][]byte{key(1)}})
	got, err := rotated.Profile(alice)
	if err != nil || got.HomeCity != city {
		t.Fatalf("Profile with the old key as a previous key: %+v, %v", got, err)
	}
	if _, err := rotated.PutProfile(alice, got); err != nil {
		t.Fatal(err)
	}
	if got, err := wrong.Profile(alice); err != nil || got.HomeCity != city {
		t.Errorf("after rotation, the new key alone reads: %+v, %v", got, err)
	}
	if _, err := s.Profile(alice); !errors.Is(err, memory.ErrDecrypt) {
		t.Errorf("after rotation, the old key alone reads the profile: %v", err)
	}

	// Without a key, long-term memory is off, and says so.
	off := newService(t, st, memory.Options{})
	_, err = off.Profile(alice)
	wantCode(t, err, vigil.Unavailable, "Profile with no key")
	_, err = off.PutProfile(alice, prof)
	wantCode(t, err, vigil.Unavailable, "PutProfile with no key")
}

func TestKeys(t *testing.T) {
	k := memory.NewKey()
	if len(k) != memory.KeySize || bytes.Equal(k, memory.NewKey()) {
		t.Fatalf("NewKey gave %d bytes, or the same key twice", len(k))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := memory.ParseKey(" " + enc.EncodeToString(k) + "\n")
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%v encoding): %v", enc, err)
		}
	}
	for _, s := range []string{"", "not base64 at all!", base64.StdEncoding.EncodeToString(k[:16])} {
		_, err := memory.ParseKey(s)
		var ve *vigil.Error
		if !errors.As(err, &ve) || ve.Field != "memory.key" || (s != "" && strings.Contains(err.Error(), s)) {
			t.Errorf("ParseKey(%q): %v, want an invalid memory.key that does not echo the value", s, err)
		}
	}
	_, err := memory.New(newMapStore(), memory.Options{Key: k[:16]})
	var ve *vigil.Error
	if !errors.As(err, &ve) || ve.Field != "memory.key" {
		t.Errorf("New with a 16-byte key: %v, want invalid memory.key", err)
	}
	_, err = memory.New(newMapStore(), memory.Options{Key: k, PreviousKeys: [][]byte{{1}}})
	if !errors.As(err, &ve) || ve.Field != "memory.previous_keys[0]" {
		t.Errorf("New with a short previous key: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := memory.KeyFile(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if len(k) != memory.KeySize || !bytes.Equal(k, keys[0]) {
			t.Fatalf("concurrent KeyFile calls returned different keys")
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v, want 0600", err, fi.Mode())
	}
	if k, err := memory.KeyFile(path); err != nil || !bytes.Equal(k, keys[0]) {
		t.Errorf("KeyFile on an existing file: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("KeyFile left %d files behind, want just the key", len(entries))
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := memory.KeyFile(path); err == nil || !strings.Contains(err.Error(), "memory.key") {
		t.Errorf("KeyFile on a corrupt file: %v", err)
	}
}
