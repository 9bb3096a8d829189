package bench_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/store/bolt"
)

// TestStreamsSmall runs the whole streams workload at a small size and
// checks that it measured what it claims: every append counted, every
// replay complete, every event delivered to every subscriber.
func TestStreamsSmall(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := bench.Streams(context.Background(), db, bench.StreamsOptions{
		Events: 300, Writers: 8, Threads: 10, ReplayEvents: 1200, ReplayRuns: 3,
		Subscribers: 20, Rate: 50, Duration: 400 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.AppendOneThread.Events != 300 || r.AppendManyThreads.Events != 300 || r.AppendOneThread.PerSecond() <= 0 {
		t.Errorf("append runs: %+v %+v", r.AppendOneThread, r.AppendManyThreads)
	}
	if len(r.Replay) != 3 || r.ReplayMedian() <= 0 {
		t.Errorf("replays: %v", r.Replay)
	}
	if r.Appended < 5 || r.Missing != 0 || r.Delivered != r.Appended*20 {
		t.Errorf("delivery: appended %d, delivered %d, missing %d", r.Appended, r.Delivered, r.Missing)
	}
	if p50, p99 := r.DeliveryQuantile(0.5), r.DeliveryQuantile(0.99); p50 <= 0 || p99 < p50 {
		t.Errorf("delivery quantiles p50 %s p99 %s", p50, p99)
	}
	var out bytes.Buffer
	r.WriteTo(&out)
	for _, want := range []string{"append, 1 thread", "replay 1200 events", "delivery to 20 SSE subscribers", "0 missing"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
