package redis_test

import (
	"testing"

	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestTaskBatches(t *testing.T) {
	storetest.TaskBatches(t, func(t *testing.T) storetest.BatchTasksStore {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}
