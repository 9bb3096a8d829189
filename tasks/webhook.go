package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/toolsregistry"
)

// HeaderIdempotencyKey carries a run's idempotency key (Run.IdempotencyKey)
// on every webhook POST: a receiver that has seen the key drops the
// notification, so that a run notified again after a crash is shown once.
const HeaderIdempotencyKey = "Idempotency-Key"

// NotifierOptions configure a Notifier. The zero value means defaults.
type NotifierOptions struct {
	// Guard keeps webhook POSTs away from addresses that are not public;
	// nil means a guard without allowances. Tests pass one that allows
	// 127.0.0.1.
	Guard *toolsregistry.Guard
	// Timeout bounds one POST; default 10s.
	Timeout time.Duration
	// Backoff are the waits before the retries of a POST that failed
	// (no answer, 408, 429 or 5xx); default 1s, 5s, 25s. A 2xx answer is
	// delivered; any other answer is final.
	Backoff []time.Duration
	// Now is the clock of the signature timestamps; default time.Now.
	Now func() time.Time
	// Logger receives failed deliveries; default slog.Default().
	Logger *slog.Logger
	// Sealer opens webhook secrets sealed at rest (Options.Sealer of the
	// Manager that stored them); it must hold the same key. Nil means
	// secrets are stored in plain text: a sealed one cannot be opened, and
	// its webhook is not called.
	Sealer *Sealer
}

// Notifier POSTs finished runs to their task's webhooks (Spec.Notify),
// signed as HTTP tools are: HeaderTimestamp carries the Unix time in
// seconds and HeaderSignature "sha256=" and the hex HMAC-SHA256 under the
// webhook's secret of the timestamp, a dot and the body
// (toolsregistry.Sign; toolsregistry.Verify checks it on the receiving
// side). A webhook without a secret gets no signature; a sealed secret is
// opened (NotifierOptions.Sealer) only to sign. Every POST carries
// the run's idempotency key in HeaderIdempotencyKey. It is safe for
// concurrent use.
type Notifier struct {
	client  *http.Client
	backoff []time.Duration
	now     func() time.Time
	logger  *slog.Logger
	sealer  *Sealer
}

// NewNotifier returns a Notifier.
func NewNotifier(opts NotifierOptions) (*Notifier, error) {
	g := opts.Guard
	if g == nil {
		var err error
		if g, err = toolsregistry.NewGuard(toolsregistry.GuardOptions{}); err != nil {
			return nil, err
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Backoff == nil {
		opts.Backoff = []time.Duration{time.Second, 5 * time.Second, 25 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := g.Client(opts.Timeout)
	// A redirect is not followed: Go's client would turn the POST into a
	// GET without the body the signature covers, and a 2xx to that GET
	// would count as delivered. The 3xx is the answer, a failure that
	// names it (post).
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Notifier{client: client, backoff: opts.Backoff, now: opts.Now, logger: opts.Logger, sealer: opts.Sealer}, nil
}

// Notification is the JSON body of a webhook POST: a finished run.
type Notification struct {
	// Event is "run.finished".
	Event          string          `json:"event"`
	IdempotencyKey string          `json:"idempotency_key"`
	TaskID         string          `json:"task_id"`
	RunID          string          `json:"run_id"`
	Title          string          `json:"title"`
	Slot           time.Time       `json:"slot"`
	Cause          Cause           `json:"cause"`
	Status         RunStatus       `json:"status"`
	Attempt        int             `json:"attempt"`
	Summary        string          `json:"summary,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	Error          string          `json:"error,omitempty"`
	ErrorClass     ErrorClass      `json:"error_class,omitempty"`
	FinishedAt     time.Time       `json:"finished_at"`
}

// notificationOf returns the notification of finished run r.
func notificationOf(r Run, summary string) Notification {
	return Notification{
		Event: "run.finished", IdempotencyKey: r.IdempotencyKey(), TaskID: r.TaskID, RunID: r.ID,
		Title: r.Spec.Title, Slot: r.Slot.UTC(), Cause: r.Cause, Status: r.Status, Attempt: r.Attempt,
		Summary: summary, Result: r.Result, Error: r.Error, ErrorClass: r.ErrorClass, FinishedAt: r.FinishedAt.UTC(),
	}
}

// Notify POSTs n to each webhook, retrying each as NotifierOptions.Backoff
// says, and returns the errors of the webhooks it could not reach, joined.
// Their texts name the webhook's host, never its full URL (which may hold
// a token).
func (n *Notifier) Notify(ctx context.Context, hooks []Webhook, note Notification) error {
	body, err := json.Marshal(note)
	if err != nil {
		return fmt.Errorf("tasks: encode notification: %w", err)
	}
	var errs []error
	for _, h := range hooks {
		secret, err := n.secret(note.TaskID, h)
		if err == nil {
			err = n.deliver(ctx, h.URL, secret, note.IdempotencyKey, body)
		} else {
			err = fmt.Errorf("webhook %s: %w", hookHost(h.URL), err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// secret returns the key that signs task taskID's POSTs to h: its secret,
// opened if it is sealed; "" for none.
func (n *Notifier) secret(taskID string, h Webhook) (string, error) {
	switch {
	case !Sealed(h.Secret):
		return h.Secret, nil
	case n.sealer == nil:
		return "", fmt.Errorf("%w: it is sealed and the notifier has no key (NotifierOptions.Sealer)", errOpen)
	}
	return n.sealer.Open(taskID, h.URL, h.Secret)
}

// hookHost is what errors call a webhook: its host, never its full URL.
func hookHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "webhook"
}

// deliver POSTs body to target, signed with secret unless it is empty,
// until it is delivered, final, or the retries are spent.
func (n *Notifier) deliver(ctx context.Context, target, secret, key string, body []byte) error {
	host := hookHost(target)
	var last error
	for attempt := 0; ; attempt++ {
		retry, err := n.post(ctx, target, secret, key, body)
		if err == nil {
			return nil
		}
		last = fmt.Errorf("webhook %s: %w", host, err)
		if !retry || attempt >= len(n.backoff) {
			return last
		}
		t := time.NewTimer(n.backoff[attempt])
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(last, ctx.Err())
		case <-t.C:
		}
	}
}

// post makes one POST and says whether a failure may be retried: not an
// address the guard refused.
func (n *Notifier) post(ctx context.Context, target, secret, key string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil/1 (+webhooks)")
	req.Header.Set(HeaderIdempotencyKey, key)
	if secret != "" {
		ts := strconv.FormatInt(n.now().Unix(), 10)
		req.Header.Set(toolsregistry.HeaderTimestamp, ts)
		req.Header.Set(toolsregistry.HeaderSignature, toolsregistry.Sign([]byte(secret), ts, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		var refused *toolsregistry.BlockedError
		if errors.As(err, &refused) {
			return false, err // the address will not change its kind
		}
		return ctx.Err() == nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	case c >= 300 && c < 400:
		to := "elsewhere"
		if loc, err := resp.Location(); err == nil && loc.Host != "" {
			to = "to " + loc.Host // the host only, like every message here
		}
		return false, fmt.Errorf("answered %s, a redirect %s; redirects are not followed: give the webhook its final URL", resp.Status, to)
	default:
		return false, fmt.Errorf("answered %s", resp.Status)
	}
}
