package toolsregistry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// Request is one tool call.
type Request struct {
	// Tenant is the caller's tenant; it decides which tools are visible.
	Tenant string
	// User is the user the call is made for (for a task run, the task's
	// owner); its calls share one bucket of Options.UserRate. Empty means
	// the user of the principal in the call's context, when it is of
	// Tenant; with neither, the call goes to the tenant's shared bucket
	// of calls made for no known user.
	User string
	// Scopes are the permissions the caller holds (for a task run, its
	// owner's). A tool runs only if they cover all of its scopes; a held
	// scope "read:*" covers every read scope, "*" covers all.
	Scopes []string
	// Tool is "name" (the default version) or "name@version".
	Tool string
	// Args is the arguments object; empty means {}.
	Args json.RawMessage
	// Location is the zone relative dates in Args mean (the task's zone);
	// nil means Options.Location.
	Location *time.Location
}

// Result is what a call returned.
type Result struct {
	// Tool and Version name the tool version that ran.
	Tool    string
	Version int
	// Args are the arguments the tool ran with, after repairs.
	Args json.RawMessage
	// Repairs lists what Repair changed in the arguments, if anything.
	Repairs []Repair
	// Output is the structured result, valid against the output schema.
	Output json.RawMessage
	// Parts are media for the user (see Output.Parts).
	Parts []streams.Payload
	// Cached says the result came from the cache rather than a fresh call.
	Cached bool
	// Stale, when set, is when the result was produced: the tool failed
	// and its FallbackCached policy returned an older result instead.
	Stale *time.Time
	// Warning, set with Stale, is the warning event to emit so that the
	// user knows ("weather is unavailable; using data from 08:00
	// yesterday").
	Warning *streams.Warning
	// Duration is how long the call took.
	Duration time.Duration
}

// ToolResult returns the payload of the tool_result event that reports res
// for the call callID.
func (res *Result) ToolResult(callID string) streams.ToolResult {
	out := res.Output
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	return streams.ToolResult{
		CallID:     callID,
		Tool:       res.Tool,
		Version:    strconv.Itoa(res.Version),
		Result:     out,
		DurationMS: res.Duration.Milliseconds(),
		Cached:     res.Cached,
	}
}

// Call runs one tool call through every guard, in this order:
//
//  1. resolve req.Tool for req.Tenant (vigil.NotFound);
//  2. check that req.Scopes cover the tool's scopes (vigil.Forbidden,
//     naming the missing scope);
//  3. validate the arguments and, when they are invalid, Repair them and
//     validate again (vigil.Invalid, naming the field and what it expects);
//  4. take a token from the tenant's bucket, then from the user's
//     (vigil.TooMany with RetryAfter);
//  5. serve a fresh cached result, if the tool caches (Result.Cached);
//  6. take a token from the tool's bucket (vigil.TooMany with RetryAfter);
//  7. through the tool's circuit breaker, run the handler under the
//     tool's timeout and validate its result against the output schema;
//  8. cache the result, keyed by tenant, tool version and the canonical
//     arguments;
//  9. on failure or an open breaker, apply the tool's Fallback: the last
//     cached result with a warning, or a structured error.
//
// The tenant's and the user's buckets are taken before the cache, so that
// a quota counts every call a tenant or user makes; the tool's after it,
// since the tool's limit protects its upstream, which a cached result does
// not reach. A bucket that refuses gives back the tokens taken before it.
//
// Every error is an *Error, which a caller turns into a tool_error event
// with its ToolError method. Call is safe for concurrent use.
func (r *Registry) Call(ctx context.Context, req Request) (*Result, error) {
	start := r.opts.Now()
	e, err := r.resolve(req.Tenant, req.Tool)
	if err != nil {
		name, _, _ := strings.Cut(req.Tool, "@")
		return nil, &Error{Code: vigil.ErrorCode(err), Tool: cmp.Or(name, "unknown"), Message: vigil.ErrorMessage(err), Err: err}
	}
	t := &e.tool
	fail := func(err *Error) (*Result, error) {
		err.Tool, err.Version = t.Name, t.Version
		return nil, err
	}
	if s := missingScope(t.Scopes, req.Scopes); s != "" {
		return fail(&Error{Code: vigil.Forbidden,
			Message: fmt.Sprintf("calling %s needs the scope %q, which the caller does not hold", t.Ref(), s)})
	}

	loc := cmp.Or(req.Location, r.opts.Location)
	args := req.Args
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	res := &Result{Tool: t.Name, Version: t.Version, Args: args}
	if verr := e.in.check(args); verr != nil {
		fixed, reps, verr := e.in.repair(args, start, loc)
		if verr != nil {
			return fail(verr)
		}
		res.Args, res.Repairs = fixed, reps
	}

	var tenantToken *rate.Reservation
	if lim := r.tenantLimiter(req.Tenant); lim != nil {
		tok, wait := reserve(lim, start)
		if wait > 0 {
			return fail(&Error{Code: vigil.TooMany, Retryable: true, RetryAfter: wait,
				Message: fmt.Sprintf("this tenant is over its quota of tool calls per minute; retry in %s", roundUp(wait))})
		}
		tenantToken = tok
	}
	giveBack := func() {
		if tenantToken != nil {
			tenantToken.CancelAt(start)
		}
	}
	user := callUser(ctx, req)
	if lim := r.userLimiter(req.Tenant, user, start); lim != nil {
		tok, wait := reserve(lim, start)
		if wait > 0 {
			giveBack()
			who := "user " + user
			if user == "" {
				who = "this tenant's calls for no known user"
			}
			return fail(&Error{Code: vigil.TooMany, Retryable: true, RetryAfter: wait,
				Message: fmt.Sprintf("%s is over the quota of %d tool calls per minute; retry in %s", who, lim.Burst(), roundUp(wait))})
		}
		tenantOnly := giveBack
		giveBack = func() { tenantOnly(); tok.CancelAt(start) }
	}

	caches := t.CacheTTL > 0 || t.Fallback == FallbackCached
	var key string
	if caches {
		key = cacheKey(req.Tenant, e, res.Args)
	}
	if t.CacheTTL > 0 {
		if out, _, ok := r.cache.get(key, start, t.CacheTTL); ok {
			res.Output, res.Parts, res.Cached = out.Value, out.Parts, true
			res.Duration = r.opts.Now().Sub(start)
			return res, nil
		}
	}

	if e.limiter != nil {
		if _, wait := reserve(e.limiter, start); wait > 0 {
			giveBack()
			return fail(&Error{Code: vigil.TooMany, Retryable: true, RetryAfter: wait,
				Message: fmt.Sprintf("%s is over its limit of %d calls per minute; retry in %s", t.Ref(), t.RateLimit, roundUp(wait))})
		}
	}

	out, err := e.breaker.Execute(func() (Output, error) { return r.run(ctx, e, res.Args) })
	now := r.opts.Now()
	res.Duration = now.Sub(start)
	if err == nil {
		if caches {
			r.cache.put(key, out, now)
		}
		res.Output, res.Parts = out.Value, out.Parts
		return res, nil
	}
	cerr := r.failure(ctx, e, err)
	if cerr.Code == vigil.Unavailable && t.Fallback == FallbackCached && ctx.Err() == nil {
		if out, at, ok := r.cache.get(key, now, r.opts.MaxStale); ok {
			res.Output, res.Parts, res.Cached, res.Stale = out.Value, out.Parts, true, &at
			res.Warning = &streams.Warning{
				Code:    "stale_cache",
				Message: fmt.Sprintf("%s is unavailable; using data from %s", t.Name, whenWas(at, now, loc)),
			}
			r.opts.Logger.WarnContext(ctx, "toolsregistry: serving a stale result", "tool", t.Ref(), "from", at, "err", err)
			return res, nil
		}
	}
	return fail(cerr)
}

// callUser is the user whose bucket a call takes from: req.User, else the
// principal's user when the principal is of req.Tenant, else "" (the
// tenant's calls for no known user).
func callUser(ctx context.Context, req Request) string {
	if req.User != "" {
		return req.User
	}
	if p, ok := vigil.PrincipalFrom(ctx); ok && p.Tenant == req.Tenant {
		return p.User
	}
	return ""
}

// callerFault marks an error that is not the tool's failure (the caller
// gave up, or sent arguments the tool refused): the breaker ignores it and
// no fallback applies.
type callerFault struct{ err error }

func (c callerFault) Error() string { return c.err.Error() }

// Unwrap returns the fault.
func (c callerFault) Unwrap() error { return c.err }

// badOutput marks a result that broke the tool's output schema.
type badOutput struct{ err *Error }

func (b badOutput) Error() string { return b.err.Error() }

// timedOut marks a call that ran out of the tool's time.
type timedOut struct{ after time.Duration }

func (t timedOut) Error() string { return fmt.Sprintf("timed out after %s", t.after) }

// run calls e's handler under e's timeout and checks its output. The
// handler runs in its own goroutine, so that one which ignores its context
// still cannot hold the caller beyond the timeout.
func (r *Registry) run(ctx context.Context, e *entry, args json.RawMessage) (Output, error) {
	if err := ctx.Err(); err != nil {
		return Output{}, callerFault{err}
	}
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	type answer struct {
		out Output
		err error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.opts.Logger.ErrorContext(ctx, "toolsregistry: handler panicked",
					"tool", e.tool.Ref(), "panic", p, "stack", string(debug.Stack()))
				done <- answer{err: errors.New("the tool failed unexpectedly")}
			}
		}()
		out, err := e.handler.Call(cctx, args)
		done <- answer{out, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-cctx.Done():
		a.err = cctx.Err()
	}
	if a.err != nil {
		switch {
		case ctx.Err() != nil:
			return Output{}, callerFault{ctx.Err()}
		case errors.Is(cctx.Err(), context.DeadlineExceeded):
			return Output{}, timedOut{e.timeout}
		case vigil.ErrorCode(a.err) == vigil.Invalid:
			return Output{}, callerFault{a.err}
		}
		return Output{}, a.err
	}
	out := a.out
	if len(bytes.TrimSpace(out.Value)) == 0 {
		out.Value = json.RawMessage("null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, out.Value); err != nil {
		return Output{}, badOutput{&Error{Code: vigil.Unavailable, Field: "result", Message: "is not valid JSON"}}
	}
	out.Value = buf.Bytes()
	if e.out != nil {
		if verr := e.out.check(out.Value); verr != nil {
			return Output{}, badOutput{verr}
		}
	}
	return out, nil
}

// failure turns what the breaker returned into the *Error of the call. Code
// vigil.Unavailable means the tool failed, which the fallback may cover.
func (r *Registry) failure(ctx context.Context, e *entry, err error) *Error {
	t := &e.tool
	var (
		cf  callerFault
		bo  badOutput
		to  timedOut
		vge *vigil.Error
	)
	switch {
	case errors.As(err, &cf):
		if ctx.Err() != nil {
			return &Error{Code: vigil.Unavailable, Message: "the call was cancelled before it finished", Retryable: true, Err: ctx.Err()}
		}
		var te *Error
		if errors.As(cf.err, &te) {
			c := *te
			return &c
		}
		if errors.As(cf.err, &vge) {
			return &Error{Code: vigil.Invalid, Field: vge.Field, Message: vge.Message, Err: cf.err}
		}
		return &Error{Code: vigil.Invalid, Message: cf.err.Error(), Err: cf.err}
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		wait := r.opts.Breaker.OpenFor - time.Since(time.Unix(0, e.opened.Load()))
		wait = max(wait, time.Second)
		return &Error{Code: vigil.Unavailable, Retryable: true, RetryAfter: wait, Err: err,
			Message: fmt.Sprintf("%s keeps failing, so its calls are paused (circuit breaker open); retry in %s", t.Ref(), roundUp(wait))}
	case errors.As(err, &bo):
		return &Error{Code: vigil.Unavailable, Err: err,
			Message: fmt.Sprintf("%s returned a result that breaks its output schema: %s", t.Ref(), bo.err.Error())}
	case errors.As(err, &to):
		return &Error{Code: vigil.Unavailable, Retryable: true, Err: err,
			Message: fmt.Sprintf("%s timed out after %s", t.Ref(), to.after)}
	}
	if t.Fallback == FallbackNone {
		code := vigil.ErrorCode(err)
		if code == vigil.Internal {
			code = vigil.Unavailable
		}
		return &Error{Code: code, Message: err.Error(), Retryable: code == vigil.Unavailable || code == vigil.TooMany, Err: err}
	}
	return &Error{Code: vigil.Unavailable, Retryable: true, Err: err,
		Message: fmt.Sprintf("%s failed: %s", t.Ref(), err.Error())}
}

// missingScope returns the first scope of need that held does not cover,
// or "".
func missingScope(need, held []string) string {
next:
	for _, s := range need {
		for _, h := range held {
			if h == s || h == "*" || (strings.HasSuffix(h, ":*") && strings.HasPrefix(s, h[:len(h)-1])) {
				continue next
			}
		}
		return s
	}
	return ""
}

// reserve takes a token from lim at now, or returns how long until one is
// free (and takes none).
func reserve(lim *rate.Limiter, now time.Time) (*rate.Reservation, time.Duration) {
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return nil, time.Minute
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return nil, d
	}
	return res, 0
}

// cacheKey identifies a call's result: the caller's tenant (a handler may
// read the principal from its context, so results are never shared across
// tenants), the registration of the tool version (so a version registered
// anew never sees its predecessor's results) and the canonical arguments
// (keys sorted, no spaces).
func cacheKey(tenant string, e *entry, args json.RawMessage) string {
	canon := args
	var v any
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	if dec.Decode(&v) == nil {
		canon = marshal(v)
	}
	return tenant + "\x00" + e.tool.Ref() + "#" + strconv.FormatUint(e.serial, 10) + "\x00" + string(canon)
}

// whenWas says when at was, seen from now in loc: "08:00 today", "08:00
// yesterday", "08:00 on Monday", "08:00 on 3 Nov" or "08:00 on 3 Nov 2025".
func whenWas(at, now time.Time, loc *time.Location) string {
	at, now = at.In(loc), now.In(loc)
	clock := at.Format("15:04")
	days := int(math.Round(midnight(now).Sub(midnight(at)).Hours() / 24))
	switch {
	case days == 0:
		return clock + " today"
	case days == 1:
		return clock + " yesterday"
	case days > 1 && days < 7:
		return clock + " on " + at.Weekday().String()
	case at.Year() == now.Year():
		return clock + " on " + at.Format("2 Jan")
	}
	return clock + " on " + at.Format("2 Jan 2006")
}

// roundUp rounds d up to a whole second, for messages.
func roundUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
