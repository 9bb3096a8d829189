package memory

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
)

// Fact is one item of session memory: something learned in a thread, from
// the user's words or from a task's run, that later turns or runs may
// recall.
type Fact struct {
	// ID is unique within the thread ("fct_…"); Remember assigns it.
	ID string `json:"id"`
	// Tenant and User are whose fact it is; Remember takes them from the
	// principal.
	Tenant string `json:"tenant"`
	User   string `json:"user,omitempty"`
	// Thread is the conversation or task thread the fact belongs to.
	Thread string `json:"thread"`
	// Text is the fact itself, in the user's language.
	Text string `json:"text"`
	// Tags are extra keywords recall matches, such as a slot name ("city").
	Tags []string `json:"tags,omitempty"`
	// Source says where the fact came from: "chat", "run:<id>", "tool:weather".
	Source string `json:"source,omitempty"`
	// CreatedAt is when the fact was remembered; Remember sets it.
	CreatedAt time.Time `json:"created_at"`
	// Vector is the fact's embedding, when an Embedder was configured as it
	// was remembered. It is kept for recall and is not meant for clients.
	Vector []float32 `json:"vector,omitempty"`
}

// Store persists session facts and sealed profiles. store/bolt and
// store/redis implement it, and store/storetest.Memory is its conformance
// suite.
//
// Every method is scoped by tenant: nothing of one tenant is visible to
// another. Tenant, user, thread and fact ids reaching a Store have passed
// vigil.ValidID; a Store rejects others with a vigil.Invalid error, because
// it builds keys from them.
//
// A Store never sees a profile in clear: the Service seals it first and the
// Store keeps the bytes exactly as given. Facts are stored in clear, with
// the search terms the Service derived from them.
//
// Implementations are safe for concurrent use by many goroutines and, in
// Redis mode, by many processes. Each method is atomic: a fact and its
// terms become visible together, and concurrent profile writes leave one
// of the written values (the last to commit).
type Store interface {
	// GetProfile returns the sealed profile of the tenant's user, or a
	// vigil.NotFound error if there is none. The caller owns the result.
	GetProfile(ctx context.Context, tenant, user string) ([]byte, error)

	// PutProfile stores sealed as the profile of the tenant's user,
	// replacing any earlier one. The Store keeps its own copy.
	PutProfile(ctx context.Context, tenant, user string, sealed []byte) error

	// DeleteProfile removes the profile of the tenant's user. Deleting a
	// profile that does not exist is not an error.
	DeleteProfile(ctx context.Context, tenant, user string) error

	// AddFact stores f in f.Tenant's thread f.Thread, indexed under terms
	// (each non-empty, at most MaxTermBytes bytes, with no NUL byte;
	// duplicates are ignored; terms are matched exactly, byte for byte). It
	// returns a vigil.Conflict error if the thread already has a fact f.ID.
	// Every field of f reads back as given (times to the nanosecond, as
	// time.Time.Equal; empty Tags and Vector may read back as nil).
	AddFact(ctx context.Context, f Fact, terms []string) error

	// ListFacts returns up to limit facts of the thread, newest first (in
	// the order they were added). A thread with no facts returns none and
	// no error. A limit below 1 is a vigil.Invalid error.
	ListFacts(ctx context.Context, tenant, thread string, limit int) ([]Fact, error)

	// FactCandidates returns the facts of the thread that were added with
	// at least one of terms, each once, newest first, at most limit of them.
	// The Service ranks them; the Store only narrows the search. A limit
	// below 1, or a term AddFact would refuse, is a vigil.Invalid error.
	FactCandidates(ctx context.Context, tenant, thread string, terms []string, limit int) ([]Fact, error)
}

// MaxTermBytes is the longest search term a Store must accept. Keywords
// never makes longer ones.
const MaxTermBytes = 255

// Limits on what Remember accepts.
const (
	MaxFactText = 2000 // runes of Fact.Text
	MaxTags     = 16   // tags per fact
	MaxTagLen   = 64   // runes per tag
	MaxSource   = 200  // runes of Fact.Source
)

// Defaults for the zero fields of Options.
const (
	// DefaultShortTermTokens is the token budget of Service.Window.
	DefaultShortTermTokens = 2000
	// DefaultMaxCandidates is how many stored facts one Recall ranks at most.
	DefaultMaxCandidates = 500
	// DefaultRecallLimit is how many facts Recall returns when asked for 0.
	DefaultRecallLimit = 10
	// MaxRecallLimit caps the facts one Recall or Facts call returns.
	MaxRecallLimit = 1000
)

// Options configure a Service. The zero value means defaults, with the
// long-term profile turned off (no key).
type Options struct {
	// Key is the 32-byte AES-256 key that seals profiles (see ParseKey and
	// KeyFile). Empty turns profiles off: their methods then answer a
	// vigil.Unavailable error, and nothing is ever stored in clear.
	Key []byte
	// PreviousKeys are older keys that still open profiles sealed under
	// them, so that the key can be rotated: profiles are re-sealed under Key
	// the next time they are written.
	PreviousKeys [][]byte
	// Embedder, if set, embeds facts as they are remembered and queries as
	// they are recalled, and Recall ranks by cosine similarity. Nil means
	// keyword recall.
	Embedder Embedder
	// ShortTermTokens is the token budget of Service.Window. Default
	// DefaultShortTermTokens.
	ShortTermTokens int
	// MaxCandidates bounds the stored facts one Recall reads and ranks.
	// Default DefaultMaxCandidates.
	MaxCandidates int
	// Now stamps facts and profiles. Default time.Now.
	Now func() time.Time
	// Logger receives warnings, such as an embedder failing. Default
	// slog.Default().
	Logger *slog.Logger
}

// Service is the memory of Vigil's agents: it wraps a Store with the
// profile key, and does the sealing, validation and recall. It is safe for
// concurrent use.
type Service struct {
	store         Store
	keys          []sealKey // keys[0] seals; every one opens
	embedder      Embedder
	shortTerm     int
	maxCandidates int
	now           func() time.Time
	logger        *slog.Logger
}

// sealKey is a profile key ready to use.
type sealKey struct {
	id   string // keyID of the key
	aead cipher.AEAD
}

// New returns a Service over store. It fails if a key is not KeySize bytes.
func New(store Store, opts Options) (*Service, error) {
	if store == nil {
		return nil, errors.New("memory: nil store")
	}
	s := &Service{
		store:         store,
		embedder:      opts.Embedder,
		shortTerm:     opts.ShortTermTokens,
		maxCandidates: opts.MaxCandidates,
		now:           opts.Now,
		logger:        opts.Logger,
	}
	if s.shortTerm <= 0 {
		s.shortTerm = DefaultShortTermTokens
	}
	if s.maxCandidates <= 0 {
		s.maxCandidates = DefaultMaxCandidates
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if len(opts.Key) == 0 && len(opts.PreviousKeys) > 0 {
		return nil, fmt.Errorf("memory: %w", vigil.FieldError("memory.key", "previous keys are set but the key is not"))
	}
	if len(opts.Key) > 0 {
		for i, k := range append([][]byte{opts.Key}, opts.PreviousKeys...) {
			sk, err := newSealKey(k)
			if err != nil {
				field := "memory.key"
				if i > 0 {
					field = fmt.Sprintf("memory.previous_keys[%d]", i-1)
				}
				return nil, fmt.Errorf("memory: %w", vigil.FieldError(field, "%v", err))
			}
			s.keys = append(s.keys, sk)
		}
	}
	return s, nil
}

// principal returns the principal of ctx, which must name a tenant.
func principal(ctx context.Context) (vigil.Principal, error) {
	if _, err := vigil.TenantFrom(ctx); err != nil {
		return vigil.Principal{}, err
	}
	p, _ := vigil.PrincipalFrom(ctx)
	return p, nil
}

// Remember stores f as a fact of f.Thread for the principal of ctx, and
// returns it as stored. Tenant, User, ID and CreatedAt are set by the
// Service (Tenant and User from the principal); Thread and Text are
// required. With an Embedder, the fact's text is embedded as well; if the
// embedder fails the fact is stored without a vector and a warning logged.
func (s *Service) Remember(ctx context.Context, f Fact) (Fact, error) {
	p, err := principal(ctx)
	if err != nil {
		return Fact{}, err
	}
	f.Tenant, f.User = p.Tenant, p.User
	f.ID = vigil.NewID("fct_")
	f.CreatedAt = s.now().UTC()
	f.Text = strings.TrimSpace(f.Text)
	f.Source = strings.TrimSpace(f.Source)
	if err := checkFact(f); err != nil {
		return Fact{}, err
	}
	if s.embedder != nil && len(f.Vector) == 0 {
		vs, err := s.embed(ctx, []string{embedText(f)})
		if err != nil {
			s.logger.WarnContext(ctx, "memory: embedder failed; fact stored for keyword recall only", "thread", f.Thread, "err", err)
		} else {
			f.Vector = vs[0]
		}
	}
	if err := s.store.AddFact(ctx, f, factTerms(f)); err != nil {
		return Fact{}, fmt.Errorf("memory: remember in %s: %w", f.Thread, err)
	}
	return f, nil
}

// checkFact validates what a caller of Remember gives.
func checkFact(f Fact) error {
	if !vigil.ValidID(f.Thread) {
		return vigil.FieldError("thread", "invalid thread id %q", f.Thread)
	}
	if f.Text == "" {
		return vigil.FieldError("text", "is required")
	}
	if n := utf8.RuneCountInString(f.Text); n > MaxFactText {
		return vigil.FieldError("text", "at most %d characters, got %d", MaxFactText, n)
	}
	if len(f.Tags) > MaxTags {
		return vigil.FieldError("tags", "at most %d tags, got %d", MaxTags, len(f.Tags))
	}
	for i, tag := range f.Tags {
		if strings.TrimSpace(tag) == "" || utf8.RuneCountInString(tag) > MaxTagLen {
			return vigil.FieldError(fmt.Sprintf("tags[%d]", i), "must be 1 to %d characters", MaxTagLen)
		}
	}
	if utf8.RuneCountInString(f.Source) > MaxSource {
		return vigil.FieldError("source", "at most %d characters", MaxSource)
	}
	return nil
}

// factTerms returns the search terms a fact is indexed under: the keywords
// of its text and tags.
func factTerms(f Fact) []string {
	return Keywords(f.Text + "\n" + strings.Join(f.Tags, "\n"))
}

// embedText is what an embedder sees of a fact.
func embedText(f Fact) string {
	if len(f.Tags) == 0 {
		return f.Text
	}
	return f.Text + "\n" + strings.Join(f.Tags, ", ")
}

// Facts returns up to limit facts of the principal's tenant's thread,
// newest first. A limit of 0 or less means DefaultRecallLimit; more than
// MaxRecallLimit means MaxRecallLimit.
func (s *Service) Facts(ctx context.Context, thread string, limit int) ([]Fact, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !vigil.ValidID(thread) {
		return nil, vigil.FieldError("thread", "invalid thread id %q", thread)
	}
	fs, err := s.store.ListFacts(ctx, p.Tenant, thread, recallLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("memory: facts of %s: %w", thread, err)
	}
	return fs, nil
}

func recallLimit(limit int) int {
	if limit <= 0 {
		return DefaultRecallLimit
	}
	return min(limit, MaxRecallLimit)
}

// Recall returns up to limit facts of the principal's tenant's thread that
// answer query, best first. An empty query returns the newest facts, as
// Facts does.
//
// Without an Embedder, recall is by keyword: a fact's score is how many of
// the query's distinct keywords (see Keywords) it contains, facts that
// contain none are left out, and ties go to the newer fact, then to the
// larger ID, so the same facts and query always give the same order. With
// an Embedder, the newest MaxCandidates facts are ranked by the cosine
// similarity of their vectors to the query's (facts stored without one are
// embedded on the way), with the same tie-break and no threshold; if the
// embedder fails, Recall logs a warning and falls back to keywords.
//
// A limit of 0 or less means DefaultRecallLimit; more than MaxRecallLimit
// means MaxRecallLimit.
func (s *Service) Recall(ctx context.Context, thread, query string, limit int) ([]Fact, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return s.Facts(ctx, thread, limit)
	}
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !vigil.ValidID(thread) {
		return nil, vigil.FieldError("thread", "invalid thread id %q", thread)
	}
	limit = recallLimit(limit)
	if s.embedder != nil {
		fs, err := s.recallByVector(ctx, p.Tenant, thread, query, limit)
		var ee *embedError
		if !errors.As(err, &ee) {
			return fs, err
		}
		s.logger.WarnContext(ctx, "memory: embedder failed; recalling by keyword", "thread", thread, "err", err)
	}
	terms := Keywords(query)
	if len(terms) == 0 {
		return []Fact{}, nil
	}
	cands, err := s.store.FactCandidates(ctx, p.Tenant, thread, terms, s.maxCandidates)
	if err != nil {
		return nil, fmt.Errorf("memory: recall in %s: %w", thread, err)
	}
	return rankByKeywords(cands, terms, limit), nil
}

// Window returns the most recent turns that fit the configured short-term
// budget (Options.ShortTermTokens), counted with EstimateTokens. See the
// package function Window.
func (s *Service) Window(turns []Turn) []Turn {
	return Window(turns, s.shortTerm, EstimateTokens)
}
