#!/usr/bin/env bash
# `make run`: demo keys, then the three services in the foreground; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# A local run: the built-in petitioner-hash secret is accepted only when this says local.
export SANWU_ENVIRONMENT="${SANWU_ENVIRONMENT:-local}"

desk_key="$($BIN/sanwu keys create --role desk --scope 340722000000 --label "demo desk 枞阳县")"
reader_key="$($BIN/sanwu keys create --role reader --scope 340722000000 --label "demo reader 枞阳县")"

pids=()
stop() {
  trap - INT TERM
  echo; echo "stopping services..."
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "stopped (PostgreSQL and Kafka keep running: make down stops them)"
}
trap stop INT TERM

start() {  # start NAME MODULE PORT
  SANWU_LOG_JSON=false $BIN/uvicorn "$2" --factory --host 127.0.0.1 --port "$3" \
    --no-access-log --log-level warning &
  pids+=($!)
}
start intake services.intake.main:create_app "${SANWU_INTAKE_PORT:-8001}"
start evaluation services.evaluation.main:create_app "${SANWU_EVALUATION_PORT:-8002}"
start reporting services.reporting.main:create_app "${SANWU_REPORTING_PORT:-8003}"

for port in "${SANWU_INTAKE_PORT:-8001}" "${SANWU_EVALUATION_PORT:-8002}" "${SANWU_REPORTING_PORT:-8003}"; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

cat <<MSG

sanwu is running (PostgreSQL 127.0.0.1:55432, Kafka 127.0.0.1:59092)

  intake      http://127.0.0.1:${SANWU_INTAKE_PORT:-8001}/docs
  evaluation  http://127.0.0.1:${SANWU_EVALUATION_PORT:-8002}/docs
  reporting   http://127.0.0.1:${SANWU_REPORTING_PORT:-8003}/docs

demo desk key   (枞阳县 340722000000): $desk_key
demo reader key (枞阳县 340722000000): $reader_key

try:
  curl -X POST http://127.0.0.1:8001/v1/events -H "Authorization: Bearer $desk_key" \\
    -H 'Content-Type: application/json' \\
    -d '{"event_id": "'\$(python3 -c 'import uuid; print(uuid.uuid4())')'", "type": "petition_visit",
         "unit_code": "340722100201", "occurred_at": "2018-06-03T09:30:00+08:00",
         "destination_level": "city", "headcount": 6}'

Ctrl-C stops the services.
MSG
wait
