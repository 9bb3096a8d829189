package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// Coalescer tuning: a few flush loops keep several pipelines in flight, each
// taking whatever appends queued up while the previous one was out, up to
// coalesceBatch. No loop ever waits for a batch to fill, so a lone append
// pays no added latency beyond a channel hand-off.
const (
	coalesceLoops = 4
	coalesceBatch = 256
)

// coalescer sends the scripts of concurrent calls down shared pipelines
// (Options.Coalesce): Append's, and those of the run path (RunTask,
// UpdateRun, and the queue's Claim, Extend, Ack and Release). Each call
// still runs its own script, so every call stays atomic on its own; only
// the round trips are shared.
type coalescer struct {
	client goredis.UniversalClient
	reqs   chan *appendReq
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// appendReq is one call waiting for its script's reply.
type appendReq struct {
	ctx    context.Context
	script *goredis.Script
	keys   []string
	args   []any
	res    any
	err    error
	done   chan struct{}
}

func newCoalescer(client goredis.UniversalClient) *coalescer {
	c := &coalescer{
		client: client,
		reqs:   make(chan *appendReq, coalesceLoops*coalesceBatch),
		stop:   make(chan struct{}),
	}
	c.wg.Add(coalesceLoops)
	for range coalesceLoops {
		go c.loop()
	}
	return c
}

// run queues one run of script and waits for its reply. If ctx ends after
// the script was queued, run returns ctx.Err() and the script may or may
// not have run, as with any command whose reply was not awaited.
func (c *coalescer) run(ctx context.Context, script *goredis.Script, keys []string, args []any) (any, error) {
	r := &appendReq{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		return nil, goredis.ErrClosed
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		// A request queued after the loops drained would wait forever.
		// Once they are gone, nothing else touches r.
		c.wg.Wait()
		select {
		case <-r.done:
			return r.res, r.err
		default:
			return nil, goredis.ErrClosed
		}
	}
}

func (c *coalescer) loop() {
	defer c.wg.Done()
	batch := make([]*appendReq, 0, coalesceBatch)
	for {
		select {
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		case <-c.stop:
			c.drain()
			return
		}
	fill:
		for len(batch) < coalesceBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.flush(batch)
		clear(batch)
	}
}

// flush runs one pipeline of scripts and hands each caller its reply.
func (c *coalescer) flush(batch []*appendReq) {
	ctx := context.Background()
	pipe := c.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(batch))
	for i, r := range batch {
		if r.ctx.Err() != nil {
			continue // its caller is gone; do not write behind its back
		}
		cmds[i] = r.script.EvalSha(ctx, pipe, r.keys, r.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	for i, r := range batch {
		switch cmd := cmds[i]; {
		case cmd == nil:
			r.err = r.ctx.Err()
		case goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT"):
			// The script cache was flushed (or this is a new server):
			// nothing ran, so run it alone, which loads the script.
			r.res, r.err = r.script.Run(ctx, c.client, r.keys, r.args...).Result()
		default:
			r.res, r.err = cmd.Result()
		}
		close(r.done)
	}
}

// drain fails the calls still queued when the coalescer stops.
func (c *coalescer) drain() {
	for {
		select {
		case r := <-c.reqs:
			r.err = goredis.ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

// close stops the flush loops after their current pipelines.
func (c *coalescer) close() {
	c.once.Do(func() { close(c.stop) })
	c.wg.Wait()
}

// runScript runs script once, down the coalescer's shared pipelines when
// the Log has one (Options.Coalesce), else on its own.
func (l *Log) runScript(ctx context.Context, script *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	if l.coalescer == nil {
		return script.Run(ctx, l.client, keys, args...)
	}
	cmd := goredis.NewCmd(ctx)
	res, err := l.coalescer.run(ctx, script, keys, args)
	if err != nil {
		cmd.SetErr(err)
	} else {
		cmd.SetVal(res)
	}
	return cmd
}
