# Targets that work; see scripts/test.sh for how tests find a Redis.
.PHONY: run test bench

# run starts the server with its defaults (embedded store, offline model).
run:
	go run ./cmd/vigil serve

# test vets and runs every test with -race against a real Redis, starting a
# throwaway redis-server when none is running.
test:
	bash scripts/test.sh

# bench runs the storage benchmarks once (they need Redis, as tests do).
bench:
	go test -run='^$$' -bench=. ./store/...
