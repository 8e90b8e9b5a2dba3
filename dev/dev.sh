#!/usr/bin/env bash
# deno task dev: the whole system on this machine. Starts PostgreSQL (if down) and the Kafka broker, creates
# the `monitor` database and its schema, then runs a demo HTTP server, `monitor sink`, `monitor check` on
# sites.toml and `monitor serve` (the status page, on 127.0.0.1:8081 unless MONITOR_LISTEN says otherwise: the
# demo server has 8080), and prints what arrives in the database every few seconds. Ctrl-C stops everything but the
# broker (`deno task kafka stop` stops that). DEV_SECONDS=N stops by itself after N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source dev/permissions.sh

bash dev/ensure_postgres.sh
bash dev/kafka.sh start

export MONITOR_BROKERS=${MONITOR_BROKERS:-127.0.0.1:9092}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/monitor}
admin_url=${DATABASE_URL%/*}/postgres
db_name=${DATABASE_URL##*/}
db_name=${db_name%%\?*}
if [[ $(psql "$admin_url" -Atc "select 1 from pg_database where datname = '$db_name'") != 1 ]]; then
  psql "$admin_url" -qc "create database \"$db_name\""
  echo "dev: created database $db_name"
fi

monitor=(deno run "${MONITOR_PERMISSIONS[@]}" main.ts)
"${monitor[@]}" migrate

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo "dev: stopping (the broker keeps running; 'deno task kafka stop' stops it)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

deno run --allow-net --allow-env dev/demo_server.ts &
pids+=($!)
# Started directly (not through a shell function), so $! is the process itself and the trap can stop it.
"${monitor[@]}" sink --summary-every 30s &
pids+=($!)
"${monitor[@]}" check --sites "${MONITOR_SITES:-sites.toml}" --create-topic --summary-every 30s &
pids+=($!)
serve_listen=${MONITOR_LISTEN:-127.0.0.1:8081}
"${monitor[@]}" serve --listen "$serve_listen" --title "monitor (dev)" &
pids+=($!)
echo "dev: status page on http://$serve_listen/ (JSON on /api/sites, metrics on /metrics)"

echo "dev: demo server, sink, agent and status page running; rows in $DATABASE_URL (Ctrl-C to stop)"
started=$SECONDS
while [[ -z ${DEV_SECONDS:-} ]] || ((SECONDS - started < DEV_SECONDS)); do
  sleep 5
  psql "$DATABASE_URL" -qAt -F ' ' -c "
    select 'dev: ' || count(*) || ' checks stored; latest: ' ||
      coalesce((select string_agg(site || '=' || state, ', ' order by site) from site_status), 'none yet')
    from checks" || true
done
