package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// A task's runs call tools with its owner's scopes, and the owner is not
// there when they run: the Manager records the scopes on the task
// (Task.OwnerScopes) each time the owner creates, updates, confirms or
// resumes it. The executors hold them in every toolsregistry.Request of
// the run, and take them (RunScopes) from the task the Worker read when it
// took the run, which travels in the run's context; they read the task
// from the Store only when the context has none.

// recordScopes sets t.OwnerScopes to the scopes of the principal in ctx
// (Options.OwnerScopes) when that principal owns t. A change by anyone
// else (a developer who manages every task) keeps what the owner last
// recorded, so that no task runs with more than its owner holds.
func (m *Manager) recordScopes(ctx context.Context, t *Task) {
	p, _ := vigil.PrincipalFrom(ctx)
	if p.User != t.Owner {
		return
	}
	if m.ownerScopes == nil {
		t.OwnerScopes = []string{"*"}
		return
	}
	t.OwnerScopes = m.ownerScopes(p)
	if t.OwnerScopes == nil {
		t.OwnerScopes = []string{} // recorded: none
	}
}

// RunScopes returns a function that gives the scopes of a run's tool
// calls, for StepExecutorOptions.Scopes and the task agent: it returns the
// Task.Scopes of the run's task, the one the Worker read when it took the
// run (it travels in ctx), else reads it from s. A task that is gone is
// vigil.NotFound; any other failure is the Store's error.
func RunScopes(s Store) func(context.Context, Run) ([]string, error) {
	return func(ctx context.Context, r Run) ([]string, error) {
		if t, ok := ctx.Value(runTaskKey{}).(*Task); ok && t.Tenant == r.Tenant && t.ID == r.TaskID {
			return t.Scopes(), nil
		}
		t, err := s.Task(ctx, r.Tenant, r.TaskID)
		if err != nil {
			return nil, fmt.Errorf("tasks: the scopes of run %s: %w", r.ID, err)
		}
		return t.Scopes(), nil
	}
}

// OwnerLacks returns te with its message saying whose scopes the refused
// call held, when the registry refused it for a scope (vigil.Forbidden):
// held, the task owner's. Any other error is returned as it is.
func OwnerLacks(te *toolsregistry.Error, held []string) *toolsregistry.Error {
	if te.Code != vigil.Forbidden {
		return te
	}
	c := *te
	c.Message = fmt.Sprintf("%s; this task calls tools with its owner's scopes (%s)", te.Message, scopeList(held))
	return &c
}

// scopeList is held for a message: "read:*, read:web", or "none".
func scopeList(held []string) string {
	if len(held) == 0 {
		return "none"
	}
	return strings.Join(held, ", ")
}

// runTaskKey keys the task of the run a Worker executes in the run's
// context, as the worker read it when it took the run, so that RunScopes
// does not read it again.
type runTaskKey struct{}

func withRunTask(ctx context.Context, t *Task) context.Context {
	return context.WithValue(ctx, runTaskKey{}, t)
}
