package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestTaskBatches(t *testing.T) {
	storetest.TaskBatches(t, func(t *testing.T) storetest.BatchTasksStore {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}
