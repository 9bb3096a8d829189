package toolsregistry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// The headers that sign a call to an HTTP tool.
const (
	// HeaderTimestamp carries the Unix time of the call in seconds.
	HeaderTimestamp = "X-Vigil-Timestamp"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256, under the
	// tool's secret, of the timestamp, a dot and the body.
	HeaderSignature = "X-Vigil-Signature"
)

// SignatureTolerance is how far a signed call's timestamp may be from the
// verifier's clock; older calls are refused as possible replays.
const SignatureTolerance = 5 * time.Minute

// Sign returns the value of HeaderSignature for body sent at timestamp
// (Unix seconds, as sent in HeaderTimestamp): "sha256=" followed by the hex
// HMAC-SHA256 under secret of timestamp + "." + body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks that r is a call signed with secret, as an HTTP tool's
// server receives it: both headers present, a timestamp within
// SignatureTolerance of now, a matching signature (compared in constant
// time). It reads the body (at most 8 MiB), returns it and leaves a copy in
// r.Body for the handler. Every refusal is a vigil.Unauthorized error.
func Verify(secret []byte, r *http.Request) ([]byte, error) {
	ts, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return nil, vigil.Errorf(vigil.Unauthorized, "missing %s or %s header", HeaderTimestamp, HeaderSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, vigil.Errorf(vigil.Unauthorized, "%s is not a Unix time in seconds", HeaderTimestamp)
	}
	if d := time.Since(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return nil, vigil.Errorf(vigil.Unauthorized, "%s is more than %s away from now", HeaderTimestamp, SignatureTolerance)
	}
	const maxBody = 8 << 20
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("toolsregistry: read signed body: %w", err)
	}
	if len(body) > maxBody {
		return nil, vigil.Errorf(vigil.Unauthorized, "body is larger than %d bytes", maxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sig)) {
		return nil, vigil.Errorf(vigil.Unauthorized, "the signature does not match")
	}
	return body, nil
}

// HTTPOptions configure the handler of an HTTP tool, a tool whose server a
// plugin author runs.
type HTTPOptions struct {
	// URL is where calls are POSTed.
	URL string
	// Secret signs every call (see Sign). Handlers never log or print it.
	Secret []byte
	// Guard keeps calls away from non-public addresses; nil means a guard
	// with no allowances. Tests and intranet plugins pass one with Allow.
	Guard *Guard
	// MaxBody caps the answer's size; zero means 1 MiB.
	MaxBody int64
	// Now is the clock of the timestamps; nil means time.Now.
	Now func() time.Time
}

// NewHTTPHandler returns the handler of an HTTP tool. Each call POSTs the
// validated arguments as a JSON body to opts.URL with HeaderTimestamp and
// HeaderSignature, through the guard; a 2xx answer's JSON body is the
// result (the registry checks it against the output schema). A 4xx answer
// (other than 408 and 429) is the arguments' fault: a vigil.Invalid error
// with the server's message ({"error": "…"} or text); anything else — 5xx,
// 408, 429, no answer, a refused address, a body that is not JSON — is a
// failure of the tool. The error texts never show the URL, which may carry
// a token.
func NewHTTPHandler(opts HTTPOptions) (Handler, error) {
	u, err := checkURL("url", opts.URL)
	if err != nil {
		return nil, err
	}
	if len(opts.Secret) == 0 {
		return nil, vigil.FieldError("secret", "is required: calls are signed with it")
	}
	if opts.Guard == nil {
		if opts.Guard, err = NewGuard(GuardOptions{}); err != nil {
			return nil, err
		}
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &httpTool{url: u.String(), secret: bytes.Clone(opts.Secret), client: opts.Guard.Client(0), maxBody: opts.MaxBody, now: opts.Now}, nil
}

type httpTool struct {
	url     string
	secret  []byte
	client  *http.Client
	maxBody int64
	now     func() time.Time
}

// String describes the handler without its secret or URL query.
func (h *httpTool) String() string {
	u, _ := url.Parse(h.url)
	return "HTTP tool at " + u.Scheme + "://" + u.Host + u.Path
}

// Call implements Handler: one signed POST.
func (h *httpTool) Call(ctx context.Context, args json.RawMessage) (Output, error) {
	ts := strconv.FormatInt(h.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(args))
	if err != nil {
		return Output{}, errors.New("the tool's URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Vigil/1 (+tools)")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(h.secret, ts, args))
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, ctx.Err()
		}
		if be, ok := blocked(err); ok {
			return Output{}, fmt.Errorf("the tool's server is not reachable: %s", be.Error())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Output{}, fmt.Errorf("the tool's server did not answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	if err != nil {
		return Output{}, fmt.Errorf("the tool's server broke off its answer: %v", err)
	}
	if int64(len(body)) > h.maxBody {
		return Output{}, fmt.Errorf("the tool's answer is larger than %d bytes", h.maxBody)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if !json.Valid(body) {
			return Output{}, errors.New("the tool's server answered with something that is not JSON")
		}
		return Output{Value: body}, nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return Output{}, vigil.Errorf(vigil.Invalid, "the tool refused the call (HTTP %d): %s", code, answerText(body))
	default:
		return Output{}, fmt.Errorf("the tool's server answered HTTP %d: %s", code, answerText(body))
	}
}

// answerText is what a failed answer says, short: its "error" or "message"
// field if it is a JSON object, else its first 300 bytes of text.
func answerText(body []byte) string {
	var obj map[string]any
	if json.Unmarshal(body, &obj) == nil {
		for _, k := range []string{"error", "message"} {
			if s, ok := obj[k].(string); ok && s != "" {
				body = []byte(s)
				break
			}
		}
	}
	s := strings.ToValidUTF8(strings.TrimSpace(string(body)), "")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	if s == "" {
		return "no details"
	}
	return s
}
