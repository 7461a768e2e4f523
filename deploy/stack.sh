#!/usr/bin/env bash
# The local stack: a project-local PostgreSQL cluster and a single-node Apache Kafka (KRaft),
# both on loopback, data under .stack/ in the checkout.
#
#   deploy/stack.sh up        start both (idempotent) and wait until each answers
#   deploy/stack.sh down      stop both
#   deploy/stack.sh status    say what runs
#   deploy/stack.sh pg-stop | pg-kill | pg-start | kafka-stop | kafka-start | kafka-kill
#                             single parts, for fault tests
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${SANWU_STACK_DIR:-$ROOT/.stack}"
PG_PORT="${SANWU_PG_PORT:-55432}"
KAFKA_PORT="${SANWU_KAFKA_PORT:-59092}"
CONTROLLER_PORT="${SANWU_KAFKA_CONTROLLER_PORT:-59093}"
KAFKA_HEAP="${SANWU_KAFKA_HEAP:-512m}"

mkdir -p "$STACK"
PG_DIR="$STACK/pg"
# As root the cluster belongs to the postgres user, who may not be able to reach a checkout
# under a closed folder (e.g. /root): then the cluster lives under /var/tmp, one per checkout.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
fi
if [ "$(id -u)" = 0 ] && ! (cd / && runuser -u postgres -- test -x "$STACK") 2>/dev/null \
  && ! [ -d "$PG_DIR/data" ]; then
  PG_DIR="/var/tmp/sanwu-pg-$(printf '%s' "$STACK" | md5sum | cut -c1-12)"
fi
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
KAFKA_DIR="$STACK/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_PID="$KAFKA_DIR/kafka.pid"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return; }
  done
  command -v "$1" || die "PostgreSQL server binary '$1' not found (apt-get install postgresql)"
}

# PostgreSQL refuses to run as root: as root, run it as the 'postgres' user.
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
  log "$what is up"
}

# --- PostgreSQL ----------------------------------------------------------------------------

pg_init() {
  [ -f "$PG_DATA/PG_VERSION" ] && return
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$PG_DIR"
    (cd / && runuser -u postgres -- test -w "$PG_DIR") \
      || die "user postgres cannot write $PG_DIR (a parent folder is closed to it); set SANWU_STACK_DIR"
  fi
  log "initialising PostgreSQL cluster in $PG_DATA"
  as_pg_owner "$(pg_bin initdb)" -D "$PG_DATA" -U sanwu --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >/dev/null
  cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
timezone = 'UTC'
log_min_messages = warning
EOF
}

pg_ready() { "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$PG_PORT" -U sanwu; }

pg_start() {
  pg_init
  if pg_ready; then log "PostgreSQL already answers on 127.0.0.1:$PG_PORT"; return; fi
  as_pg_owner "$(pg_bin pg_ctl)" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null \
    || { tail -20 "$PG_LOG" >&2; die "PostgreSQL did not start"; }
  wait_for 60 "PostgreSQL (127.0.0.1:$PG_PORT)" pg_ready || die "PostgreSQL does not answer"
  "$(pg_bin psql)" -h 127.0.0.1 -p "$PG_PORT" -U sanwu -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'sanwu'" | grep -q 1 \
    || "$(pg_bin createdb)" -h 127.0.0.1 -p "$PG_PORT" -U sanwu sanwu
}

pg_stop() {  # pg_stop [MODE]: fast (default) or immediate (a crash: recovery on next start)
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  as_pg_owner "$(pg_bin pg_ctl)" -D "$PG_DATA" -m "${1:-fast}" -w stop >/dev/null || true
  log "PostgreSQL stopped (${1:-fast})"
}

# --- Kafka ---------------------------------------------------------------------------------

kafka_libs() {
  [ -f "$KAFKA_LIBS/.complete" ] && cmp -s "$ROOT/deploy/kafka/pom.xml" "$KAFKA_LIBS/.complete" && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka: apt-get install maven"
  log "resolving Kafka jars from Maven Central (deploy/kafka/pom.xml)"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -q -B -Dstyle.color=never -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >"$KAFKA_DIR/maven.log" 2>&1 \
    || { cat "$KAFKA_DIR/maven.log" >&2; die "Maven could not resolve Kafka (see above)"; }
  cp "$ROOT/deploy/kafka/pom.xml" "$KAFKA_LIBS/.complete"
}

kafka_java() {  # kafka_java MAINCLASS ARGS...
  java "-Xms128m" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$ROOT/deploy/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

kafka_config() {
  mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
auto.create.topics.enable=false
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
delete.topic.enable=true
EOF
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    log "formatting Kafka storage"
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid | tail -1)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$KAFKA_DIR/server.properties" >/dev/null
  fi
}

kafka_running() { [ -f "$KAFKA_PID" ] && kill -0 "$(cat "$KAFKA_PID")" 2>/dev/null; }

kafka_start() {
  if port_open "$KAFKA_PORT"; then
    log "Kafka already answers on 127.0.0.1:$KAFKA_PORT"; return
  fi
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka: apt-get install openjdk-17-jre-headless"
  kafka_libs
  kafka_config
  setsid bash -c "$(declare -f kafka_java); KAFKA_LIBS='$KAFKA_LIBS' KAFKA_HEAP='$KAFKA_HEAP' ROOT='$ROOT' \
    kafka_java kafka.Kafka '$KAFKA_DIR/server.properties'" \
    >"$KAFKA_DIR/server.log" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"
  wait_for 90 "Kafka (127.0.0.1:$KAFKA_PORT)" port_open "$KAFKA_PORT" \
    || { tail -30 "$KAFKA_DIR/server.log" >&2; die "Kafka did not start"; }
}

kafka_stop() {  # kafka_stop [SIGNAL]
  kafka_running || { rm -f "$KAFKA_PID"; return 0; }
  local pid; pid="$(cat "$KAFKA_PID")"
  kill "-${1:-TERM}" -- "-$pid" 2>/dev/null || kill "-${1:-TERM}" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
  while port_open "$KAFKA_PORT"; do sleep 0.2; done
  rm -f "$KAFKA_PID"
  log "Kafka stopped"
}

status() {
  if pg_ready; then echo "postgresql: up (127.0.0.1:$PG_PORT)"; else echo "postgresql: down"; fi
  if port_open "$KAFKA_PORT"; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"
  else echo "kafka: down"; fi
}

case "${1:-}" in
  up) pg_start; kafka_start ;;
  down) kafka_stop; pg_stop ;;
  status) status ;;
  pg-start) pg_start ;;
  pg-stop) pg_stop ;;
  pg-kill) pg_stop immediate ;;
  kafka-start) kafka_start ;;
  kafka-stop) kafka_stop ;;
  kafka-kill) kafka_stop KILL ;;
  *) echo "usage: $0 up|down|status|pg-start|pg-stop|pg-kill|kafka-start|kafka-stop|kafka-kill" >&2; exit 2 ;;
esac
