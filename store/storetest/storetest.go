// Package storetest holds the conformance suites that every Vigil storage
// backend runs, in the manner of testing/slogtest: one suite per interface,
// written once against the interface's contract and run by store/bolt against
// a real bbolt file and by store/redis against a real Redis.
//
// A backend's test calls a suite with a constructor that makes a fresh,
// isolated instance for each subtest:
//
//	func TestLog(t *testing.T) {
//		storetest.Log(t, func(t *testing.T, opts storetest.LogOptions) streams.Log {
//			db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{MaxLen: opts.MaxLen, Now: opts.Now})
//			...
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Every subtest makes real assertions that fail when a clause of the contract
// is broken; the subtest names say which clause, so a failure reads as
// "TestLog/Retention/KeepsNewest" rather than as a line number.
package storetest
