# A local multi-node Apache Kafka cluster (KRaft, every node a combined broker + controller) on loopback, for
# failover tests and development. Sourced by dev/kafka.sh, which provides say, port_open and classpath:
#
#   dev/kafka.sh cluster start|stop|status|env
#   dev/kafka.sh cluster stop-node ID|kill-node ID|start-node ID|restart-node ID
#
# start         starts every node (formatting storage on first use) and returns once the cluster is ready:
#               every node answers a metadata request listing every node as a live broker (which implies a
#               quorum leader; see dev/kafka_ready.ts). Running nodes are left alone.
# stop          stops every node (SIGTERM, then SIGKILL after 30 s).
# stop-node ID  a clean shutdown of one node (leadership moves away first); kill-node ID is `kill -9`.
# start-node ID starts one node and waits until it and every other running node list all running nodes.
# restart-node  stop-node, then start-node.
# status        each node's state; exit 3 when some node is down.
# env           MONITOR_BROKERS for `eval "$(dev/kafka.sh cluster env)"`.
#
# Settings (environment):
#   KAFKA_NODES          number of nodes (default 3); node ids are 1..N.
#   KAFKA_CLUSTER_PORT   PLAINTEXT port of node 1 (default 19192); node N uses KAFKA_CLUSTER_PORT+(N-1)*100,
#                        and its controller listener that port +3 (the same 4-port block as the single broker).
#   KAFKA_CLUSTER_DIR    data, config and logs (default .kafka/cluster-<KAFKA_CLUSTER_PORT>).
#
# Topics get replication factor 3 (or N when smaller) and min.insync.replicas=2 by default, the internal
# topics too; topics are never created automatically. PLAINTEXT only. Each JVM gets a 512 MiB heap.

nodes=${KAFKA_NODES:-3}
cluster_port=${KAFKA_CLUSTER_PORT:-19192}
cluster_dir=${KAFKA_CLUSTER_DIR:-$root/.kafka/cluster-$cluster_port}
replication=$((nodes < 3 ? nodes : 3))
min_isr=$((replication < 2 ? 1 : 2))

node_port() { echo $((cluster_port + ($1 - 1) * 100)); }
node_dir() { echo "$cluster_dir/node-$1"; }
node_pid() { cat "$(node_dir "$1")/kafka.pid" 2>/dev/null; }
node_running() {
  local pid
  pid=$(node_pid "$1") && kill -0 "$pid" 2>/dev/null
}

check_id() {
  if [[ ! ${1:-} =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > nodes)); then
    say "expected a node id from 1 to $nodes: got '${1:-}'"
    exit 2
  fi
}

write_node_config() {
  local id=$1 dir port voters="" i
  dir=$(node_dir "$id")
  port=$(node_port "$id")
  for ((i = 1; i <= nodes; i++)); do voters+="${voters:+,}$i@127.0.0.1:$(($(node_port "$i") + 3))"; done
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 3))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=6
default.replication.factor=$replication
min.insync.replicas=$min_isr
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_isr
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
EOF
}

# Starts one node's JVM in the background (no wait).
launch_node() {
  local id=$1 dir port
  dir=$(node_dir "$id")
  port=$(node_port "$id")
  for p in "$port" $((port + 3)); do
    if port_open "$p"; then
      say "port $p (node $id) is taken by another process; set KAFKA_CLUSTER_PORT"
      return 1
    fi
  done
  write_node_config "$id"
  # The serial collector and a small heap: several of these share two cores with the tests.
  setsid nohup java -Xms128m -Xmx512m -XX:+UseSerialGC -Xshare:auto \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >>"$dir/kafka.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
}

format_storage() {
  local cluster_id_file=$cluster_dir/cluster.id id pids=() ids=() i try cluster_id
  mkdir -p "$cluster_dir"
  # A cluster id is 16 random bytes in URL-safe base64 without padding (what `kafka-storage random-uuid` makes).
  # Like Kafka's own, it never begins with '-': the storage tool would take it for an option and refuse to
  # format (one cluster in 64 failed to start that way).
  cluster_id=$(cat "$cluster_id_file" 2>/dev/null || true)
  for ((try = 0; try < 100; try++)); do
    [[ -n $cluster_id && $cluster_id != -* ]] && break
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  printf '%s' "$cluster_id" >"$cluster_id_file"
  for ((id = 1; id <= nodes; id++)); do
    [[ -f $(node_dir "$id")/data/meta.properties ]] && continue
    write_node_config "$id"
    java -Xshare:auto -Dlog4j2.configurationFile="$(node_dir "$id")/log4j2.properties" -cp "$cp" \
      kafka.tools.StorageTool format --cluster-id "$(cat "$cluster_id_file")" \
      --config "$(node_dir "$id")/server.properties" --ignore-formatted >>"$(node_dir "$id")/kafka.log" 2>&1 &
    pids+=($!)
    ids+=("$id")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || {
      say "formatting the storage of node ${ids[$i]} failed; the end of its log:"
      tail -n 20 "$(node_dir "${ids[$i]}")/kafka.log" >&2 || true
      return 1
    }
  done
}

# Waits until every running node lists every running node (see dev/kafka_ready.ts).
wait_cluster_ready() {
  local args=() id
  for ((id = 1; id <= nodes; id++)); do
    node_running "$id" && args+=("$id@127.0.0.1:$(node_port "$id")")
  done
  ((${#args[@]} > 0)) || return 1
  (cd "$root" && deno run -q --allow-net --allow-env dev/kafka_ready.ts "$start_timeout" "${args[@]}")
}

cluster_start() {
  local id began=$SECONDS
  cp=$(classpath)
  format_storage
  for ((id = 1; id <= nodes; id++)); do
    node_running "$id" || launch_node "$id"
  done
  if wait_cluster_ready; then
    say "cluster of $nodes ready in $((SECONDS - began))s: $(cluster_brokers) (data $cluster_dir)"
  else
    say "the cluster did not become ready within ${start_timeout}s; see $cluster_dir/node-*/kafka.log"
    return 1
  fi
}

node_start() {
  local id=$1 began=$SECONDS
  check_id "$id"
  if node_running "$id"; then
    say "node $id already running (pid $(node_pid "$id"))"
    return 0
  fi
  cp=$(classpath)
  launch_node "$id"
  if wait_cluster_ready; then
    say "node $id started on 127.0.0.1:$(node_port "$id") in $((SECONDS - began))s, pid $(node_pid "$id")"
  else
    say "node $id did not become ready within ${start_timeout}s; the end of its log:"
    tail -n 30 "$(node_dir "$id")/kafka.log" >&2 || true
    return 1
  fi
}

node_stop() {
  local id=$1 signal=${2:-TERM} pid
  check_id "$id"
  if ! node_running "$id"; then
    say "node $id is not running"
    rm -f "$(node_dir "$id")/kafka.pid"
    return 0
  fi
  pid=$(node_pid "$id")
  kill "-$signal" "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "node $id did not stop in 30s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$(node_dir "$id")/kafka.pid"
  if [[ $signal == KILL ]]; then say "node $id killed (kill -9)"; else say "node $id stopped"; fi
}

cluster_stop() {
  local id
  # Signalled together so that no node spends its shutdown moving leadership to a node about to stop.
  for ((id = 1; id <= nodes; id++)); do node_stop "$id" &
  done
  wait
}

cluster_status() {
  local id down=0
  for ((id = 1; id <= nodes; id++)); do
    if node_running "$id"; then
      say "node $id running on 127.0.0.1:$(node_port "$id") (pid $(node_pid "$id"))"
    else
      say "node $id not running (port $(node_port "$id"))"
      down=1
    fi
  done
  ((down == 0)) || return 3
}

cluster_brokers() {
  local id list=""
  for ((id = 1; id <= nodes; id++)); do list+="${list:+,}127.0.0.1:$(node_port "$id")"; done
  echo "$list"
}

cluster_main() {
  case ${1:-} in
  start) cluster_start ;;
  stop) cluster_stop ;;
  status) cluster_status ;;
  env) printf 'export MONITOR_BROKERS=%s\n' "$(cluster_brokers)" ;;
  start-node) node_start "${2:-}" ;;
  stop-node) node_stop "${2:-}" TERM ;;
  kill-node) node_stop "${2:-}" KILL ;;
  restart-node)
    node_stop "${2:-}" TERM
    node_start "${2:-}"
    ;;
  *)
    echo "usage: dev/kafka.sh cluster start|stop|status|env|start-node ID|stop-node ID|kill-node ID|restart-node ID" >&2
    exit 2
    ;;
  esac
}
