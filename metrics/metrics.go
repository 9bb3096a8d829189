// Package metrics exposes Vigil's operational metrics in the Prometheus
// text format, for GET /metrics.
//
// Data flows in two ways. The tasks Scheduler and Workers push events to a
// Tasks value through tasks.Observer (slots fired and how late, attempts
// ended and how long they took, retries, dead letters), which counts them
// in Prometheus counters and histograms. The queue is pulled instead: at
// each scrape a collector reads tasks.Queue.Stats, within a timeout, for
// the depth gauges. Handler serves everything, with the Go runtime and
// process collectors, from a registry of the Tasks value's own, not
// Prometheus's global one, so that tests and several servers in one
// process do not clash.
//
// No metric has a tenant, task or run label: the metrics count the whole
// process (the queue gauges: the whole queue), and their label values come
// from small fixed sets.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilhq/vigil/tasks"
)

// TasksOptions configure a Tasks. The zero value of every field means its
// default.
type TasksOptions struct {
	// Queue is read at each scrape for the queue gauges; nil means no
	// queue gauges (a process that runs no workers).
	Queue tasks.Queue
	// StatsTimeout bounds one Queue.Stats call; default 3s. A scrape
	// whose call fails or times out reports vigil_queue_up 0 and no depth
	// gauges, and the failure is logged.
	StatsTimeout time.Duration
	// Logger receives scrape failures; default slog.Default().
	Logger *slog.Logger
}

// Tasks holds the metrics of the task execution layer and serves them. It
// is a tasks.Observer: pass it as the Observer of the Scheduler and the
// Workers. It is safe for concurrent use.
type Tasks struct {
	reg     *prometheus.Registry
	handler http.Handler

	fired    *prometheus.CounterVec
	lag      prometheus.Histogram
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	dead     *prometheus.CounterVec
}

var _ tasks.Observer = (*Tasks)(nil)

// lagBuckets are the bounds of vigil_scheduler_lag_seconds: a slot fires
// up to a tick (default 500ms) after it is due; beyond the grace (default
// 1m) it was missed.
var lagBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

// durationBuckets are the bounds of vigil_run_duration_seconds: from one
// quick tool call to a long agent run.
var durationBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// NewTasks returns a Tasks with every metric registered, each labelled
// series at zero from the start (so that rate() sees the first event).
func NewTasks(opts TasksOptions) *Tasks {
	if opts.StatsTimeout <= 0 {
		opts.StatsTimeout = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Tasks{
		reg: prometheus.NewRegistry(),
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_scheduler_fired_total",
			Help: "Runs the scheduler created for due slots, by the task's priority.",
		}, []string{"priority"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_scheduler_lag_seconds",
			Help:    "How late the scheduler fired a slot: its pass's time minus the run's due time.",
			Buckets: lagBuckets,
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_runs_total",
			Help: "Attempts of runs (executor calls) that ended, by outcome.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_run_duration_seconds",
			Help:    "How long attempts of runs took in the executor, by outcome.",
			Buckets: durationBuckets,
		}, []string{"outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_run_retries_total",
			Help: "Failed attempts that are retried, by error class.",
		}, []string{"class"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_dead_letters_total",
			Help: "Runs marked failed for good (dead letters), by the class of their last error.",
		}, []string{"class"}),
	}
	for _, p := range tasks.Priorities {
		t.fired.WithLabelValues(string(p))
	}
	for _, o := range tasks.AttemptOutcomes {
		t.runs.WithLabelValues(string(o))
		t.duration.WithLabelValues(string(o))
	}
	for _, c := range tasks.ErrorClasses {
		t.retries.WithLabelValues(string(c))
		t.dead.WithLabelValues(string(c))
	}
	t.reg.MustRegister(t.fired, t.lag, t.runs, t.duration, t.retries, t.dead,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Queue != nil {
		t.reg.MustRegister(newQueueCollector(opts.Queue, opts.StatsTimeout, opts.Logger))
	}
	t.handler = promhttp.InstrumentMetricHandler(t.reg, promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            t.reg,
		MaxRequestsInFlight: 4,
	}))
	return t
}

// Handler serves the metrics in the Prometheus text format (or
// compressed, as the scraper negotiates). Every call returns the same
// handler.
func (t *Tasks) Handler() http.Handler { return t.handler }

// Fired implements tasks.Observer.
func (t *Tasks) Fired(p tasks.Priority, lateness time.Duration) {
	if p.Rank() < 0 {
		p = tasks.PriorityNormal // as the queue reads it
	}
	t.fired.WithLabelValues(string(p)).Inc()
	t.lag.Observe(lateness.Seconds())
}

// Finished implements tasks.Observer.
func (t *Tasks) Finished(outcome tasks.AttemptOutcome, took time.Duration) {
	t.runs.WithLabelValues(string(outcome)).Inc()
	t.duration.WithLabelValues(string(outcome)).Observe(took.Seconds())
}

// Retried implements tasks.Observer.
func (t *Tasks) Retried(class tasks.ErrorClass) {
	t.retries.WithLabelValues(classLabel(class)).Inc()
}

// DeadLettered implements tasks.Observer.
func (t *Tasks) DeadLettered(class tasks.ErrorClass) {
	t.dead.WithLabelValues(classLabel(class)).Inc()
}

// classLabel returns class as a label value: one of tasks.ErrorClasses, or
// "other" for a class an executor made up, so that the label's values stay
// few.
func classLabel(class tasks.ErrorClass) string {
	for _, c := range tasks.ErrorClasses {
		if class == c {
			return string(c)
		}
	}
	return "other"
}

// queueCollector reads the queue's Stats at each scrape.
type queueCollector struct {
	q       tasks.Queue
	timeout time.Duration
	logger  *slog.Logger

	up, depth, delayed, leased *prometheus.Desc
}

func newQueueCollector(q tasks.Queue, timeout time.Duration, logger *slog.Logger) *queueCollector {
	return &queueCollector{
		q: q, timeout: timeout, logger: logger,
		up: prometheus.NewDesc("vigil_queue_up",
			"1 if the last scrape read the run queue's counts, 0 if reading them failed or timed out.", nil, nil),
		depth: prometheus.NewDesc("vigil_queue_depth",
			"Runs ready in the queue for a worker to claim, by priority.", []string{"priority"}, nil),
		delayed: prometheus.NewDesc("vigil_queue_delayed",
			"Runs in the queue waiting for a delay (a retry's backoff) to pass.", nil, nil),
		leased: prometheus.NewDesc("vigil_queue_leased",
			"Runs leased to workers (active leases, expired ones not yet reclaimed included).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.depth
	ch <- c.delayed
	ch <- c.leased
}

// Collect implements prometheus.Collector. A failed read reports up 0 and
// no counts: a gap in the graphs, not false zeros.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.q.Stats(ctx)
	if err != nil {
		c.logger.Warn("metrics: cannot read the run queue's counts", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, p := range tasks.Priorities {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.Ready[p]), string(p))
	}
	ch <- prometheus.MustNewConstMetric(c.delayed, prometheus.GaugeValue, float64(st.Delayed))
	ch <- prometheus.MustNewConstMetric(c.leased, prometheus.GaugeValue, float64(st.Leased))
}
