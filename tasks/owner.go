package tasks

import (
	"context"

	"github.com/vigilhq/vigil"
)

// view returns the Store as the principal in ctx may see it: whole for one
// who manages all of the tenant's tasks, else limited to the tasks (and
// their runs) that principal owns. Every read a user's call makes goes
// through it, so every write, which follows a read, is limited too.
func (m *Manager) view(ctx context.Context) Store {
	p, _ := vigil.PrincipalFrom(ctx)
	if m.managesAll == nil || m.managesAll(p) {
		return m.store
	}
	return ownerView{Store: m.store, user: p.User}
}

// ownerView is a Store limited to one user's tasks: another user's task or
// run answers vigil.NotFound, as another tenant's does, and lists hold only
// the user's own tasks.
type ownerView struct {
	Store
	user string
}

func (v ownerView) Task(ctx context.Context, tenant, id string) (Task, error) {
	t, err := v.Store.Task(ctx, tenant, id)
	if err == nil && t.Owner != v.user {
		return Task{}, vigil.Errorf(vigil.NotFound, "task %s not found", id)
	}
	return t, err
}

func (v ownerView) Run(ctx context.Context, tenant, id string) (Run, error) {
	r, err := v.Store.Run(ctx, tenant, id)
	if err != nil {
		return r, err
	}
	if _, err := v.Task(ctx, tenant, r.TaskID); err != nil {
		return Run{}, vigil.Errorf(vigil.NotFound, "run %s not found", id)
	}
	return r, nil
}

func (v ownerView) ListTasks(ctx context.Context, tenant string, f TaskFilter) (TaskPage, error) {
	if f.Owner != "" && f.Owner != v.user {
		return TaskPage{}, nil
	}
	f.Owner = v.user
	return v.Store.ListTasks(ctx, tenant, f)
}
