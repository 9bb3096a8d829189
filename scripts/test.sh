#!/usr/bin/env bash
# scripts/test.sh runs Vigil's checks: go vet, then go test -race over every
# package, against a real Redis. Tests that need Redis fail without one, so
# this script makes sure there is one:
#
#   1. $VIGIL_TEST_REDIS_URL, if set, is used as it is.
#   2. Else a Redis answering PING on 127.0.0.1:$REDIS_PROBE_PORT (default
#      6379) is used.
#   3. Else a throwaway redis-server (installed with apt-get if missing) is
#      started on a free port with no persistence, in a temporary directory,
#      and stopped when the script exits.
#
# Arguments go to `go test` (for example -run TestLog -v). Environment:
#
#   VIGIL_TEST_REDIS_URL  the Redis to use; skips probing and starting one.
#   VIGIL_TEST_PKGS       packages to vet and test (default ./...).
#   REDIS_PROBE_PORT      the port probed for a running Redis (default 6379);
#                         point it at a dead port to exercise step 3.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=${VIGIL_TEST_PKGS:-./...}
probe_port=${REDIS_PROBE_PORT:-6379}

# answers PORT: whether a Redis on 127.0.0.1:PORT answers PING.
answers() {
	local port=$1
	if command -v redis-cli >/dev/null 2>&1; then
		[[ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" == PONG ]]
		return
	fi
	# No redis-cli: bash's /dev/tcp, an inline PING and one line of reply,
	# in a subshell so that neither the descriptor nor a failure leaks.
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port"
		printf 'PING\r\n' >&3
		IFS= read -r -t 2 reply <&3
		[[ "$reply" == "+PONG"* ]]
	) 2>/dev/null
}

# free_port: a TCP port nothing listens on, from the ephemeral range.
free_port() {
	local port
	for _ in $(seq 100); do
		port=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	echo "test.sh: no free port found" >&2
	return 1
}

# The throwaway server, if start_redis made one; stop_redis runs on EXIT.
redis_dir=
redis_port=

stop_redis() {
	[[ -n "$redis_dir" ]] || return 0
	if [[ -s "$redis_dir/redis.pid" ]]; then
		kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true
		# redis-server removes its pid file once it has shut down.
		for _ in $(seq 50); do
			[[ -e "$redis_dir/redis.pid" ]] || break
			sleep 0.1
		done
		echo "test.sh: stopped the throwaway redis-server on port $redis_port" >&2
	fi
	rm -rf "$redis_dir"
}

start_redis() {
	if ! command -v redis-server >/dev/null 2>&1; then
		echo "test.sh: redis-server not found; installing it with apt-get" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	fi
	redis_port=$(free_port)
	redis_dir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-redis.XXXXXX")
	trap stop_redis EXIT
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$redis_dir" --daemonize yes \
		--pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
	for _ in $(seq 100); do
		if answers "$redis_port"; then
			export VIGIL_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
			echo "test.sh: started a throwaway redis-server, pid $(cat "$redis_dir/redis.pid" 2>/dev/null || echo "?"), at $VIGIL_TEST_REDIS_URL" >&2
			return
		fi
		sleep 0.1
	done
	echo "test.sh: the redis-server on port $redis_port did not answer; its log:" >&2
	cat "$redis_dir/redis.log" >&2 || true
	return 1
}

if [[ -n "${VIGIL_TEST_REDIS_URL:-}" ]]; then
	echo "test.sh: using Redis at \$VIGIL_TEST_REDIS_URL=$VIGIL_TEST_REDIS_URL" >&2
elif answers "$probe_port"; then
	export VIGIL_TEST_REDIS_URL="redis://127.0.0.1:$probe_port/0"
	echo "test.sh: using the Redis running at $VIGIL_TEST_REDIS_URL" >&2
else
	echo "test.sh: no Redis answers on 127.0.0.1:$probe_port" >&2
	start_redis
fi

# Word splitting of $pkgs is intended: it may list several patterns.
# shellcheck disable=SC2086
go vet $pkgs
# shellcheck disable=SC2086
go test -race -count=1 $pkgs "$@"
