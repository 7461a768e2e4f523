#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and run sanwu: uv (Python packaging), the
# PostgreSQL server binaries, Java 17+ and Maven (to fetch and run Kafka), and a CJK font (for
# the application materials' PDF), Chromium (the console's browser tests) and Node.js with npm
# (axe-core, the console's accessibility check). Quiet when all is there.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# The application materials (PDF) are set in Noto Sans CJK.
ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
# The console's tests drive Debian's headless Chromium (Playwright never downloads a browser).
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# axe-core, which the accessibility tests inject into every console page, comes from npm.
command -v npm >/dev/null || missing+=(nodejs npm)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  echo "[install] apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  echo "[install] pip install uv" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

# The accessibility tests' axe-core, at the version tests/support/axe/package-lock.json pins.
axe="$(dirname "$0")/../tests/support/axe"
if [ ! -f "$axe/node_modules/axe-core/axe.min.js" ]; then
  echo "[install] npm ci --prefix tests/support/axe" >&2
  npm ci --prefix "$axe" --ignore-scripts --no-audit --no-fund --silent
fi
