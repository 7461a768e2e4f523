#!/usr/bin/env bash
# `make run`: demo keys, then the four services and the console in the foreground; Ctrl-C stops
# them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# A local run: the built-in petitioner-hash secret is accepted only when this says local.
export SANWU_ENVIRONMENT="${SANWU_ENVIRONMENT:-local}"
# The demo accepts applications all year, so that a new user can try one in any month (the
# campaign's own window, the plan's December, applies when this is set to "").
export SANWU_APPLICATION_WINDOW="${SANWU_APPLICATION_WINDOW-01-01/12-31}"

desk_key="$($BIN/sanwu keys create --role desk --scope 340722000000 --label "demo desk 枞阳县")"
reader_key="$($BIN/sanwu keys create --role reader --scope 340722000000 --label "demo reader 枞阳县")"
# The petition bureaus (信访局) of the demo county, its city and its province.
county_bureau_key="$($BIN/sanwu keys create --role bureau --scope 340722000000 --label "demo bureau 枞阳县")"
city_bureau_key="$($BIN/sanwu keys create --role bureau --scope 340700000000 --label "demo bureau 铜陵市")"
province_bureau_key="$($BIN/sanwu keys create --role bureau --scope 340000000000 --label "demo bureau 安徽省")"
# A handling body of the county (data/demo-bodies.csv): acts on the cases routed to it.
handler_key="$($BIN/sanwu keys create --role handler --scope 340722000000 --body 民政 --label "demo handler 枞阳县民政局")"

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
# Where each service finds the others (applications asks cases for the evidence's rates).
export SANWU_INTAKE_URL="${SANWU_INTAKE_URL:-http://127.0.0.1:${SANWU_INTAKE_PORT:-8001}}"
export SANWU_EVALUATION_URL="${SANWU_EVALUATION_URL:-http://127.0.0.1:${SANWU_EVALUATION_PORT:-8002}}"
export SANWU_REPORTING_URL="${SANWU_REPORTING_URL:-http://127.0.0.1:${SANWU_REPORTING_PORT:-8003}}"
export SANWU_APPLICATIONS_URL="${SANWU_APPLICATIONS_URL:-http://127.0.0.1:${SANWU_APPLICATIONS_PORT:-8004}}"
export SANWU_AUDIT_URL="${SANWU_AUDIT_URL:-http://127.0.0.1:${SANWU_AUDIT_PORT:-8006}}"
export SANWU_CASES_URL="${SANWU_CASES_URL:-http://127.0.0.1:${SANWU_CASES_PORT:-8005}}"
start intake services.intake.main:create_app "${SANWU_INTAKE_PORT:-8001}"
start evaluation services.evaluation.main:create_app "${SANWU_EVALUATION_PORT:-8002}"
start reporting services.reporting.main:create_app "${SANWU_REPORTING_PORT:-8003}"
start applications services.applications.main:create_app "${SANWU_APPLICATIONS_PORT:-8004}"
start audit services.audit.main:create_app "${SANWU_AUDIT_PORT:-8006}"
start cases services.cases.main:create_app "${SANWU_CASES_PORT:-8005}"
# Local receivers (a test endpoint on this machine) are allowed here only.
SANWU_WEBHOOKS_ALLOWED_TARGETS="${SANWU_WEBHOOKS_ALLOWED_TARGETS-127.0.0.0/8}" \
  start webhooks services.webhooks.main:create_app "${SANWU_WEBHOOKS_PORT:-8007}"
start console services.console.main:create_app "${SANWU_CONSOLE_PORT:-8000}"

for port in "${SANWU_INTAKE_PORT:-8001}" "${SANWU_EVALUATION_PORT:-8002}" "${SANWU_REPORTING_PORT:-8003}" \
  "${SANWU_APPLICATIONS_PORT:-8004}" "${SANWU_CASES_PORT:-8005}" "${SANWU_AUDIT_PORT:-8006}" \
  "${SANWU_WEBHOOKS_PORT:-8007}" "${SANWU_CONSOLE_PORT:-8000}"; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

cat <<MSG

sanwu is running (PostgreSQL 127.0.0.1:25432, Kafka 127.0.0.1:29092)

  intake       http://127.0.0.1:${SANWU_INTAKE_PORT:-8001}/docs
  evaluation   http://127.0.0.1:${SANWU_EVALUATION_PORT:-8002}/docs
  reporting    http://127.0.0.1:${SANWU_REPORTING_PORT:-8003}/docs
  applications http://127.0.0.1:${SANWU_APPLICATIONS_PORT:-8004}/docs
  cases        http://127.0.0.1:${SANWU_CASES_PORT:-8005}/docs   (disputes of counted events, the working-day calendar)
  webhooks     http://127.0.0.1:${SANWU_WEBHOOKS_PORT:-8007}/docs   (subscriptions, signed deliveries: docs/webhooks.md)
  audit        http://127.0.0.1:${SANWU_AUDIT_PORT:-8006}/docs   (the Merkle log: $(curl -fs -H "Authorization: Bearer $reader_key" "http://127.0.0.1:${SANWU_AUDIT_PORT:-8006}/v1/log/checkpoint" || echo "no checkpoint yet"))

console (pages in Chinese; sign in with a key below): http://127.0.0.1:${SANWU_CONSOLE_PORT:-8000}/
  登记 (front desk)        the desk key
  总览, 可申报名单, 预警   the reader key, or a bureau key (county, city or province)
  申报 (applications)      the county bureau key applies, the city's reviews, the province's awards

demo desk key   (枞阳县 340722000000): $desk_key
demo reader key (枞阳县 340722000000): $reader_key
demo bureau keys (信访局), for applying for the title (docs/api.md: "Applications (port 8004)"):
  county   (枞阳县 340722000000): $county_bureau_key
  city     (铜陵市 340700000000): $city_bureau_key
  province (安徽省 340000000000): $province_bureau_key
demo handler key (枞阳县民政局, body 民政 of 340722000000), for the cases routed to it: $handler_key

try:
  curl -X POST http://127.0.0.1:8001/v1/events -H "Authorization: Bearer $desk_key" \\
    -H 'Content-Type: application/json' \\
    -d '{"event_id": "'\$(python3 -c 'import uuid; print(uuid.uuid4())')'", "type": "petition_visit",
         "unit_code": "340722100201", "occurred_at": "2018-06-03T09:30:00+08:00",
         "destination_level": "city", "headcount": 6}'

Ctrl-C stops the services.
MSG
wait
