package tasks

import (
	"context"
	"encoding/json"
	"maps"

	"github.com/vigilhq/vigil"
)

// EventSlot is the slot that carries an ingested event's body into the
// runs it wakes: a monitor's steps read it as {{event}} when the task
// declares a slot of that name (its declared value is the default).
const EventSlot = "event"

// maxIngestTasks bounds the monitors one ingested event wakes.
const maxIngestTasks = 10_000

// Ingest wakes every active monitor of the request's tenant subscribed to
// source (Trigger.Event): each gets a queued run with cause event and a
// slot of now, whose Spec carries body (any JSON value, decoded) as the
// slot EventSlot. The monitor then checks its source and condition as on
// a poll. An event source is the tenant's, so every user's monitors wake;
// but it returns only the runs the caller may see (those of its own tasks,
// or all for one who manages all), none when no such monitor listens. A
// source that is not an event source name is a vigil.Invalid error naming
// "source"; a body that is not JSON one naming "body". The runs reach the
// workers when the Manager's store enqueues them (DispatchStore).
func (m *Manager) Ingest(ctx context.Context, source string, body json.RawMessage) ([]Run, error) {
	tenant, err := vigil.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if !eventSourcePattern.MatchString(source) {
		return nil, vigil.FieldError("source", "must be 1 to 64 characters from [A-Za-z0-9_.-], got %q", source)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return nil, vigil.FieldError("body", "must be a JSON value: %v", err)
	}
	var woken []Task
	f := TaskFilter{Status: StatusActive, Kind: KindMonitor, Event: source, Limit: MaxListLimit}
	for len(woken) < maxIngestTasks {
		page, err := m.store.ListTasks(ctx, tenant, f)
		if err != nil {
			return nil, err
		}
		woken = append(woken, page.Tasks...)
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	p, _ := vigil.PrincipalFrom(ctx)
	seesAll := m.managesAll == nil || m.managesAll(p)
	runs := []Run{}
	for _, t := range woken {
		spec := t.Spec
		spec.Slots = maps.Clone(spec.Slots)
		if spec.Slots == nil {
			spec.Slots = map[string]any{}
		}
		spec.Slots[EventSlot] = value
		r, err := m.createNow(ctx, t, Run{
			Tenant: tenant, TaskID: t.ID, TaskVersion: t.Version, Spec: spec, Cause: CauseEvent, Status: RunQueued,
		})
		if err != nil {
			return runs, err
		}
		if seesAll || t.Owner == p.User {
			runs = append(runs, r)
		}
	}
	return runs, nil
}
