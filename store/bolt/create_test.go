package bolt_test

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

func TestThreadedCreator(t *testing.T) {
	storetest.ThreadedCreator(t, func(t *testing.T) storetest.ThreadedStore {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}

// BenchmarkCreateThreadedTask measures the store's part of create_task
// under the MCP load's concurrency: 32 writers, each creating a task with
// its thread and first event, then appending an entry to one shared
// thread, as the audit log takes one per create. Each call returns only
// after its group commit's fsync. Compare creates/s with the MCP
// workload's create_task calls/s (docs/benchmarks.md): the store is
// several times faster than the MCP path above it.
func BenchmarkCreateThreadedTask(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "vigil.db"), bolt.Options{})
	const tenant = "acme"
	if err := db.CreateThread(b.Context(), streams.Thread{ID: "audit", Tenant: tenant, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now().UTC()
			th := streams.Thread{ID: vigil.NewID("th_"), Tenant: tenant, Title: "Weather in Paris", CreatedAt: now}
			t := tasks.Task{
				ID: vigil.NewID("tsk_"), Tenant: tenant, Owner: "local", Status: tasks.StatusDraft, Version: 1, ThreadID: th.ID,
				Spec: tasks.Spec{
					Title: "Weather in Paris", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"},
					Instruction: "Send me the weather forecast for Paris, with the high and low temperatures and the chance of rain.",
					Slots:       map[string]any{"city": "Paris", "units": "metric"},
				},
				CreatedAt: now, UpdatedAt: now,
			}
			ev, err := streams.NewEvent(streams.TaskStatus{TaskID: t.ID, To: string(tasks.StatusDraft)})
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := db.CreateThreadedTask(b.Context(), db, th, t, ev); err != nil {
				b.Error(err)
				return
			}
			if _, err := db.Append(b.Context(), tenant, "audit", []streams.Event{ev}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

func TestThreadedRunUpdater(t *testing.T) {
	storetest.ThreadedRunUpdater(t, func(t *testing.T) storetest.RunThreadStore {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}
