#!/usr/bin/env bash
# Installs everything zenoload needs on a fresh Debian machine, idempotently:
# system packages (libczmq for the Go worker, Debian's Locust 2.12.1, docker-compose
# for validating the compose file, chromium for the browser test, wrk for benchmarks), the pinned Locust venv, and Go modules.
# Set ZENOLOAD_SKIP_APT=1 to skip the apt step (e.g. without root).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in libczmq-dev pkg-config python3-locust python3-venv docker-compose chromium wrk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ] && [ "${ZENOLOAD_SKIP_APT:-0}" != 1 ]; then
  echo "bootstrap: installing apt packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/locust ] || ! .venv/bin/locust --version 2>/dev/null | grep -q "2.47.0"; then
  echo "bootstrap: creating .venv with $(grep -v '^#' requirements.txt | xargs)"
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
fi

# playwright-core drives Debian's chromium in the browser test; it downloads no browser.
if [ ! -d e2e/browser/node_modules/playwright-core ]; then
  (cd e2e/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

go mod download
