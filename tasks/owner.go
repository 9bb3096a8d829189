package tasks

import (
	"context"

	"github.com/vigilhq/vigil"
)

// view returns the Store as the principal in ctx may read it: whole for
// one who manages or reads all of the tenant's tasks, else limited to the
// tasks (and their runs) that principal owns. Every read of a user's call
// goes through view, or through edit when a write follows.
func (m *Manager) view(ctx context.Context) Store {
	p, _ := vigil.PrincipalFrom(ctx)
	if m.managesAll == nil || m.managesAll(p) || m.readsAll != nil && m.readsAll(p) {
		return m.store
	}
	return ownerView{Store: m.store, user: p.User}
}

// edit is view for the reads that a write follows: the principal may
// change only what it owns unless it manages all. A task it may read but
// not change (it reads all) is vigil.Forbidden; one it may not even read
// is vigil.NotFound, as another tenant's is.
func (m *Manager) edit(ctx context.Context) Store {
	p, _ := vigil.PrincipalFrom(ctx)
	if m.managesAll == nil || m.managesAll(p) {
		return m.store
	}
	return ownerView{Store: m.store, user: p.User, readable: m.readsAll != nil && m.readsAll(p)}
}

// ownerView is a Store limited to one user's tasks: another user's task or
// run answers vigil.NotFound, as another tenant's does (vigil.Forbidden
// when readable: the user may see it, not change it), and lists hold only
// the user's own tasks.
type ownerView struct {
	Store
	user     string
	readable bool
}

func (v ownerView) Task(ctx context.Context, tenant, id string) (Task, error) {
	t, err := v.Store.Task(ctx, tenant, id)
	switch {
	case err != nil || t.Owner == v.user:
		return t, err
	case v.readable:
		return Task{}, vigil.Errorf(vigil.Forbidden, "task %s is another user's: you may read it but not change it", id)
	default:
		return Task{}, vigil.Errorf(vigil.NotFound, "task %s not found", id)
	}
}

func (v ownerView) Run(ctx context.Context, tenant, id string) (Run, error) {
	r, err := v.Store.Run(ctx, tenant, id)
	if err != nil {
		return r, err
	}
	if _, err := v.Task(ctx, tenant, r.TaskID); vigil.ErrorCode(err) == vigil.NotFound {
		return Run{}, vigil.Errorf(vigil.NotFound, "run %s not found", id)
	} else if err != nil {
		return Run{}, err
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
