package redis_test

import (
	"testing"

	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestThreadedCreator(t *testing.T) {
	storetest.ThreadedCreator(t, func(t *testing.T) storetest.ThreadedStore {
		return open(t, redistest.Prefix(t), redis.Options{})
	})
}

func TestThreadedRunUpdater(t *testing.T) {
	storetest.ThreadedRunUpdater(t, func(t *testing.T) storetest.RunThreadStore {
		return open(t, redistest.Prefix(t), redis.Options{})
	})
}
