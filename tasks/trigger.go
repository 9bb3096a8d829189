package tasks

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/vigilhq/vigil"
)

// Trigger says when a task fires. At most one schedule is set: Cron (with
// TZ), At, or Every (with Start). Event subscribes a monitor to an ingested
// event source, alone or beside a poll schedule. A trigger with no schedule
// fires only when run by hand (or, with Event, when its source is posted
// to); which combinations a task may use depends on its Kind (see
// Spec.Validate).
//
// Fire times are slots: the exact instants the schedule names. A run is
// keyed by its slot, so a slot fires at most once. Jitter delays when a
// slot is due, not the slot itself (see DueAt).
type Trigger struct {
	// Cron is a cron expression: five fields (minute hour day-of-month
	// month day-of-week), or six with a leading seconds field, or a
	// descriptor such as @daily. It is read in TZ.
	Cron string `json:"cron,omitempty"`
	// TZ is the IANA time zone the task's wall-clock times are in, such as
	// Asia/Shanghai; empty means UTC. See Next for daylight saving time.
	TZ string `json:"tz,omitempty"`
	// At is a one-shot task's only fire time.
	At time.Time `json:"at,omitzero"`
	// Every is an interval: the task fires at Start, Start+Every,
	// Start+2·Every, … It is at least a second.
	Every Duration `json:"every,omitempty"`
	// Start anchors Every. The Manager sets it to the confirmation time
	// (whole seconds) when it is zero; a zero Start in Next means the Unix
	// epoch, so that Every lines up with UTC clock boundaries.
	Start time.Time `json:"start,omitzero"`
	// Jitter spreads due times: a slot is due at the slot plus a
	// deterministic offset in [0, Jitter) derived from the task id and
	// slot, so that a million tasks at 08:00 do not fire in one
	// millisecond; the offset is also shorter than the gap to the next
	// slot (see DueAt). Zero means none.
	Jitter Duration `json:"jitter,omitempty"`
	// Event names an ingested event source (POST /v1/events/{source}) that
	// wakes the task; monitors only.
	Event string `json:"event,omitempty"`
}

// Limits on triggers.
const (
	// MinEvery is the shortest interval.
	MinEvery = time.Second
	// MaxJitter is the longest jitter.
	MaxJitter = time.Hour
)

var eventSourcePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// HasSchedule reports whether t names fire times (Cron, At or Every).
func (t Trigger) HasSchedule() bool {
	return t.Cron != "" || !t.At.IsZero() || t.Every != 0
}

// Validate checks t on its own, without the kind of its task: the syntax
// of each field and that at most one schedule is set. The error is a
// vigil.Invalid error naming the field ("trigger.cron").
func (t Trigger) Validate() error {
	if err := t.validate(); err != nil {
		return err
	}
	return nil
}

func (t Trigger) validate() *vigil.Error {
	n := 0
	for _, set := range []bool{t.Cron != "", !t.At.IsZero(), t.Every != 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return vigil.FieldError("trigger", "set one of cron, at and every, not %d", n)
	}
	if t.TZ != "" {
		if _, err := loadLocation(t.TZ); err != nil {
			return vigil.FieldError("trigger.tz", "unknown time zone %q: want an IANA name such as Asia/Shanghai", t.TZ)
		}
	}
	if t.Cron != "" {
		if _, err := compileCron(t.Cron, t.TZ); err != nil {
			return err
		}
	}
	if t.Every != 0 {
		if t.Every < 0 {
			return vigil.FieldError("trigger.every", "must be positive, got %s", t.Every)
		}
		if time.Duration(t.Every) < MinEvery {
			return vigil.FieldError("trigger.every", "must be at least %s, got %s", MinEvery, t.Every)
		}
	} else if !t.Start.IsZero() {
		return vigil.FieldError("trigger.start", "anchors trigger.every, which is not set")
	}
	if t.Jitter < 0 {
		return vigil.FieldError("trigger.jitter", "must not be negative, got %s", t.Jitter)
	}
	if time.Duration(t.Jitter) > MaxJitter {
		return vigil.FieldError("trigger.jitter", "must be at most %s, got %s", MaxJitter, t.Jitter)
	}
	if t.Every > 0 && t.Jitter >= t.Every {
		return vigil.FieldError("trigger.jitter", "must be shorter than trigger.every (%s), got %s", t.Every, t.Jitter)
	}
	if t.Event != "" && !eventSourcePattern.MatchString(t.Event) {
		return vigil.FieldError("trigger.event", "must be 1 to 64 characters from [A-Za-z0-9_.-], got %q", t.Event)
	}
	return nil
}

// Next returns the first slot strictly after after, in UTC, and true; or
// false when t names no further slot (no schedule, a one-shot time already
// passed, a cron expression that matches no date). t must be valid.
//
// Cron expressions are read in TZ's wall clock, and daylight saving time
// is handled as cron users expect (as Vixie cron does):
//
//   - An expression whose hour field matches every hour follows real time
//     across a change: "0 * * * *" fires every 60 minutes, 25 times on the
//     day clocks go back and 23 times on the day they go forward.
//   - Any other expression fires once per matching wall-clock time: a time
//     that is skipped when clocks go forward (02:30 in New York on the
//     spring change) fires at the instant the gap ends (03:00 daylight
//     time), once however many skipped times matched; a time that occurs
//     twice when clocks go back (01:30 on the autumn change) fires at its
//     first occurrence only.
func (t Trigger) Next(after time.Time) (time.Time, bool) {
	switch {
	case t.Cron != "":
		c, err := compileCron(t.Cron, t.TZ)
		if err != nil {
			return time.Time{}, false
		}
		return c.next(after)
	case !t.At.IsZero():
		if t.At.After(after) {
			return t.At.UTC(), true
		}
		return time.Time{}, false
	case t.Every > 0:
		every := time.Duration(t.Every)
		start := t.Start
		if start.IsZero() {
			start = time.Unix(0, 0)
		}
		if after.Before(start) {
			return start.UTC(), true
		}
		k := after.Sub(start)/every + 1
		// Sub saturates far from start; step back to the first slot after.
		next := start.Add(k * every)
		for !next.After(after) {
			next = next.Add(every)
		}
		return next.UTC(), true
	default:
		return time.Time{}, false
	}
}

// DueAt returns when slot is due for task taskID: the slot plus the
// trigger's jitter offset, a value in [0, Jitter) fixed by the task id and
// the slot, so that every process and every restart computes the same due
// time, and different tasks with the same slot spread evenly.
//
// The offset is also shorter than the gap from slot to the trigger's next
// slot, so that every slot is due before the next one and due times come
// in slot order. A cron expression's slots may be closer than its Jitter
// (every 20 minutes with a jitter of 45); without the bound, a later slot
// with a small offset would be due before an earlier one with a large
// offset, the scheduler would find the earlier slot's entry late behind
// it, fire only the latest due slot, and with catch_up skip count it as
// missed, although no scheduler was down.
func (t Trigger) DueAt(taskID string, slot time.Time) time.Time {
	if t.Jitter <= 0 {
		return slot
	}
	span := time.Duration(t.Jitter)
	if next, ok := t.Next(slot); ok && next.Sub(slot) < span {
		span = next.Sub(slot)
	}
	h := fnv.New64a()
	h.Write([]byte(taskID))
	var b [8]byte
	ms := uint64(slot.UnixMilli())
	for i := range b {
		b[i] = byte(ms >> (8 * i))
	}
	h.Write(b[:])
	return slot.Add(time.Duration(h.Sum64() % uint64(span)))
}

// Location returns the time zone of t's wall-clock times: TZ, or UTC.
func (t Trigger) Location() (*time.Location, error) {
	if t.TZ == "" {
		return time.UTC, nil
	}
	return loadLocation(t.TZ)
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string, such as "15m" or "1h30m".
type Duration time.Duration

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string. A malformed one is a
// *json.UnmarshalTypeError, so that decoders report the field's path.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "non-string " + string(b), Type: reflect.TypeFor[Duration]()}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("string %q", s), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// --- time zones and cron ---

// locations caches time.LoadLocation, which reads the zone database on
// every call.
var locations sync.Map // name → *time.Location

func loadLocation(name string) (*time.Location, error) {
	if v, ok := locations.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "Local" || strings.TrimSpace(name) != name || name == "" {
		// "Local" is whatever zone the server runs in: never a user's.
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, loc)
	return loc, nil
}

// cronParser reads five fields, or six with a leading seconds field, and
// descriptors (@daily, @hourly, …).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronSchedule is a parsed cron expression in its zone.
type cronSchedule struct {
	spec      *cron.SpecSchedule
	loc       *time.Location
	everyHour bool // the hour field matches all 24 hours
}

// schedules caches compiled expressions by zone and expression; it stops
// growing at maxCachedSchedules entries (the rest compile per call).
var (
	schedules      sync.Map // tz + "\x00" + expr → *cronSchedule
	schedulesCount struct {
		sync.Mutex
		n int
	}
)

const maxCachedSchedules = 10_000

// neverBefore is the reference time from which a cron expression must
// match some date within robfig/cron's five-year search.
var neverBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// compileCron parses expr in zone tz. Its errors are vigil.Invalid errors
// naming trigger.cron or trigger.tz.
func compileCron(expr, tz string) (*cronSchedule, *vigil.Error) {
	key := tz + "\x00" + expr
	if v, ok := schedules.Load(key); ok {
		return v.(*cronSchedule), nil
	}
	loc := time.UTC
	if tz != "" {
		l, err := loadLocation(tz)
		if err != nil {
			return nil, vigil.FieldError("trigger.tz", "unknown time zone %q: want an IANA name such as Asia/Shanghai", tz)
		}
		loc = l
	}
	s := strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		return nil, vigil.FieldError("trigger.cron", "set the time zone in trigger.tz, not in the expression")
	case strings.HasPrefix(s, "@every"):
		return nil, vigil.FieldError("trigger.cron", "use trigger.every for intervals, not %q", s)
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return nil, vigil.FieldError("trigger.cron", "%q is not a cron expression: %v", expr, err)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, vigil.FieldError("trigger.cron", "%q is not supported", expr)
	}
	spec.Location = loc
	const allHours = 1<<24 - 1
	c := &cronSchedule{spec: spec, loc: loc, everyHour: spec.Hour&allHours == allHours}
	if spec.Next(neverBefore).IsZero() {
		return nil, vigil.FieldError("trigger.cron", "%q matches no date", expr)
	}
	schedulesCount.Lock()
	if schedulesCount.n < maxCachedSchedules {
		if _, loaded := schedules.LoadOrStore(key, c); !loaded {
			schedulesCount.n++
		}
	}
	schedulesCount.Unlock()
	return c, nil
}

// next implements Trigger.Next for a cron expression, correcting
// robfig/cron's SpecSchedule.Next (which skips times that fall into a
// spring-forward gap and fires twice in an autumn overlap) as Next's doc
// comment describes.
func (c *cronSchedule) next(after time.Time) (time.Time, bool) {
	t := after.In(c.loc)
	for range 32 {
		n := c.spec.Next(t)
		if n.IsZero() {
			return time.Time{}, false
		}
		if c.everyHour {
			return n.UTC(), true
		}
		if g, ok := c.gapFire(t, n); ok {
			return g.UTC(), true
		}
		if end, ok := c.repeated(n); ok {
			// n's wall-clock time already came once: jump past the
			// repeated stretch (robfig's Next starts at the next second).
			t = end.Add(-time.Nanosecond)
			continue
		}
		return n.UTC(), true
	}
	return time.Time{}, false
}

// gapFire looks for a clock change that skips wall-clock time between after
// (exclusive) and n (inclusive) and returns the instant the gap ends if the
// expression matches a skipped time.
func (c *cronSchedule) gapFire(after, n time.Time) (time.Time, bool) {
	cur := after
	for range 16 {
		_, change := cur.In(c.loc).ZoneBounds()
		if change.IsZero() || change.After(n) {
			return time.Time{}, false
		}
		_, before := change.Add(-time.Nanosecond).In(c.loc).Zone()
		_, since := change.In(c.loc).Zone()
		if since > before {
			// Wall times [change in the old offset, + gap) never show.
			// Read the expression in the old offset to find a match there.
			gap := time.Duration(since-before) * time.Second
			old := *c.spec
			old.Location = time.FixedZone("", before)
			if m := old.Next(change.Add(-time.Nanosecond)); !m.IsZero() && m.Before(change.Add(gap)) {
				return change, true
			}
		}
		cur = change
	}
	return time.Time{}, false
}

// repeated reports whether n falls in the second pass over wall-clock
// times that a backward clock change repeats, and returns the end of that
// second pass.
func (c *cronSchedule) repeated(n time.Time) (time.Time, bool) {
	ln := n.In(c.loc)
	change, _ := ln.ZoneBounds()
	if change.IsZero() {
		return time.Time{}, false
	}
	_, before := change.Add(-time.Nanosecond).In(c.loc).Zone()
	_, now := ln.Zone()
	if before <= now {
		return time.Time{}, false
	}
	end := change.Add(time.Duration(before-now) * time.Second)
	if n.Before(end) {
		return end, true
	}
	return time.Time{}, false
}
