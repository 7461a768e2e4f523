#!/usr/bin/env bash
# A local Keycloak (OIDC identity provider) for the console's sign-in: the server distribution
# from Maven Central, unpacked once, run in development mode on loopback with its data in memory
# and the realm of deploy/keycloak/realm-sanwu.json imported at every start.
#
#   deploy/keycloak.sh up       fetch once, start (idempotent) and wait until discovery answers
#   deploy/keycloak.sh down     stop it
#   deploy/keycloak.sh status   say whether it runs
#   deploy/keycloak.sh env      the SANWU_CONSOLE_OIDC_* settings of a console signing in here
#
# SANWU_KEYCLOAK_PORT (default 28180) is its HTTP port, SANWU_KEYCLOAK_MANAGEMENT_PORT (default
# the next one) its management port (health and metrics stay off);
# SANWU_KEYCLOAK_DIR (default .stack/keycloak/run) holds its pid file and log, so tests run one
# of their own beside the local one. The distribution stays in .stack/keycloak/dist
# (SANWU_KEYCLOAK_DIST) and is fetched again only when deploy/keycloak/pom.xml changes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${SANWU_STACK_DIR:-$ROOT/.stack}"
PORT="${SANWU_KEYCLOAK_PORT:-28180}"
MANAGEMENT_PORT="${SANWU_KEYCLOAK_MANAGEMENT_PORT:-$((PORT + 1))}"
RUN_DIR="${SANWU_KEYCLOAK_DIR:-$STACK/keycloak/run}"
DIST_DIR="${SANWU_KEYCLOAK_DIST:-$STACK/keycloak/dist}"
HEAP="${SANWU_KEYCLOAK_HEAP:-512m}"
POM="$ROOT/deploy/keycloak/pom.xml"
REALM="$ROOT/deploy/keycloak/realm-sanwu.json"
PID_FILE="$RUN_DIR/keycloak.pid"
LOG_FILE="$RUN_DIR/keycloak.log"
DISCOVERY="http://127.0.0.1:$PORT/realms/sanwu/.well-known/openid-configuration"
START_SECONDS="${SANWU_KEYCLOAK_START_SECONDS:-240}"

log() { printf '[keycloak] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

home() {  # the unpacked distribution's directory
  local dir
  for dir in "$DIST_DIR"/keycloak-*; do
    [ -x "$dir/bin/kc.sh" ] && { echo "$dir"; return; }
  done
  return 1
}

fetch() {
  [ -f "$DIST_DIR/.complete" ] && cmp -s "$POM" "$DIST_DIR/.complete" && home >/dev/null && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Keycloak: apt-get install maven"
  log "fetching the Keycloak distribution from Maven Central (deploy/keycloak/pom.xml)"
  rm -rf "$DIST_DIR"; mkdir -p "$DIST_DIR"
  mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy -DoutputDirectory="$DIST_DIR" \
    >"$DIST_DIR/maven.log" 2>&1 \
    || { cat "$DIST_DIR/maven.log" >&2; die "Maven could not fetch Keycloak (see above)"; }
  # GNU tar, not Maven's unpacker: the archive's long file names are in PAX headers.
  tar -xzf "$DIST_DIR"/keycloak-quarkus-dist-*.tar.gz -C "$DIST_DIR"
  rm -f "$DIST_DIR"/keycloak-quarkus-dist-*.tar.gz
  home >/dev/null || die "no bin/kc.sh in what Maven fetched into $DIST_DIR"
  cp "$POM" "$DIST_DIR/.complete"
}

running() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

answers() {
  curl -fs -o /dev/null --max-time 2 "$DISCOVERY"
}

up() {
  if running && answers; then
    log "Keycloak already runs on 127.0.0.1:$PORT"
    return
  fi
  running && down
  fetch
  local kc
  kc="$(home)"
  mkdir -p "$RUN_DIR" "$kc/data/import"
  cp "$REALM" "$kc/data/import/realm-sanwu.json"
  log "starting Keycloak on 127.0.0.1:$PORT (log: $LOG_FILE)"
  # setsid: its own process group, so `down` stops kc.sh and the JVM it starts together.
  JAVA_OPTS_KC_HEAP="-Xms64m -Xmx$HEAP" setsid "$kc/bin/kc.sh" start-dev \
    --db=dev-mem --import-realm \
    --http-host=127.0.0.1 --http-port="$PORT" \
    --http-management-port="$MANAGEMENT_PORT" --health-enabled=false \
    >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + START_SECONDS))
  until answers; do
    if ! running; then
      tail -30 "$LOG_FILE" >&2
      die "Keycloak stopped while starting (see above)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -30 "$LOG_FILE" >&2
      down
      die "Keycloak did not answer within ${START_SECONDS}s"
    fi
    sleep 1
  done
  log "Keycloak is up: $DISCOVERY"
}

down() {
  if ! running; then
    rm -f "$PID_FILE"
    return
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  log "Keycloak stopped"
}

status() {
  if running && answers; then
    echo "keycloak: running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"
  elif running; then
    echo "keycloak: starting or not answering (pid $(cat "$PID_FILE"))"
  else
    echo "keycloak: stopped"
  fi
}

# The settings of a console on this machine signing in here (the realm's local-only secret).
env_of() {
  echo "export SANWU_CONSOLE_OIDC_ISSUER=http://127.0.0.1:$PORT/realms/sanwu"
  echo "export SANWU_CONSOLE_OIDC_CLIENT_ID=sanwu-console"
  echo "export SANWU_CONSOLE_OIDC_CLIENT_SECRET=local-only-console-client-secret"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_of ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
