#!/usr/bin/env bash
# The local stack: a project-local PostgreSQL cluster and Apache Kafka (KRaft), both on loopback,
# data under .stack/ in the checkout. Kafka is one combined broker and controller, or a cluster
# when SANWU_KAFKA_BROKERS (or KAFKA_BROKERS) is above 1: node N's ports are the base ports
# (SANWU_KAFKA_PORT, SANWU_KAFKA_CONTROLLER_PORT) plus 10 × (N - 1).
#
#   deploy/stack.sh up        start both (idempotent) and wait until each answers
#   deploy/stack.sh down      stop both
#   deploy/stack.sh status    say what runs
#   deploy/stack.sh pg-stop | pg-kill | pg-start | kafka-stop | kafka-start | kafka-kill
#                             single parts, for fault tests (kafka-* act on every node)
#   deploy/stack.sh kafka-node-stop | kafka-node-kill | kafka-node-start N
#                             one Kafka node by its node id
#   deploy/stack.sh kafka-leader     the node id of the active controller
#   deploy/stack.sh kafka-env        the SANWU_KAFKA_* settings clients of this stack need
#   deploy/stack.sh client-env       those and PGPASSFILE (the stack's PostgreSQL passwords)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${SANWU_STACK_DIR:-$ROOT/.stack}"
PG_PORT="${SANWU_PG_PORT:-25432}"
KAFKA_PORT="${SANWU_KAFKA_PORT:-29092}"
CONTROLLER_PORT="${SANWU_KAFKA_CONTROLLER_PORT:-29093}"
KAFKA_HEAP="${SANWU_KAFKA_HEAP:-512m}"
CONTROLLER_HEAP="${SANWU_KAFKA_CONTROLLER_HEAP:-256m}"
PORT_STRIDE=10
# An extra SASL_SSL listener (SCRAM-SHA-256/512) per broker: its base port, the broker's
# certificate chain and unencrypted PKCS#8 key in PEM. With it, the StandardAuthorizer and a
# SCRAM user per principal of shared/kafka_rights.py with its ACLs (see Kafka below).
SASL_SSL_PORT="${SANWU_KAFKA_SASL_SSL_PORT:-}"

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
KAFKA_LIBS="${SANWU_KAFKA_LIBS:-$KAFKA_DIR/libs}"
KAFKA_TOOLS="$KAFKA_DIR/tools"

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

# Password (SCRAM) authentication only. The superuser `postgres` exists for this script (roles,
# the database); `sanwu` is the migrator that owns the schemas; each service logs in as its own
# role that owns nothing (`sanwu db migrate` grants each what it needs). Passwords are made once
# and kept in $STACK/pgpass, the libpq password file every client reads through PGPASSFILE.
PG_PASSFILE="$STACK/pgpass"
PG_SERVICE_ROLES="sanwu_intake sanwu_evaluation sanwu_reporting sanwu_applications sanwu_console sanwu_audit sanwu_cases sanwu_webhooks"

pg_passwords() {  # a password for each role the file does not have yet
  local role
  (
    umask 077
    for role in postgres sanwu $PG_SERVICE_ROLES; do
      [ -f "$PG_PASSFILE" ] && [ -n "$(pg_password "$role")" ] && continue
      printf '127.0.0.1:%s:*:%s:%s\n' "$PG_PORT" "$role" "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    done >>"$PG_PASSFILE"
  )
}

pg_password() { awk -F: -v role="$1" '$4 == role { print $5 }' "$PG_PASSFILE"; }

# The file names the port its entries are for: a stack made with other ports is moved to these.
pg_passfile_port() {
  awk -F: -v port="$PG_PORT" '$2 != port { moved = 1 } END { exit !moved }' "$PG_PASSFILE" || return 0
  log "PostgreSQL moves to port $PG_PORT"
  local moved="$PG_PASSFILE.moving"
  (umask 077; awk -F: -v OFS=: -v port="$PG_PORT" '{ $2 = port; print }' "$PG_PASSFILE" >"$moved")
  mv "$moved" "$PG_PASSFILE"
}

pg_init() {
  if [ -f "$PG_DATA/PG_VERSION" ]; then
    grep -q '^host.*scram-sha-256' "$PG_DATA/pg_hba.conf" \
      || die "$PG_DATA holds a cluster from before password authentication: remove $PG_DIR and run again"
    return
  fi
  pg_passwords
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$PG_DIR"
    (cd / && runuser -u postgres -- test -w "$PG_DIR") \
      || die "user postgres cannot write $PG_DIR (a parent folder is closed to it); set SANWU_STACK_DIR"
  fi
  log "initialising PostgreSQL cluster in $PG_DATA"
  local pwfile="$PG_DIR/.initdb-password"
  (umask 077; pg_password postgres >"$pwfile")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pwfile"; fi
  as_pg_owner "$(pg_bin initdb)" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
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
password_encryption = 'scram-sha-256'
EOF
}

pg_ready() { "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres; }

as_superuser() {  # SQL on stdin, as `postgres`: no password on any command line
  PGPASSFILE="$PG_PASSFILE" "$(pg_bin psql)" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -qtA "$@"
}

# The roles and the database, idempotently (passwords from $PG_PASSFILE, sent on psql's stdin).
pg_roles() {
  local role password statements=("SET client_min_messages = warning;")
  for role in sanwu $PG_SERVICE_ROLES; do
    password="$(pg_password "$role")"
    [ -n "$password" ] || die "$PG_PASSFILE has no password for $role"
    statements+=("SELECT format('CREATE ROLE %I LOGIN', '$role')
      WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') \\gexec")
    statements+=("ALTER ROLE $role LOGIN NOSUPERUSER NOCREATEROLE PASSWORD '$password';")
  done
  # The migrator makes the test suite's databases and drops them with their sessions.
  statements+=("ALTER ROLE sanwu CREATEDB;" "GRANT pg_signal_backend TO sanwu;")
  statements+=("SELECT 'CREATE DATABASE sanwu OWNER sanwu'
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sanwu') \\gexec")
  printf '%s\n' "${statements[@]}" | as_superuser >/dev/null
}

pg_start() {
  pg_init
  pg_passfile_port
  pg_passwords
  if pg_ready; then
    log "PostgreSQL already answers on 127.0.0.1:$PG_PORT"
    pg_roles || die "PostgreSQL on port $PG_PORT refused this stack's passwords ($PG_PASSFILE): is it another checkout's stack? Give this one other ports (SANWU_PG_PORT, SANWU_KAFKA_PORT, SANWU_KAFKA_CONTROLLER_PORT)"
    return
  fi
  # The port can still be held for a moment by a process that just ended: a few tries before
  # giving up. (The default ports lie below Linux's range of ephemeral ports, 32768-60999, so
  # no client socket of the suite's own can hold them.) The port is given on the command line,
  # so a cluster made with other ports follows the settings.
  local try seen
  for try in 1 2 3 4 5; do
    seen=$(stat -c %s "$PG_LOG" 2>/dev/null || echo 0)
    as_pg_owner "$(pg_bin pg_ctl)" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" -w -t 60 start \
      >/dev/null && break
    tail -c +"$((seen + 1))" "$PG_LOG" | grep -q "Address already in use" && [ "$try" -lt 5 ] \
      || { tail -20 "$PG_LOG" >&2; die "PostgreSQL did not start"; }
    log "port $PG_PORT is still in use; trying again in 3 s"
    sleep 3
  done
  wait_for 60 "PostgreSQL (127.0.0.1:$PG_PORT)" pg_ready || die "PostgreSQL does not answer"
  pg_roles
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
  mkdir -p "$KAFKA_DIR"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -q -B -Dstyle.color=never -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >"$KAFKA_DIR/maven.log" 2>&1 \
    || { cat "$KAFKA_DIR/maven.log" >&2; die "Maven could not resolve Kafka (see above)"; }
  cp "$ROOT/deploy/kafka/pom.xml" "$KAFKA_LIBS/.complete"
}

# The command-line tools (kafka-metadata-quorum), only for clusters: one jar beside the broker's.
kafka_tools() {
  local pom="$ROOT/deploy/kafka/tools/pom.xml"
  [ -f "$KAFKA_TOOLS/.complete" ] && cmp -s "$pom" "$KAFKA_TOOLS/.complete" && return
  log "resolving the Kafka tools from Maven Central (deploy/kafka/tools/pom.xml)"
  rm -rf "$KAFKA_TOOLS"; mkdir -p "$KAFKA_TOOLS"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DexcludeTransitive=true \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_TOOLS" >"$KAFKA_DIR/maven-tools.log" 2>&1 \
    || { cat "$KAFKA_DIR/maven-tools.log" >&2; die "Maven could not resolve the Kafka tools"; }
  cp "$pom" "$KAFKA_TOOLS/.complete"
}

kafka_java() {  # kafka_java MAINCLASS ARGS...  (heap: KAFKA_HEAP)
  java "-Xms128m" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$ROOT/deploy/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# How many brokers and separate controllers (0: every broker is also a controller). A stack
# directory keeps the layout its storage was formatted for.
kafka_layout() {
  local wanted_brokers="${SANWU_KAFKA_BROKERS:-${KAFKA_BROKERS:-}}"
  local wanted_controllers="${SANWU_KAFKA_CONTROLLERS:-${KAFKA_CONTROLLERS:-}}"
  local saved_brokers="" saved_controllers=""
  if [ -f "$KAFKA_DIR/layout" ]; then
    read -r saved_brokers saved_controllers <"$KAFKA_DIR/layout"
  elif [ -f "$KAFKA_DIR/data/meta.properties" ]; then
    saved_brokers=1 saved_controllers=0
  fi
  BROKERS="${wanted_brokers:-${saved_brokers:-1}}"
  CONTROLLERS="${wanted_controllers:-${saved_controllers:-0}}"
  [[ "$BROKERS" =~ ^[1-9][0-9]*$ && "$CONTROLLERS" =~ ^[0-9]+$ ]] \
    || die "KAFKA_BROKERS must be 1 or more and KAFKA_CONTROLLERS 0 or more"
  if [ -n "$saved_brokers" ] && [ "$BROKERS $CONTROLLERS" != "$saved_brokers $saved_controllers" ]; then
    die "$STACK holds Kafka with $saved_brokers broker(s) and $saved_controllers separate controller(s), not $BROKERS and $CONTROLLERS: use another SANWU_STACK_DIR"
  fi
  NODES=$((BROKERS + CONTROLLERS))
  REPLICAS=$((BROKERS < 3 ? BROKERS : 3))
  MIN_ISR=$((REPLICAS > 2 ? 2 : 1))  # two of three; a pair must survive the loss of one
}

single() { [ "$NODES" = 1 ]; }
is_broker() { [ "$1" -le "$BROKERS" ]; }
is_controller() { [ "$CONTROLLERS" = 0 ] || [ "$1" -gt "$BROKERS" ]; }
# Node 1 of a single-node stack keeps the layout it always had: everything in kafka/.
node_dir() { if single; then echo "$KAFKA_DIR"; else echo "$KAFKA_DIR/node-$1"; fi; }
client_port() { echo $((KAFKA_PORT + PORT_STRIDE * ($1 - 1))); }
secure_port() { echo $((SASL_SSL_PORT + PORT_STRIDE * ($1 - 1))); }
controller_port() {
  if [ "$CONTROLLERS" = 0 ]; then echo $((CONTROLLER_PORT + PORT_STRIDE * ($1 - 1)))
  else echo $((CONTROLLER_PORT + PORT_STRIDE * ($1 - BROKERS - 1))); fi
}
# The port that answers once the node serves: a broker's client port, a controller's own.
node_port() { if is_broker "$1"; then client_port "$1"; else controller_port "$1"; fi; }
node_roles() {
  if is_broker "$1" && is_controller "$1"; then echo broker,controller
  elif is_broker "$1"; then echo broker; else echo controller; fi
}
node_ids() { seq 1 "$NODES"; }

voters() {
  local id list=()
  for id in $(node_ids); do
    is_controller "$id" && list+=("$id@127.0.0.1:$(controller_port "$id")")
  done
  local IFS=,; echo "${list[*]}"
}

bootstrap_servers() {
  local id list=()
  for ((id = 1; id <= BROKERS; id++)); do list+=("127.0.0.1:$(client_port "$id")"); done
  local IFS=,; echo "${list[*]}"
}

pem_inline() { awk '{ printf "%s\\n", $0 }' "$1"; }  # a PEM file as one properties value

# With the SASL_SSL listener, a SCRAM user per service and the ACLs of shared/kafka_rights.py
# for the topics under SANWU_TOPIC_PREFIX, enforced by the StandardAuthorizer. Each password is
# made once and kept in $KAFKA_SECRETS/<principal>.password (SANWU_KAFKA_PASSWORD_FILE), read
# there by the Python that creates the users: never on a command line. The plain listener,
# the controllers and the brokers among themselves act as User:ANONYMOUS, a super user: the
# plain listener is on loopback, for the test suite and local runs.
KAFKA_SECRETS="$KAFKA_DIR/secrets"

node_listeners() {  # node_listeners ID: the listeners, advertised listeners and protocol map
  local id=$1 listeners=() advertised=() map="CONTROLLER:PLAINTEXT"
  if is_broker "$id"; then
    listeners+=("PLAINTEXT://127.0.0.1:$(client_port "$id")")
    advertised+=("PLAINTEXT://127.0.0.1:$(client_port "$id")")
    map+=",PLAINTEXT:PLAINTEXT"
    if [ -n "$SASL_SSL_PORT" ]; then
      listeners+=("SASL_SSL://127.0.0.1:$(secure_port "$id")")
      advertised+=("SASL_SSL://127.0.0.1:$(secure_port "$id")")
      map+=",SASL_SSL:SASL_SSL"
    fi
  fi
  is_controller "$id" && listeners+=("CONTROLLER://127.0.0.1:$(controller_port "$id")")
  local IFS=,
  echo "listeners=${listeners[*]}"
  is_broker "$id" && echo "advertised.listeners=${advertised[*]}"
  echo "controller.listener.names=CONTROLLER"
  is_broker "$id" && echo "inter.broker.listener.name=PLAINTEXT"
  echo "listener.security.protocol.map=$map"
}

secure_listener_config() {
  [ -f "${SANWU_KAFKA_TLS_CERT:-}" ] && [ -f "${SANWU_KAFKA_TLS_KEY:-}" ] \
    || die "SANWU_KAFKA_SASL_SSL_PORT needs SANWU_KAFKA_TLS_CERT and SANWU_KAFKA_TLS_KEY (PEM files)"
  cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.certificate.chain=$(pem_inline "$SANWU_KAFKA_TLS_CERT")
listener.name.sasl_ssl.ssl.keystore.key=$(pem_inline "$SANWU_KAFKA_TLS_KEY")
EOF
}

kafka_node_config() {  # kafka_node_config ID
  local id=$1 dir; dir="$(node_dir "$1")"
  mkdir -p "$dir/data"
  (
    umask 077  # the secure listener's key may be in it
    {
      echo "process.roles=$(node_roles "$id")"
      echo "node.id=$id"
      echo "controller.quorum.voters=$(voters)"
      node_listeners "$id"
      cat <<EOF
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=6
offsets.topic.replication.factor=$REPLICAS
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$REPLICAS
transaction.state.log.min.isr=$MIN_ISR
share.coordinator.state.topic.replication.factor=$REPLICAS
share.coordinator.state.topic.min.isr=$MIN_ISR
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
delete.topic.enable=true
EOF
      if ! single; then
        echo "default.replication.factor=$REPLICAS"
        echo "min.insync.replicas=$MIN_ISR"
      fi
      if [ -n "$SASL_SSL_PORT" ]; then
        echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        echo "super.users=User:ANONYMOUS"
        is_broker "$id" && secure_listener_config
      fi
    } >"$dir/server.properties"
  )
}

cluster_id() {  # one id for every node of the stack, made when the first is formatted
  if single; then kafka_java kafka.tools.StorageTool random-uuid | tail -1; return; fi
  [ -f "$KAFKA_DIR/cluster.id" ] \
    || kafka_java kafka.tools.StorageTool random-uuid | tail -1 >"$KAFKA_DIR/cluster.id"
  cat "$KAFKA_DIR/cluster.id"
}

kafka_format() {  # kafka_format ID: once per node
  local dir; dir="$(node_dir "$1")"
  [ -f "$dir/data/meta.properties" ] && return
  if single; then log "formatting Kafka storage"; else log "formatting Kafka storage of node $1"; fi
  kafka_java kafka.tools.StorageTool format -t "$(cluster_id)" -c "$dir/server.properties" >/dev/null
  single || echo "$BROKERS $CONTROLLERS" >"$KAFKA_DIR/layout"
}

node_pid_file() { echo "$(node_dir "$1")/kafka.pid"; }
node_running() { local f; f="$(node_pid_file "$1")"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
node_name() { if single; then echo Kafka; else echo "Kafka node $1 ($(node_roles "$1"))"; fi; }

kafka_node_launch() {  # kafka_node_launch ID
  local id=$1 dir heap=$KAFKA_HEAP; dir="$(node_dir "$1")"
  is_broker "$id" || heap=$CONTROLLER_HEAP
  kafka_node_config "$id"
  kafka_format "$id"
  setsid bash -c "$(declare -f kafka_java); KAFKA_LIBS='$KAFKA_LIBS' KAFKA_HEAP='$heap' ROOT='$ROOT' \
    kafka_java kafka.Kafka '$dir/server.properties'" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$(node_pid_file "$id")"
}

# As for PostgreSQL: a port can still be held for a moment by a process that just ended (the
# suite's own services listen on free ports of the same range); a node that ended for it is
# launched again, a few times.
kafka_node_wait() {  # kafka_node_wait ID
  local id=$1 try dir port; dir="$(node_dir "$1")"; port="$(node_port "$1")"
  for try in 1 2 3 4 5; do
    local deadline=$((SECONDS + 90))
    until port_open "$port"; do
      node_running "$id" && [ "$SECONDS" -lt "$deadline" ] || break
      sleep 0.3
    done
    if port_open "$port"; then log "$(node_name "$id") (127.0.0.1:$port) is up"; return; fi
    node_running "$id" || ! grep -q "Address already in use" "$dir/server.log" || [ "$try" = 5 ] \
      && break
    log "a port of $(node_name "$id") is still in use; trying again in 3 s"
    sleep 3
    kafka_node_launch "$id"
  done
  tail -30 "$dir/server.log" >&2
  die "$(node_name "$id") did not start"
}

kafka_preflight() {
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka: apt-get install openjdk-17-jre-headless"
  kafka_libs
  single || kafka_tools  # now rather than when a fault test first asks for the leader
}

answers() {  # answers ID: whether the node serves already (and says so)
  port_open "$(node_port "$1")" || return 1
  log "$(node_name "$1") already answers on 127.0.0.1:$(node_port "$1")"
}

# Every node is launched before any is waited for: a broker serves only once a quorum of
# controllers has formed.
kafka_start() {
  local id launched=()
  for id in $(node_ids); do
    answers "$id" && continue
    [ ${#launched[@]} -gt 0 ] || kafka_preflight
    kafka_node_launch "$id"
    launched+=("$id")
  done
  for id in "${launched[@]}"; do kafka_node_wait "$id"; done
  [ -z "$SASL_SSL_PORT" ] || kafka_grant
}

kafka_grant() {  # the principals' SCRAM users and ACLs, through the plain listener
  local python="${SANWU_PYTHON:-$ROOT/.venv/bin/python}"
  [ -x "$python" ] || die "the SASL_SSL listener's users are made with the project's Python: $python is missing (make venv)"
  (umask 077 && mkdir -p "$KAFKA_SECRETS")
  (cd "$ROOT" && "$python" -m shared.kafka_grants grant --bootstrap-servers "$(bootstrap_servers)" \
    --topic-prefix "${SANWU_TOPIC_PREFIX:-sanwu.}" --secrets "$KAFKA_SECRETS") \
    || die "the Kafka principals could not be granted their rights"
  log "Kafka principals granted (passwords in $KAFKA_SECRETS)"
}

kafka_node_start() {  # kafka_node_start ID
  check_node "$1"
  answers "$1" && return
  kafka_preflight
  kafka_node_launch "$1"
  kafka_node_wait "$1"
}

# Send the signal to every node named, then wait for each: nodes stopping together do not
# wait one after the other for a controller that is going away too.
kafka_nodes_stop() {  # kafka_nodes_stop SIGNAL ID...
  local signal=$1 id; shift
  local -A pids=()
  for id in "$@"; do
    if node_running "$id"; then pids[$id]="$(cat "$(node_pid_file "$id")")"
    else rm -f "$(node_pid_file "$id")"; fi
  done
  for id in "$@"; do
    [ -n "${pids[$id]:-}" ] || continue
    kill "-$signal" -- "-${pids[$id]}" 2>/dev/null || kill "-$signal" "${pids[$id]}" 2>/dev/null || true
  done
  for id in "$@"; do
    [ -n "${pids[$id]:-}" ] || continue
    local pid=${pids[$id]} deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
    while port_open "$(node_port "$id")"; do sleep 0.2; done
    rm -f "$(node_pid_file "$id")"
    if single; then log "Kafka stopped"; else log "$(node_name "$id") stopped ($signal)"; fi
  done
}

kafka_stop() {  # kafka_stop [SIGNAL]: brokers first, then separate controllers
  local brokers=() controllers=() id
  for id in $(node_ids); do
    if is_broker "$id"; then brokers+=("$id"); else controllers+=("$id"); fi
  done
  kafka_nodes_stop "${1:-TERM}" "${brokers[@]}"
  [ ${#controllers[@]} = 0 ] || kafka_nodes_stop "${1:-TERM}" "${controllers[@]}"
}

check_node() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$NODES" ] \
    || die "a node id from 1 to $NODES is needed"
}

kafka_leader() {  # the active controller's node id, from the quorum as a broker reports it
  kafka_tools
  local out
  out="$(KAFKA_HEAP=128m KAFKA_LIBS="$KAFKA_LIBS/*:$KAFKA_TOOLS" kafka_java \
    org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(bootstrap_servers)" \
    describe --status 2>&1)" || { echo "$out" >&2; die "the quorum could not be described"; }
  sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' <<<"$out"
}

kafka_env() {  # what a client of this stack needs, for eval; nothing for a single node
  single && return
  echo "export SANWU_KAFKA_BOOTSTRAP_SERVERS=\"\${SANWU_KAFKA_BOOTSTRAP_SERVERS:-$(bootstrap_servers)}\""
  echo "export SANWU_KAFKA_REPLICATION_FACTOR=\"\${SANWU_KAFKA_REPLICATION_FACTOR:-$REPLICAS}\""
  echo "export SANWU_KAFKA_MIN_INSYNC_REPLICAS=\"\${SANWU_KAFKA_MIN_INSYNC_REPLICAS:-$MIN_ISR}\""
}

status() {
  if pg_ready; then echo "postgresql: up (127.0.0.1:$PG_PORT)"; else echo "postgresql: down"; fi
  if single; then
    if port_open "$KAFKA_PORT"; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"
    else echo "kafka: down"; fi
    return
  fi
  local id
  for id in $(node_ids); do
    if port_open "$(node_port "$id")"; then
      echo "kafka node $id ($(node_roles "$id")): up (127.0.0.1:$(node_port "$id"))"
    else echo "kafka node $id ($(node_roles "$id")): down"; fi
  done
}

kafka_layout
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
  kafka-node-start) kafka_node_start "${2:-}" ;;
  kafka-node-stop) check_node "${2:-}"; kafka_nodes_stop TERM "$2" ;;
  kafka-node-kill) check_node "${2:-}"; kafka_nodes_stop KILL "$2" ;;
  kafka-leader) kafka_leader ;;
  kafka-env) kafka_env ;;
  client-env) kafka_env; echo "export PGPASSFILE=\"$PG_PASSFILE\"" ;;
  *) echo "usage: $0 up|down|status|pg-start|pg-stop|pg-kill|kafka-start|kafka-stop|kafka-kill" >&2
     echo "       $0 kafka-node-start|kafka-node-stop|kafka-node-kill N | kafka-leader | kafka-env" >&2
     exit 2 ;;
esac
