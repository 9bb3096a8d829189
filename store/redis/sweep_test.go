package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

func TestSweeps(t *testing.T) {
	storetest.Sweeps(t, func(t *testing.T) tasks.Store {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}

// TestSweepScan makes the walk of a store whose indexes are not complete
// (its first, on a new prefix), by SCAN, over more keys than one SCAN step
// returns, beside another deployment's keys (another prefix) and a corrupt
// run: every queued run of this prefix is reported, none of the other's,
// and the corrupt one is skipped and named in the error.
func TestSweepScan(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	// A prefix that starts with this one: its keys must not match.
	other := open(t, prefix+"x", redis.Options{MaxFollowers: 4})
	t.Cleanup(func() {
		if err := redis.DeletePrefix(context.Background(), client(t), prefix+"x"); err != nil {
			t.Error(err)
		}
	})
	const n = 2500 // runs; SCAN steps by 1000
	for _, s := range []*redis.Log{l, other} {
		if err := s.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		r := newRun("acme", fmt.Sprintf("run_%04d", i), "tsk_1", taskAt.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			r.Status = tasks.RunSucceeded
		}
		if err := l.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.CreateRun(ctx, newRun("acme", "run_other", "tsk_1", taskAt)); err != nil {
		t.Fatal(err)
	}
	bad := prefix + ":t:acme:tasks:{acme}:run:run_bad"
	if err := client(t).HSet(ctx, bad, "status", "queued", "created", "x", "json", "{").Err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err := l.QueuedRuns(ctx, taskAt.Add(24*time.Hour), func(r tasks.Run) error {
		if r.Status != tasks.RunQueued || r.Tenant != "acme" {
			t.Errorf("reported run %s: %s of %s", r.ID, r.Status, r.Tenant)
		}
		seen[r.ID] = true
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "run_bad") {
		t.Errorf("QueuedRuns over a corrupt run: %v; want an error naming it", err)
	}
	if len(seen) != n/2 || seen["run_other"] {
		t.Errorf("QueuedRuns reported %d runs (run_other: %v); want %d, not the other prefix's", len(seen), seen["run_other"], n/2)
	}
}

// indexOf returns a sorted set's members with their scores, as
// "member@score".
func indexOf(t *testing.T, key string) []string {
	t.Helper()
	zs, err := client(t).ZRangeWithScores(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, z := range zs {
		out = append(out, fmt.Sprintf("%v@%d", z.Member, int64(z.Score)))
	}
	return out
}

// sweptIDs returns the ids of the queued runs and the one-shot tasks the
// two walks report before before.
func sweptIDs(t testing.TB, l *redis.Log, before time.Time) (runs, oneShots []string) {
	t.Helper()
	ctx := context.Background()
	if err := l.QueuedRuns(ctx, before, func(r tasks.Run) error {
		runs = append(runs, r.Tenant+"/"+r.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.ActiveOneShots(ctx, before, func(task tasks.Task) error {
		oneShots = append(oneShots, task.Tenant+"/"+task.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(runs)
	slices.Sort(oneShots)
	return runs, oneShots
}

// TestSweepIndexes follows a run through queued → running → queued →
// succeeded and a one-shot task through active → paused → active →
// archived → active → deleted, and checks after each step the tenant's
// queued and at indexes, and that the walks read them: a queued run hash
// written behind the store's back, which a SCAN would find, is not
// reported once the indexes are complete.
func TestSweepIndexes(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	base := prefix + ":t:acme:tasks:{acme}:"
	ms := func(tm time.Time) int64 { return tm.UnixMilli() }
	checkIndex := func(step, name string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		if got := indexOf(t, base+name); !slices.Equal(got, want) {
			t.Errorf("%s: %s index = %q, want %q", step, name, got, want)
		}
	}
	// An empty store: the walks SCAN once, and mark the indexes complete.
	if runs, shots := sweptIDs(t, l, taskAt); len(runs)+len(shots) != 0 {
		t.Fatalf("walks of an empty store: %v %v", runs, shots)
	}
	marks, err := client(t).HGetAll(ctx, prefix+":sched:{"+prefix+"}:indexed").Result()
	if err != nil || len(marks) != 2 {
		t.Fatalf("indexed hash after the first walks: %v, %v; want queued and at", marks, err)
	}
	stray := base + "run:run_stray"
	if err := client(t).HSet(ctx, stray, "status", "queued", "created", "x", "json", "{").Err(); err != nil {
		t.Fatal(err)
	}

	// The task: a one-shot, its time past.
	task := newTask("acme", "tsk_1")
	task.Kind, task.Trigger = tasks.KindOneShot, tasks.Trigger{At: taskAt.Add(-time.Hour)}
	if err := l.CreateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	atEntry := fmt.Sprintf("tsk_1@%d", ms(task.Trigger.At))
	checkIndex("created active", "at", atEntry)
	tenants, err := client(t).SMembers(ctx, prefix+":sched:{"+prefix+"}:tenants").Result()
	if err != nil || !slices.Equal(tenants, []string{"acme"}) {
		t.Errorf("tenants = %q, %v; want acme", tenants, err)
	}
	for _, step := range []struct {
		status tasks.Status
		want   []string
	}{
		{tasks.StatusPaused, nil},
		{tasks.StatusActive, []string{atEntry}},
		{tasks.StatusArchived, nil},
		{tasks.StatusActive, []string{atEntry}},
	} {
		task.Status = step.status
		v, err := l.UpdateTask(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		task.Version = v
		checkIndex("task "+string(step.status), "at", step.want...)
	}
	// A new time moves the entry.
	task.Trigger.At = taskAt.Add(-30 * time.Minute)
	if task.Version, err = l.UpdateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	atEntry = fmt.Sprintf("tsk_1@%d", ms(task.Trigger.At))
	checkIndex("task moved", "at", atEntry)

	// The run: created queued, then through its states.
	run := newRun("acme", "run_1", "tsk_1", taskAt.Add(-2*time.Hour))
	if err := l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	checkIndex("run created", "queued", fmt.Sprintf("run_1@%d", ms(run.UpdatedAt)))
	runs, shots := sweptIDs(t, l, taskAt)
	if !slices.Equal(runs, []string{"acme/run_1"}) || !slices.Equal(shots, []string{"acme/tsk_1"}) {
		t.Errorf("walks = %v %v; want acme/run_1 (not run_stray, which no index holds) and acme/tsk_1", runs, shots)
	}
	from := run.Status
	for i, step := range []struct {
		status tasks.RunStatus
		queued bool
	}{
		{tasks.RunRunning, false},
		{tasks.RunQueued, true},
		{tasks.RunSucceeded, false},
	} {
		run.Status, run.UpdatedAt = step.status, taskAt.Add(time.Duration(i-60)*time.Minute)
		if err := l.UpdateRun(ctx, run, from); err != nil {
			t.Fatal(err)
		}
		from = run.Status
		var want []string
		if step.queued {
			want = []string{fmt.Sprintf("run_1@%d", ms(run.UpdatedAt))}
		}
		checkIndex("run "+string(step.status), "queued", want...)
	}
	// A second run, queued when its task is deleted.
	run2 := newRun("acme", "run_2", "tsk_1", taskAt.Add(-3*time.Hour))
	if err := l.CreateRuns(ctx, []tasks.Run{run2})[0]; err != nil {
		t.Fatal(err)
	}
	checkIndex("run_2 created", "queued", fmt.Sprintf("run_2@%d", ms(run2.UpdatedAt)))
	if err := l.DeleteTask(ctx, "acme", "tsk_1"); err != nil {
		t.Fatal(err)
	}
	checkIndex("task deleted", "queued")
	checkIndex("task deleted", "at")
	if runs, shots := sweptIDs(t, l, taskAt); len(runs)+len(shots) != 0 {
		t.Errorf("walks after the task's deletion: %v %v", runs, shots)
	}
}

// TestSweepIndexesThreaded checks the indexes that CreateThreadedTask and
// UpdateRunThreaded keep.
func TestSweepIndexesThreaded(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	base := prefix + ":t:acme:tasks:{acme}:"
	task := newTask("acme", "tsk_1")
	task.Kind, task.Trigger = tasks.KindOneShot, tasks.Trigger{At: taskAt}
	th := streams.Thread{ID: task.ThreadID, Tenant: "acme", Title: "t", CreatedAt: taskAt}
	if _, err := l.CreateThreadedTask(ctx, l, th, task, event("message", 1)); err != nil {
		t.Fatal(err)
	}
	if got, want := indexOf(t, base+"at"), []string{fmt.Sprintf("tsk_1@%d", taskAt.UnixMilli())}; !slices.Equal(got, want) {
		t.Errorf("at index = %q, want %q", got, want)
	}
	tenants, err := client(t).SMembers(ctx, prefix+":sched:{"+prefix+"}:tenants").Result()
	if err != nil || !slices.Equal(tenants, []string{"acme"}) {
		t.Errorf("tenants = %q, %v; want acme", tenants, err)
	}
	run := newRun("acme", "run_1", "tsk_1", taskAt)
	if err := l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = tasks.RunRunning
	if err := l.UpdateRunThreaded(ctx, l, run, tasks.RunQueued, th.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := indexOf(t, base+"queued"); len(got) != 0 {
		t.Errorf("queued index after the run started = %q, want none", got)
	}
	run.Status, run.UpdatedAt = tasks.RunQueued, taskAt.Add(time.Minute)
	if err := l.UpdateRunThreaded(ctx, l, run, tasks.RunRunning, th.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := indexOf(t, base+"queued"), []string{fmt.Sprintf("run_1@%d", run.UpdatedAt.UnixMilli())}; !slices.Equal(got, want) {
		t.Errorf("queued index after the run was queued again = %q, want %q", got, want)
	}
}

// TestSweepBackfill removes the indexes, the tenants set and the indexed
// hash, as a deployment written before they existed has none: the next
// walks still find the queued run and the past one-shot (by SCAN), rebuild
// the indexes and mark them complete, and the walks after read them.
func TestSweepBackfill(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	c := client(t)
	sched := prefix + ":sched:{" + prefix + "}:"
	for _, tenant := range []string{"acme", "beta"} {
		shot := newTask(tenant, "tsk_shot")
		shot.Kind, shot.Trigger = tasks.KindOneShot, tasks.Trigger{At: taskAt.Add(-time.Hour)}
		later := newTask(tenant, "tsk_later")
		later.Kind, later.Trigger = tasks.KindOneShot, tasks.Trigger{At: taskAt.Add(time.Hour)}
		paused := newTask(tenant, "tsk_paused")
		paused.Kind, paused.Trigger, paused.Status = tasks.KindOneShot, tasks.Trigger{At: taskAt.Add(-time.Hour)}, tasks.StatusPaused
		for _, task := range []tasks.Task{shot, later, paused} {
			if err := l.CreateTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
		done := newRun(tenant, "run_done", "tsk_shot", taskAt.Add(-3*time.Hour))
		done.Status = tasks.RunSucceeded
		recent := newRun(tenant, "run_recent", "tsk_shot", taskAt.Add(time.Minute))
		for _, r := range []tasks.Run{newRun(tenant, "run_q", "tsk_shot", taskAt.Add(-2*time.Hour)), done, recent} {
			if err := l.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The state of a deployment before the indexes.
	var drop []string
	for _, tenant := range []string{"acme", "beta"} {
		base := prefix + ":t:" + tenant + ":tasks:{" + tenant + "}:"
		drop = append(drop, base+"queued", base+"at")
	}
	if err := c.Del(ctx, append(drop, sched+"tenants", sched+"indexed")...).Err(); err != nil {
		t.Fatal(err)
	}

	wantRuns, wantShots := []string{"acme/run_q", "beta/run_q"}, []string{"acme/tsk_shot", "beta/tsk_shot"}
	runs, shots := sweptIDs(t, l, taskAt)
	if !slices.Equal(runs, wantRuns) || !slices.Equal(shots, wantShots) {
		t.Errorf("walks without indexes = %v %v; want %v %v", runs, shots, wantRuns, wantShots)
	}
	for _, tenant := range []string{"acme", "beta"} {
		base := prefix + ":t:" + tenant + ":tasks:{" + tenant + "}:"
		wantQ := []string{fmt.Sprintf("run_q@%d", taskAt.Add(-2*time.Hour).UnixMilli()), fmt.Sprintf("run_recent@%d", taskAt.Add(time.Minute).UnixMilli())}
		if got := indexOf(t, base+"queued"); !slices.Equal(got, wantQ) {
			t.Errorf("%s: rebuilt queued index = %q, want %q", tenant, got, wantQ)
		}
		wantAt := []string{fmt.Sprintf("tsk_shot@%d", taskAt.Add(-time.Hour).UnixMilli()), fmt.Sprintf("tsk_later@%d", taskAt.Add(time.Hour).UnixMilli())}
		if got := indexOf(t, base+"at"); !slices.Equal(got, wantAt) {
			t.Errorf("%s: rebuilt at index = %q, want %q", tenant, got, wantAt)
		}
	}
	tenants, err := c.SMembers(ctx, sched+"tenants").Result()
	slices.Sort(tenants)
	if err != nil || !slices.Equal(tenants, []string{"acme", "beta"}) {
		t.Errorf("rebuilt tenants = %q, %v", tenants, err)
	}
	marks, err := c.HGetAll(ctx, sched+"indexed").Result()
	if err != nil || marks["queued"] != "1" || marks["at"] != "1" {
		t.Errorf("indexed hash after the rebuild: %v, %v", marks, err)
	}
	// From now on the walks read the indexes: a queued run no index holds
	// is not reported, the indexed ones are.
	stray := prefix + ":t:acme:tasks:{acme}:run:run_stray"
	if err := c.HSet(ctx, stray, "status", "queued", "created", "x", "json", "{").Err(); err != nil {
		t.Fatal(err)
	}
	runs, shots = sweptIDs(t, l, taskAt)
	if !slices.Equal(runs, wantRuns) || !slices.Equal(shots, wantShots) {
		t.Errorf("walks over the rebuilt indexes = %v %v; want %v %v", runs, shots, wantRuns, wantShots)
	}
}

// TestSweepUnindex gives the indexes entries that the store's writes do
// not leave (as an older version's writes may): entries whose record is
// gone, or no longer queued (active). The walks remove each when they
// read it, but keep an entry whose record was written again between the
// walk's read and the removal, and one whose record cannot be decoded,
// which the walk reports.
func TestSweepUnindex(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	c := client(t)
	base := prefix + ":t:acme:tasks:{acme}:"
	sweptIDs(t, l, taskAt) // mark the indexes complete
	ms := func(tm time.Time) int64 { return tm.UnixMilli() }
	entry := func(index, member string, tm time.Time) {
		t.Helper()
		if err := c.ZAdd(ctx, base+index, goredis.Z{Score: float64(ms(tm)), Member: member}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// The at index: a one-shot due, one paused behind the index's back,
	// one gone.
	shot := newTask("acme", "tsk_shot")
	shot.Kind, shot.Trigger = tasks.KindOneShot, tasks.Trigger{At: taskAt.Add(-time.Hour)}
	paused := shot
	paused.ID = "tsk_paused"
	for _, task := range []tasks.Task{shot, paused} {
		if err := l.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	paused.Status = tasks.StatusPaused
	if _, err := l.UpdateTask(ctx, paused); err != nil {
		t.Fatal(err)
	}
	entry("at", "tsk_paused", paused.Trigger.At)
	entry("at", "tsk_gone", taskAt.Add(-2*time.Hour))

	// The queued index: a run queued; one succeeded behind the index's
	// back; one gone; one gone when the walk reads it and created again
	// (by fn, called for run_q after it, in the same page) before the walk
	// removes its entry; and a corrupt one.
	runQ := newRun("acme", "run_q", "tsk_shot", taskAt.Add(-3*time.Hour))
	done := newRun("acme", "run_done", "tsk_shot", taskAt.Add(-2*time.Hour))
	for _, r := range []tasks.Run{runQ, done} {
		if err := l.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	done.Status = tasks.RunSucceeded
	if err := l.UpdateRun(ctx, done, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	entry("queued", "run_done", done.UpdatedAt)
	entry("queued", "run_gone", taskAt.Add(-90*time.Minute))
	back := newRun("acme", "run_back", "tsk_shot", taskAt.Add(-4*time.Hour))
	entry("queued", "run_back", back.UpdatedAt)
	if err := c.HSet(ctx, base+"run:run_bad", "status", "queued", "created", "x", "json", "{").Err(); err != nil {
		t.Fatal(err)
	}
	entry("queued", "run_bad", taskAt.Add(-time.Minute))

	var runs []string
	err := l.QueuedRuns(ctx, taskAt, func(r tasks.Run) error {
		runs = append(runs, r.ID)
		if r.ID == "run_q" {
			return l.CreateRun(ctx, back)
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "run_bad") {
		t.Errorf("QueuedRuns over a corrupt run: %v; want an error naming it", err)
	}
	if !slices.Equal(runs, []string{"run_q"}) {
		t.Errorf("QueuedRuns reported %q, want run_q", runs)
	}
	wantQ := []string{
		fmt.Sprintf("run_back@%d", ms(back.UpdatedAt)),
		fmt.Sprintf("run_q@%d", ms(runQ.UpdatedAt)),
		fmt.Sprintf("run_bad@%d", ms(taskAt.Add(-time.Minute))),
	}
	if got := indexOf(t, base+"queued"); !slices.Equal(got, wantQ) {
		t.Errorf("queued index after the walk = %q, want %q", got, wantQ)
	}
	var shots []string
	if err := l.ActiveOneShots(ctx, taskAt, func(task tasks.Task) error {
		shots = append(shots, task.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shots, []string{"tsk_shot"}) {
		t.Errorf("ActiveOneShots reported %q, want tsk_shot", shots)
	}
	if got, want := indexOf(t, base+"at"), []string{fmt.Sprintf("tsk_shot@%d", ms(shot.Trigger.At))}; !slices.Equal(got, want) {
		t.Errorf("at index after the walk = %q, want %q", got, want)
	}
}

// TestSweepPages walks a tenant's index over more than one page, with many
// members of one score at the page's end, while fn removes each run it is
// given from the index: every run is reported once.
func TestSweepPages(t *testing.T) {
	ctx := context.Background()
	l := open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	if err := l.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
		t.Fatal(err)
	}
	sweptIDs(t, l, taskAt) // mark the indexes complete
	const n = 2600
	runs := make([]tasks.Run, n)
	for i := range runs {
		// 900 of distinct times, then 1700 of one time: the first page ends
		// inside the tie.
		at := taskAt.Add(-time.Hour)
		if i < 900 {
			at = taskAt.Add(time.Duration(i-2000) * time.Second)
		}
		runs[i] = newRun("acme", fmt.Sprintf("run_%04d", i), "tsk_1", at)
		runs[i].Slot = taskAt.Add(time.Duration(i) * time.Second)
	}
	for i, err := range l.CreateRuns(ctx, runs) {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	seen := map[string]int{}
	err := l.QueuedRuns(ctx, taskAt, func(r tasks.Run) error {
		seen[r.ID]++
		next := r
		next.Status = tasks.RunRunning
		return l.UpdateRun(ctx, next, tasks.RunQueued)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("QueuedRuns reported %d runs, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("run %s reported %d times", id, k)
		}
	}
}

// BenchmarkSweep times the two walks, through the indexes (index) and
// by SCAN with the indexed hash deleted before each walk (scan), beside
// 50,000 task and run hashes of an idle tenant and 10 queued runs of
// another:
//
//	VIGIL_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run XXX -bench Sweep ./store/redis/
func BenchmarkSweep(b *testing.B) {
	ctx := context.Background()
	prefix := redistest.Prefix(b)
	l := open(b, prefix, redis.Options{MaxFollowers: 4})
	c := client(b)
	b.Cleanup(func() { _ = redis.DeletePrefix(context.Background(), c, prefix) })
	const idle = 25_000 // tasks, and as many runs
	base := prefix + ":t:idle:tasks:{idle}:"
	for i := 0; i < idle; i += 1000 {
		pipe := c.Pipeline()
		for j := i; j < i+1000; j++ {
			pipe.HSet(ctx, fmt.Sprintf("%stask:tsk_%06d", base, j), "status", "paused", "json", "{}")
			pipe.HSet(ctx, fmt.Sprintf("%srun:run_%06d", base, j), "status", "succeeded", "json", "{}")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		r := newRun("acme", fmt.Sprintf("run_%02d", i), "tsk_1", taskAt.Add(time.Duration(i)*time.Second))
		if err := l.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	sweptIDs(b, l, taskAt.Add(time.Hour)) // the first walk fills the indexes
	for _, scan := range []bool{false, true} {
		name := "index"
		if scan {
			name = "scan"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if scan {
					b.StopTimer()
					if err := c.Del(ctx, prefix+":sched:{"+prefix+"}:indexed").Err(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if runs, _ := sweptIDs(b, l, taskAt.Add(time.Hour)); len(runs) != 10 {
					b.Fatalf("the walks found %d queued runs, want 10", len(runs))
				}
			}
		})
	}
}
