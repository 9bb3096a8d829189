package tasks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("zone %s: %v", name, err)
	}
	return loc
}

// fires returns the first n slots of tr after after.
func fires(t *testing.T, tr tasks.Trigger, after time.Time, n int) []time.Time {
	t.Helper()
	if err := tr.Validate(); err != nil {
		t.Fatalf("Validate(%+v): %v", tr, err)
	}
	var out []time.Time
	for range n {
		next, ok := tr.Next(after)
		if !ok {
			break
		}
		if !next.After(after) {
			t.Fatalf("Next(%v) = %v, not after it", after, next)
		}
		if next.Location() != time.UTC {
			t.Errorf("Next returned a time in %v, want UTC", next.Location())
		}
		out = append(out, next)
		after = next
	}
	return out
}

func checkFires(t *testing.T, what string, got []time.Time, want ...time.Time) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Equal(want[i])
	}
	if !ok {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestCron(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	checkFires(t, "five fields, UTC",
		fires(t, tasks.Trigger{Cron: "0 8 * * *"}, utc("2026-11-22T07:00:00Z"), 2),
		utc("2026-11-22T08:00:00Z"), utc("2026-11-23T08:00:00Z"))
	checkFires(t, "at the slot itself, the next one",
		fires(t, tasks.Trigger{Cron: "0 8 * * *"}, utc("2026-11-22T08:00:00Z"), 1),
		utc("2026-11-23T08:00:00Z"))
	checkFires(t, "six fields with seconds",
		fires(t, tasks.Trigger{Cron: "*/30 * * * * *"}, utc("2026-11-22T08:00:10.5Z"), 3),
		utc("2026-11-22T08:00:30Z"), utc("2026-11-22T08:01:00Z"), utc("2026-11-22T08:01:30Z"))
	checkFires(t, "descriptor",
		fires(t, tasks.Trigger{Cron: "@daily", TZ: "Asia/Shanghai"}, utc("2026-11-22T12:00:00Z"), 1),
		utc("2026-11-22T16:00:00Z"))
	checkFires(t, "Asia/Shanghai 08:00 is 00:00 UTC",
		fires(t, tasks.Trigger{Cron: "0 8 * * *", TZ: "Asia/Shanghai"}, utc("2026-11-22T01:00:00Z"), 2),
		utc("2026-11-23T00:00:00Z"), utc("2026-11-24T00:00:00Z"))
	checkFires(t, "weekdays at 09:30 in Berlin",
		fires(t, tasks.Trigger{Cron: "30 9 * * MON-FRI", TZ: "Europe/Berlin"}, utc("2026-11-20T12:00:00Z"), 2), // a Friday
		utc("2026-11-23T08:30:00Z"), utc("2026-11-24T08:30:00Z"))
}

// TestCronDST pins down what Trigger.Next's doc comment promises across
// daylight saving changes. In 2026 New York springs forward on 8 March at
// 02:00 (EST, -5 → EDT, -4) and falls back on 1 November at 02:00.
func TestCronDST(t *testing.T) {
	// at is a wall-clock time at a UTC offset in hours.
	at := func(y int, m time.Month, d, h, min int, off int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, time.FixedZone("", off*3600))
	}
	const est, edt = -5, -4
	nyc := func(c string) tasks.Trigger { return tasks.Trigger{Cron: c, TZ: "America/New_York"} }

	t.Run("SpringSkippedTimeFiresWhenGapEnds", func(t *testing.T) {
		checkFires(t, "30 2 * * *",
			fires(t, nyc("30 2 * * *"), at(2026, 3, 7, 12, 0, est), 3),
			at(2026, 3, 8, 3, 0, edt), // 02:30 does not exist: fire at 03:00 EDT
			at(2026, 3, 9, 2, 30, edt),
			at(2026, 3, 10, 2, 30, edt))
		checkFires(t, "*/15 2 * * * fires once for the whole skipped hour",
			fires(t, nyc("*/15 2 * * *"), at(2026, 3, 8, 0, 0, est), 2),
			at(2026, 3, 8, 3, 0, edt),
			at(2026, 3, 9, 2, 0, edt))
		checkFires(t, "a time just before the gap is untouched",
			fires(t, nyc("59 1 * * *"), at(2026, 3, 8, 0, 0, est), 2),
			at(2026, 3, 8, 1, 59, est),
			at(2026, 3, 9, 1, 59, edt))
	})
	t.Run("SpringEveryHourFollowsRealTime", func(t *testing.T) {
		checkFires(t, "0 * * * *",
			fires(t, nyc("0 * * * *"), at(2026, 3, 8, 0, 30, est), 3),
			at(2026, 3, 8, 1, 0, est),
			at(2026, 3, 8, 3, 0, edt), // one real hour later
			at(2026, 3, 8, 4, 0, edt))
	})
	t.Run("AutumnRepeatedTimeFiresOnce", func(t *testing.T) {
		checkFires(t, "30 1 * * *",
			fires(t, nyc("30 1 * * *"), at(2026, 10, 31, 12, 0, edt), 2),
			at(2026, 11, 1, 1, 30, edt), // the first 01:30
			at(2026, 11, 2, 1, 30, est)) // not the second
		checkFires(t, "*/20 1 * * *",
			fires(t, nyc("*/20 1 * * *"), at(2026, 11, 1, 0, 0, edt), 4),
			at(2026, 11, 1, 1, 0, edt), at(2026, 11, 1, 1, 20, edt), at(2026, 11, 1, 1, 40, edt),
			at(2026, 11, 2, 1, 0, est))
		// Every second of the repeated hour is skipped in one step.
		checkFires(t, "* * 1 * * * from the end of the first pass",
			fires(t, nyc("* * 1 * * *"), at(2026, 11, 1, 1, 59, edt).Add(59*time.Second), 1),
			at(2026, 11, 2, 1, 0, est))
		// Told to start inside the second pass, it waits for tomorrow: the
		// wall-clock time came already today.
		checkFires(t, "30 1 * * * from inside the second pass",
			fires(t, nyc("30 1 * * *"), at(2026, 11, 1, 1, 10, est), 1),
			at(2026, 11, 2, 1, 30, est))
	})
	t.Run("AutumnEveryHourFollowsRealTime", func(t *testing.T) {
		checkFires(t, "0 * * * *",
			fires(t, nyc("0 * * * *"), at(2026, 10, 31, 23, 30, edt), 4),
			at(2026, 11, 1, 0, 0, edt),
			at(2026, 11, 1, 1, 0, edt),
			at(2026, 11, 1, 1, 0, est), // 25 hours that day
			at(2026, 11, 1, 2, 0, est))
	})
	t.Run("LondonSpring", func(t *testing.T) {
		// 29 March 2026, 01:00 GMT → 02:00 BST.
		checkFires(t, "30 1 * * *",
			fires(t, tasks.Trigger{Cron: "30 1 * * *", TZ: "Europe/London"}, at(2026, 3, 28, 12, 0, 0), 2),
			at(2026, 3, 29, 2, 0, 1),
			at(2026, 3, 30, 1, 30, 1))
	})
	t.Run("HalfHourShift", func(t *testing.T) {
		// Lord Howe Island moves its clocks by 30 minutes: on 4 October
		// 2026 02:00 (+10:30) becomes 02:30 (+11).
		lh := mustZone(t, "Australia/Lord_Howe")
		got := fires(t, tasks.Trigger{Cron: "15 2 * * *", TZ: "Australia/Lord_Howe"}, time.Date(2026, 10, 3, 12, 0, 0, 0, lh), 2)
		if len(got) != 2 {
			t.Fatalf("fires: %v", got)
		}
		if l := got[0].In(lh); l.Day() != 4 || l.Hour() != 2 || l.Minute() != 30 {
			t.Errorf("first fire %v, want 02:30 on 4 October (when the gap ends)", l)
		}
		if l := got[1].In(lh); l.Day() != 5 || l.Hour() != 2 || l.Minute() != 15 {
			t.Errorf("second fire %v, want 02:15 on 5 October", l)
		}
	})
}

func TestEveryAndAt(t *testing.T) {
	start := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	every := tasks.Trigger{Every: tasks.Duration(15 * time.Minute), Start: start}
	checkFires(t, "before start, start first",
		fires(t, every, start.Add(-time.Hour), 2), start, start.Add(15*time.Minute))
	checkFires(t, "at start, the next slot",
		fires(t, every, start, 1), start.Add(15*time.Minute))
	checkFires(t, "between slots, the grid",
		fires(t, every, start.Add(20*time.Minute), 1), start.Add(30*time.Minute))
	checkFires(t, "a year on, still the grid",
		fires(t, every, start.Add(365*24*time.Hour+time.Second), 1), start.Add(365*24*time.Hour+15*time.Minute))
	checkFires(t, "no start: aligned to the epoch",
		fires(t, tasks.Trigger{Every: tasks.Duration(time.Hour)}, start.Add(10*time.Minute), 1), start.Add(time.Hour))

	one := tasks.Trigger{At: start.In(time.FixedZone("UTC+8", 8*3600))}
	checkFires(t, "at, before", fires(t, one, start.Add(-time.Second), 3), start)
	if _, ok := one.Next(start); ok {
		t.Error("a one-shot fired again at its own time")
	}
	if _, ok := (tasks.Trigger{Event: "oil"}).Next(start); ok {
		t.Error("an event-only trigger named a slot")
	}
	if (tasks.Trigger{Event: "oil"}).HasSchedule() || !every.HasSchedule() || !one.HasSchedule() {
		t.Error("HasSchedule wrong")
	}
}

func TestDueAt(t *testing.T) {
	slot := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	if got := (tasks.Trigger{Cron: "0 8 * * *"}).DueAt("tsk_1", slot); !got.Equal(slot) {
		t.Errorf("no jitter: due %v, want the slot", got)
	}
	tr := tasks.Trigger{Cron: "0 8 * * *", Jitter: tasks.Duration(30 * time.Second)}
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for range 2000 {
		id := vigil.NewID("tsk_")
		d := tr.DueAt(id, slot).Sub(slot)
		if d < 0 || d >= 30*time.Second {
			t.Fatalf("offset %v outside [0, 30s)", d)
		}
		if again := tr.DueAt(id, slot).Sub(slot); again != d {
			t.Fatalf("offset not deterministic: %v then %v", d, again)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > time.Second || hi < 29*time.Second {
		t.Errorf("offsets of 2000 tasks span [%v, %v]; want them spread over [0, 30s)", lo, hi)
	}
}

func TestTriggerValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tr    tasks.Trigger
		field string
		msg   string
	}{
		{"cron out of range", tasks.Trigger{Cron: "61 * * * *"}, "trigger.cron", "not a cron expression"},
		{"cron four fields", tasks.Trigger{Cron: "0 8 * *"}, "trigger.cron", "not a cron expression"},
		{"cron words", tasks.Trigger{Cron: "every day at 8"}, "trigger.cron", "not a cron expression"},
		{"cron never matches", tasks.Trigger{Cron: "0 0 30 2 *"}, "trigger.cron", "matches no date"},
		{"cron with zone inside", tasks.Trigger{Cron: "CRON_TZ=Asia/Tokyo 0 8 * * *"}, "trigger.cron", "trigger.tz"},
		{"cron @every", tasks.Trigger{Cron: "@every 5m"}, "trigger.cron", "trigger.every"},
		{"unknown zone", tasks.Trigger{Cron: "0 8 * * *", TZ: "Mars/Olympus"}, "trigger.tz", "unknown time zone"},
		{"Local zone", tasks.Trigger{Cron: "0 8 * * *", TZ: "Local"}, "trigger.tz", "unknown time zone"},
		{"negative interval", tasks.Trigger{Every: tasks.Duration(-5 * time.Minute)}, "trigger.every", "must be positive"},
		{"tiny interval", tasks.Trigger{Every: tasks.Duration(10 * time.Millisecond)}, "trigger.every", "at least 1s"},
		{"negative jitter", tasks.Trigger{Every: tasks.Duration(time.Hour), Jitter: tasks.Duration(-time.Second)}, "trigger.jitter", "negative"},
		{"jitter over interval", tasks.Trigger{Every: tasks.Duration(time.Minute), Jitter: tasks.Duration(time.Minute)}, "trigger.jitter", "shorter"},
		{"jitter over an hour", tasks.Trigger{Cron: "0 8 * * *", Jitter: tasks.Duration(2 * time.Hour)}, "trigger.jitter", "at most"},
		{"two schedules", tasks.Trigger{Cron: "0 8 * * *", Every: tasks.Duration(time.Hour)}, "trigger", "one of"},
		{"start without every", tasks.Trigger{Cron: "0 8 * * *", Start: time.Now()}, "trigger.start", "every"},
		{"bad event source", tasks.Trigger{Event: "oil price"}, "trigger.event", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkField(t, tc.tr.Validate(), tc.field, tc.msg)
		})
	}
	for _, ok := range []tasks.Trigger{
		{Cron: "0 8 * * *", TZ: "Asia/Shanghai", Jitter: tasks.Duration(time.Minute)},
		{Cron: "0 0 29 2 *"}, // leap days only
		{Every: tasks.Duration(15 * time.Minute), Event: "oil"},
		{At: time.Now()},
		{},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}

// checkField checks that err is a vigil.Invalid error naming field, with a
// message containing msg.
func checkField(t *testing.T, err error, field, msg string) {
	t.Helper()
	var ve *vigil.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a *vigil.Error naming %s", err, field)
	}
	if ve.Code != vigil.Invalid || ve.Field != field || !strings.Contains(ve.Message, msg) {
		t.Errorf("error %q (code %s, field %q); want invalid, field %q, message containing %q", ve.Error(), ve.Code, ve.Field, field, msg)
	}
}

func TestDurationJSON(t *testing.T) {
	var s tasks.Spec
	if err := json.Unmarshal([]byte(`{"trigger":{"every":"1h30m","jitter":"5s"}}`), &s); err != nil {
		t.Fatal(err)
	}
	if time.Duration(s.Trigger.Every) != 90*time.Minute || time.Duration(s.Trigger.Jitter) != 5*time.Second {
		t.Errorf("decoded %v and %v", s.Trigger.Every, s.Trigger.Jitter)
	}
	b, _ := json.Marshal(s.Trigger)
	if !strings.Contains(string(b), `"every":"1h30m0s"`) {
		t.Errorf("encoded %s", b)
	}
	for _, bad := range []string{`"soon"`, `15`, `"15"`} {
		err := json.Unmarshal([]byte(`{"trigger":{"every":`+bad+`}}`), &s)
		var ute *json.UnmarshalTypeError
		if !errors.As(err, &ute) || ute.Field != "trigger.every" {
			t.Errorf("every %s: error %v; want a type error at trigger.every", bad, err)
		}
	}
}
