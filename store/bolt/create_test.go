package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestThreadedCreator(t *testing.T) {
	storetest.ThreadedCreator(t, func(t *testing.T) storetest.ThreadedStore {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}
