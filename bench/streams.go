// Package bench holds Vigil's load runs: measured workloads against a real
// backend and a real HTTP server on loopback, reporting throughput and
// latency. `vigil bench` runs them; Go benchmarks in each package measure
// single operations, these measure the system.
//
// Figures from a shared machine are noisy: run a workload several times and
// compare medians, not single runs.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/streams"
)

// StreamsOptions configure the streams workload. The zero value of a field
// means its default.
type StreamsOptions struct {
	Events       int           // events per append run (default 100,000)
	Writers      int           // concurrent appenders (default 64)
	Threads      int           // threads in the many-threads append run (default 1,000)
	ReplayEvents int           // events in the replayed thread (default 10,000)
	ReplayRuns   int           // replays measured (default 7)
	Subscribers  int           // concurrent SSE subscribers (default 1,000)
	Rate         int           // events per second during the delivery run (default 100)
	Duration     time.Duration // length of the delivery run (default 5s)
	// Progress, when set, receives a line as each phase starts.
	Progress io.Writer
}

func (o StreamsOptions) withDefaults() StreamsOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Events, 100_000)
	def(&o.Writers, 64)
	def(&o.Threads, 1000)
	def(&o.ReplayEvents, 10_000)
	def(&o.ReplayRuns, 7)
	def(&o.Subscribers, 1000)
	def(&o.Rate, 100)
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// StreamsReport is what the streams workload measured.
type StreamsReport struct {
	AppendOneThread   Throughput // events/s, every writer on one thread
	AppendManyThreads Throughput // events/s, writers spread over Threads threads

	ReplayEvents int             // events in the replayed thread
	Replay       []time.Duration // each GET /replay, sorted

	Subscribers int   // SSE subscribers connected
	Appended    int   // events appended during the delivery run
	Delivered   int   // frames received, over all subscribers
	Missing     int   // Appended × Subscribers − Delivered
	Delivery    []int // append-to-delivery delays in µs, sorted
}

// Throughput is a count over a duration.
type Throughput struct {
	Events  int
	Elapsed time.Duration
}

// PerSecond returns events per second.
func (t Throughput) PerSecond() float64 { return float64(t.Events) / t.Elapsed.Seconds() }

// ReplayMedian returns the median replay time.
func (r StreamsReport) ReplayMedian() time.Duration { return r.Replay[len(r.Replay)/2] }

// DeliveryQuantile returns the q-quantile (0 < q ≤ 1) of delivery delays.
func (r StreamsReport) DeliveryQuantile(q float64) time.Duration {
	if len(r.Delivery) == 0 {
		return 0
	}
	i := min(len(r.Delivery)-1, int(q*float64(len(r.Delivery))))
	return time.Duration(r.Delivery[i]) * time.Microsecond
}

// WriteTo prints the report as a table.
func (r StreamsReport) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "append, 1 thread          %9.0f events/s  (%d events in %s)\n", r.AppendOneThread.PerSecond(), r.AppendOneThread.Events, r.AppendOneThread.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "append, many threads      %9.0f events/s  (%d events in %s)\n", r.AppendManyThreads.PerSecond(), r.AppendManyThreads.Events, r.AppendManyThreads.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "replay %d events over HTTP: median %s, min %s, max %s (%d runs)\n", r.ReplayEvents, r.ReplayMedian().Round(time.Microsecond*100), r.Replay[0].Round(time.Microsecond*100), r.Replay[len(r.Replay)-1].Round(time.Microsecond*100), len(r.Replay))
	fmt.Fprintf(&b, "delivery to %d SSE subscribers: p50 %s, p99 %s, max %s (%d events, %d frames, %d missing)\n", r.Subscribers,
		r.DeliveryQuantile(0.50).Round(time.Microsecond*10), r.DeliveryQuantile(0.99).Round(time.Microsecond*10), r.DeliveryQuantile(1).Round(time.Microsecond*10),
		r.Appended, r.Delivered, r.Missing)
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// benchTenant is the tenant the API serves while auth is not configured.
const benchTenant = vigil.DefaultTenant

// Streams runs the streams workload against log: append throughput on one
// thread and on many, replay of a large thread over HTTP, and the delay
// from append to delivery with many SSE subscribers on one thread. It serves
// the HTTP API on a loopback port of its own. The events it writes stay in
// log; callers give it a log they can throw away.
func Streams(ctx context.Context, log streams.Log, opts StreamsOptions) (StreamsReport, error) {
	o := opts.withDefaults()
	var r StreamsReport
	var err error

	fmt.Fprintf(o.Progress, "append: %d events, %d writers, 1 thread\n", o.Events, o.Writers)
	if r.AppendOneThread, err = appendRun(ctx, log, o, 1); err != nil {
		return r, err
	}
	fmt.Fprintf(o.Progress, "append: %d events, %d writers, %d threads\n", o.Events, o.Writers, o.Threads)
	if r.AppendManyThreads, err = appendRun(ctx, log, o, o.Threads); err != nil {
		return r, err
	}

	hub := streams.NewHub(log, streams.HubOptions{})
	srv, base, err := serveAPI(log, hub)
	if err != nil {
		return r, err
	}
	defer srv.Close()

	fmt.Fprintf(o.Progress, "replay: %d events, %d runs\n", o.ReplayEvents, o.ReplayRuns)
	r.ReplayEvents = o.ReplayEvents
	if r.Replay, err = replayRun(ctx, log, base, o); err != nil {
		return r, err
	}
	fmt.Fprintf(o.Progress, "delivery: %d subscribers, %d events/s for %s\n", o.Subscribers, o.Rate, o.Duration)
	if err := deliveryRun(ctx, log, base, o, &r); err != nil {
		return r, err
	}
	return r, nil
}

func newThreads(ctx context.Context, log streams.Log, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = vigil.NewID("th_")
		if err := log.CreateThread(ctx, streams.Thread{ID: ids[i], Tenant: benchTenant, CreatedAt: time.Now().UTC()}); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// textEvent is a typical small event: a text payload carrying a marker.
// Its data is written directly rather than through streams.NewEvent, so the
// load generator spends no schema validation on the cores it is measuring;
// the payload is valid by construction (TestStreamsSmall checks one).
func textEvent(marker string) streams.Event {
	data := make([]byte, 0, 48+len(marker))
	data = append(data, `{"message_id":"msg_bench","text":`...)
	data = strconv.AppendQuote(data, marker)
	data = append(data, '}')
	return streams.Event{Type: streams.TypeText, TS: time.Now().UTC(), Data: data}
}

// appendRun appends o.Events single-event appends from o.Writers goroutines
// spread over threads threads, and times them.
func appendRun(ctx context.Context, log streams.Log, o StreamsOptions, threads int) (Throughput, error) {
	ids, err := newThreads(ctx, log, threads)
	if err != nil {
		return Throughput{}, err
	}
	var next atomic.Int64
	errs := make(chan error, o.Writers)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.Events) {
					return
				}
				e := textEvent("append " + strconv.FormatInt(i, 10))
				if _, err := log.Append(ctx, benchTenant, ids[int(i)%len(ids)], []streams.Event{e}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return Throughput{}, fmt.Errorf("append: %w", err)
	}
	return Throughput{Events: o.Events, Elapsed: elapsed}, nil
}

// serveAPI serves Vigil's HTTP API over log on a loopback port.
func serveAPI(log streams.Log, hub *streams.Hub) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	api := httpapi.New(httpapi.Options{Log: log, Hub: hub, Logger: discardLogger()})
	srv := &http.Server{Handler: api}
	srv.RegisterOnShutdown(api.CloseStreams)
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String(), nil
}

// replayRun fills a thread with o.ReplayEvents events and times full JSON
// replays of it over HTTP, body read to the end.
func replayRun(ctx context.Context, log streams.Log, base string, o StreamsOptions) ([]time.Duration, error) {
	ids, err := newThreads(ctx, log, 1)
	if err != nil {
		return nil, err
	}
	for i := 0; i < o.ReplayEvents; i += 500 {
		batch := make([]streams.Event, 0, 500)
		for j := i; j < min(i+500, o.ReplayEvents); j++ {
			batch = append(batch, textEvent("replay "+strconv.Itoa(j)))
		}
		if _, err := log.Append(ctx, benchTenant, ids[0], batch); err != nil {
			return nil, fmt.Errorf("replay: fill: %w", err)
		}
	}
	var times []time.Duration
	for range o.ReplayRuns {
		start := time.Now()
		resp, err := http.Get(base + "/v1/threads/" + ids[0] + "/replay")
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n == 0 {
			return nil, fmt.Errorf("replay: status %s, %d bytes, %v", resp.Status, n, err)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times, nil
}

// deliveryRun connects o.Subscribers SSE clients to one thread, appends
// o.Rate events a second for o.Duration, each stamped with its append time,
// and records every frame's delay from append to receipt.
func deliveryRun(ctx context.Context, log streams.Log, base string, o StreamsOptions, r *StreamsReport) error {
	ids, err := newThreads(ctx, log, 1)
	if err != nil {
		return err
	}
	url := base + "/v1/threads/" + ids[0] + "/events"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Subscribers, DisableCompression: true}}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	var delays []int
	var wg sync.WaitGroup
	connected := make(chan error, o.Subscribers)
	for range o.Subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(subCtx, "GET", url, nil)
			resp, err := client.Do(req)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("subscribe: %s", resp.Status)
			}
			connected <- err
			if err != nil {
				return
			}
			defer resp.Body.Close()
			mine := readDelays(resp.Body)
			mu.Lock()
			delays = append(delays, mine...)
			mu.Unlock()
		}()
	}
	for range o.Subscribers {
		if err := <-connected; err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}
	r.Subscribers = o.Subscribers

	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	end := time.Now().Add(o.Duration)
	for time.Now().Before(end) {
		<-tick.C
		e := textEvent("t=" + strconv.FormatInt(time.Now().UnixNano(), 10))
		if _, err := log.Append(ctx, benchTenant, ids[0], []streams.Event{e}); err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("delivery: append: %w", err)
		}
		r.Appended++
	}
	// Give the last frames time to arrive, then hang up.
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	slices.Sort(delays)
	r.Delivery, r.Delivered = delays, len(delays)
	r.Missing = r.Appended*r.Subscribers - r.Delivered
	return nil
}

var marker = []byte(`"text":"t=`)

// readDelays reads SSE frames until the stream ends and returns, per frame,
// the µs between the append time stamped in its text and its receipt.
func readDelays(body io.Reader) []int {
	var out []int
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		now := time.Now().UnixNano()
		i := bytes.Index(line, marker)
		if i < 0 || !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		rest := line[i+len(marker):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		sent, err := strconv.ParseInt(string(rest[:j]), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, int((now-sent)/1000))
	}
	// The run ends by hanging up, so the scanner's error says nothing.
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
