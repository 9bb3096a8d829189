package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/tasks"
)

func TestSweeps(t *testing.T) {
	storetest.Sweeps(t, func(t *testing.T) tasks.Store {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}
