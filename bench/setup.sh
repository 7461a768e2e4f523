#!/usr/bin/env bash
# What `make bench` needs beyond the venv: wrk, the outside load generator of the outside-load
# stage (bench/outside_load.py), from Debian's packages. Quiet when it is there; says so and
# exits 1 when it cannot install it.
set -euo pipefail

command -v wrk >/dev/null && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "bench/setup.sh: wrk is missing (install it as root: apt-get install -y wrk)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "bench/setup.sh: wrk is missing and there is no apt-get to install it with" >&2
  exit 1
fi
echo "[install] apt-get install wrk" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }; then
  echo "bench/setup.sh: apt-get could not install wrk (see above)" >&2
  exit 1
fi
command -v wrk >/dev/null || {
  echo "bench/setup.sh: wrk installed but not on PATH ($PATH)" >&2
  exit 1
}
