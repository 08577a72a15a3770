#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    # The rate-limit tests share budgets through a real Redis that they start themselves.
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

# JupyterHub tests: configurable-http-proxy (npm) in a project-local prefix (.node/, gitignored).
if [ ! -x .node/node_modules/.bin/configurable-http-proxy ]; then
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
    fi
    npm install --silent --no-audit --no-fund --prefix .node configurable-http-proxy@5
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

# --dist loadgroup keeps the tests of one xdist_group (the one JupyterHub) on one worker.
exec .venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
