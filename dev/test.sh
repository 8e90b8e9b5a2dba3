#!/usr/bin/env bash
# deno task test: format, lint and type checks, then every test against a real broker and PostgreSQL
# (both started here when they are not running). Extra arguments go to `deno test`, e.g. a test file.
set -euo pipefail
cd "$(dirname "$0")/.."
deno fmt --check
deno lint
# --doc also type-checks the examples in JSDoc.
deno check --doc main.ts src/ tests/ bench/ dev/
bash dev/ensure_postgres.sh
bash dev/kafka.sh start
# The tests find the broker (and its certificates) through this; KAFKA_PORT moves it off 9092.
export TEST_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-9092}
deno test --allow-all --parallel "$@"
