package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/streams"
)

// DefaultFallbackTimeout is how long a Fallback waits for its Primary when
// it sets no Timeout.
const DefaultFallbackTimeout = 30 * time.Second

// Fallback is a Model that asks Primary, and Secondary when Primary fails
// or does not answer within Timeout: in Vigil, the configured LLM backed by
// the Offline model, so that an agent keeps working, in a degraded way,
// when its LLM is down, out of quota or slow.
//
// Any error of Primary's leads to Secondary (an unreachable server, a 500, a
// bad key, a malformed answer), except one that comes from the caller's own
// ctx being done: then Generate returns it and Secondary is not asked.
// OnFallback, if set, is called with Primary's error (wrapping
// context.DeadlineExceeded on a timeout) before Secondary is asked, so the
// agent can emit its warning event (FallbackWarning) and start a new
// streamed message: Primary may have streamed pieces before it failed, and
// Secondary's pieces do not continue them. OnFallback may be called from
// several goroutines at once when Generate is.
type Fallback struct {
	// Primary answers when it can, Secondary when it cannot; both must be
	// set.
	Primary, Secondary Model

	// Timeout bounds Primary's answer, streaming included; 0 means
	// DefaultFallbackTimeout.
	Timeout time.Duration

	// OnFallback, if set, hears of every fallback.
	OnFallback func(err error)
}

// Generate implements Model.
func (f *Fallback) Generate(ctx context.Context, msgs []Message, tools []Tool, opts Options) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultFallbackTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	resp, err := f.Primary.Generate(pctx, msgs, tools, opts)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	if err == nil {
		return resp, nil
	}
	if ctx.Err() != nil {
		return Response{}, err
	}
	if timedOut {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("agent: primary model gave no answer within %s: %w", timeout, err)
		} else {
			err = fmt.Errorf("agent: primary model gave no answer within %s: %w: %w", timeout, context.DeadlineExceeded, err)
		}
	}
	if f.OnFallback != nil {
		f.OnFallback(err)
	}
	resp, err2 := f.Secondary.Generate(ctx, msgs, tools, opts)
	if err2 != nil {
		return Response{}, fmt.Errorf("agent: secondary model: %w (after the primary failed: %w)", err2, err)
	}
	return resp, nil
}

// FallbackWarningCode is the code of the warning event an agent emits when
// a Fallback falls back.
const FallbackWarningCode = "model_fallback"

// FallbackWarning returns the payload of the warning event an agent emits
// from OnFallback, in the user's language ("zh" or anything else for
// English). It does not say why Primary failed: that is for the logs.
func FallbackWarning(lang string) streams.Warning {
	return streams.Warning{
		Code:    FallbackWarningCode,
		Message: pick(lang == "zh", "LLM unavailable, using the offline model.", "大模型暂不可用，已改用离线模型。"),
	}
}

// hooked returns m with fn called at every fallback, after m's own
// OnFallback, when m is a *Fallback; otherwise m as it is. The copy
// shares m's models, so a turn or a run can hear of its own fallbacks
// without touching the model other callers share.
func hooked(m Model, fn func(error)) Model {
	f, ok := m.(*Fallback)
	if !ok {
		return m
	}
	fb := *f
	fb.OnFallback = func(err error) {
		if f.OnFallback != nil {
			f.OnFallback(err)
		}
		fn(err)
	}
	return &fb
}
