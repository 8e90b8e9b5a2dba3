#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft, combined broker + controller) on loopback, for development and tests.
#
#   dev/kafka.sh start|stop|status|env
#   dev/kafka.sh cluster start|stop|status|env|start-node ID|stop-node ID|kill-node ID|restart-node ID
#
# The second form runs a multi-node KRaft cluster (3 nodes by default, PLAINTEXT only) for failover tests;
# its settings and commands are described in dev/kafka_cluster.sh.
#
# Settings (environment):
#   KAFKA_PORT   PLAINTEXT port (default 9092). SSL (client certificate required) is KAFKA_PORT+1,
#                SASL_SSL with SCRAM-SHA-512 is KAFKA_PORT+2, the KRaft controller is KAFKA_PORT+3.
#   KAFKA_DIR    data, certificates, config and log (default .kafka/<KAFKA_PORT> in the project)
#   KAFKA_EXTRA_CONFIG  lines appended to server.properties, e.g. an authorizer for tests of refused ACLs
#
# The jars come from Maven Central through `mvn` into the local Maven repository, so only the first start
# downloads. Certificates (CA, broker, client, and an unrelated CA for negative tests) are made with openssl
# on first start; the SCRAM user is created when the storage is formatted.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${KAFKA_PORT:-9092}
ssl_port=$((port + 1))
sasl_port=$((port + 2))
controller_port=$((port + 3))
dir=${KAFKA_DIR:-$root/.kafka/$port}
certs=$dir/certs
pidfile=$dir/kafka.pid
log=$dir/kafka.log
scram_user=${KAFKA_SCRAM_USER:-monitor}
scram_password=${KAFKA_SCRAM_PASSWORD:-monitor-secret}
start_timeout=${KAFKA_START_TIMEOUT:-120}

say() { printf 'kafka: %s\n' "$*" >&2; }

running() {
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The broker's classpath, resolved once per Kafka version and cached; `mvn -o` keeps later starts offline.
classpath() {
  local cache=$root/.kafka/classpath.txt pom=$root/dev/kafka-pom.xml
  if [[ ! -s $cache || $pom -nt $cache ]]; then
    mkdir -p "$root/.kafka"
    say "resolving Apache Kafka from Maven Central (first start only)"
    mvn -q -B -f "$pom" dependency:build-classpath -Dmdep.outputFile="$cache.tmp" >&2
    mv "$cache.tmp" "$cache"
  fi
  # A cached classpath is only good while every jar in it is still in the local repository.
  local jar
  IFS=: read -ra jars <"$cache"
  for jar in "${jars[@]}"; do
    if [[ ! -f $jar ]]; then
      rm -f "$cache"
      classpath
      return
    fi
  done
  cat "$cache"
}

make_certs() {
  [[ -f $certs/client.key ]] && return
  say "generating a CA, broker and client certificates in $certs"
  mkdir -p "$certs"
  (
    cd "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=monitor-dev-ca" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=unrelated-ca" \
      -keyout wrong-ca.key -out wrong-ca.pem 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >broker.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>/dev/null
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=monitor-client" -keyout client.key -out client.csr 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -out client.pem 2>/dev/null
    # Kafka reads a PEM key store: the PKCS#8 key followed by its certificate chain.
    openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
    cat broker.pk8 broker.pem ca.pem >broker-keystore.pem
    rm -f ./*.csr ./*.ext ./*.srl broker.pk8
  )
}

write_config() {
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# One broker: the internal topics cannot have more than one replica, or groups never find a coordinator.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
ssl.keystore.type=PEM
ssl.keystore.location=$certs/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$certs/ca.pem
ssl.endpoint.identification.algorithm=
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
  if [[ -n ${KAFKA_EXTRA_CONFIG:-} ]]; then
    printf '%s\n' "$KAFKA_EXTRA_CONFIG" >>"$dir/server.properties"
  fi
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
EOF
}

java_run() {
  local main=$1
  shift
  java -Xshare:auto -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cp" "$main" "$@"
}

# Ready means: the broker answers a metadata request on the PLAINTEXT listener.
wait_ready() {
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! running; then
      say "the broker exited during start; the end of $log:"
      tail -n 40 "$log" >&2 || true
      return 1
    fi
    if port_open "$port" &&
      timeout 30 java -Xshare:auto -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --list >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  say "the broker did not answer within ${start_timeout}s; the end of $log:"
  tail -n 40 "$log" >&2 || true
  return 1
}

start() {
  if running; then
    say "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    return 0
  fi
  local p
  for p in "$port" "$ssl_port" "$sasl_port" "$controller_port"; do
    if port_open "$p"; then
      say "port $p is taken by another process; set KAFKA_PORT (the broker uses it and the three above it)"
      return 1
    fi
  done
  cp=$(classpath)
  mkdir -p "$dir"
  make_certs
  write_config
  if [[ ! -f $dir/data/meta.properties ]]; then
    java_run kafka.tools.StorageTool format --cluster-id "$(java_run kafka.tools.StorageTool random-uuid)" \
      --config "$dir/server.properties" --ignore-formatted \
      --add-scram "SCRAM-SHA-512=[name=$scram_user,password=$scram_password]" >>"$log" 2>&1 || {
      say "formatting the storage failed; the end of $log:"
      tail -n 20 "$log" >&2
      return 1
    }
  fi
  local began=$SECONDS
  # setsid: the broker outlives the shell (and the test task) that started it.
  setsid nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Xshare:auto \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if wait_ready; then
    say "started on 127.0.0.1:$port (SSL $ssl_port, SASL_SSL $sasl_port) in $((SECONDS - began))s, pid $(cat "$pidfile"), log $log"
  else
    stop
    return 1
  fi
}

stop() {
  if ! running; then
    say "not running on port $port"
    rm -f "$pidfile"
    return 0
  fi
  local pid
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "the broker did not stop in 30s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  say "stopped (port $port)"
}

status() {
  if running; then
    say "running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
  else
    say "not running on port $port"
    return 3
  fi
}

# Prints the settings a client needs, for `eval "$(dev/kafka.sh env)"`.
env_vars() {
  printf 'export MONITOR_BROKERS=127.0.0.1:%s\n' "$port"
  printf 'export KAFKA_SSL_BROKERS=127.0.0.1:%s\n' "$ssl_port"
  printf 'export KAFKA_SASL_BROKERS=127.0.0.1:%s\n' "$sasl_port"
  printf 'export KAFKA_CERTS=%s\n' "$certs"
}

case ${1:-} in
cluster)
  source "$root/dev/kafka_cluster.sh"
  shift
  cluster_main "$@"
  ;;
start) start ;;
stop) stop ;;
status) status ;;
env) env_vars ;;
*)
  echo "usage: dev/kafka.sh start|stop|status|env, or dev/kafka.sh cluster ... (see dev/kafka_cluster.sh)" >&2
  exit 2
  ;;
esac
