package mcpserver

import (
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// TestToolActions checks that every tool that can change state (every tool
// not hinted read-only) names the action the audit log records it under,
// and that no read-only tool does: a tool added without an entry in
// toolActions fails here.
func TestToolActions(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := New(Options{
		Log:      db,
		Registry: toolsregistry.New(toolsregistry.Options{}),
		Tasks:    tasks.NewManager(tasks.Options{Store: db, Log: db}),
	})
	defer s.Close()
	tools := s.mcp.ListTools()
	if len(tools) < len(toolActions) {
		t.Fatalf("%d tools, fewer than the %d of toolActions: the server lacks some", len(tools), len(toolActions))
	}
	for name, tool := range tools {
		action, ok := toolActions[name]
		readOnly := tool.Tool.Annotations.ReadOnlyHint != nil && *tool.Tool.Annotations.ReadOnlyHint
		switch {
		case readOnly && ok:
			t.Errorf("read-only tool %s has audit action %q; reads are not audited", name, action)
		case !readOnly && !audit.ValidAction(action):
			t.Errorf("tool %s changes state but has audit action %q: give it an entry in toolActions", name, action)
		}
	}
	for name := range toolActions {
		if _, ok := tools[name]; !ok {
			t.Errorf("toolActions names %s, which is not a tool", name)
		}
	}
}
