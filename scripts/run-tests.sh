#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=""
apt_install() {
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# Real services the tests start themselves: Redis (shared rate limits), Chromium (the audit report rendered),
# PostgreSQL (the shared policy store), Node.js and npm (MCP clients nobody here wrote; configurable-http-proxy
# for the real JupyterHub).
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
command -v chromium >/dev/null 2>&1 || apt_install chromium
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || apt_install nodejs npm
# PostgreSQL for the policy-store tests, which start their own server (initdb + pg_ctl in a temporary folder).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || apt_install postgresql

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    # Debian 12 ships Node 18; @modelcontextprotocol/client 2.3 needs 20. The npm package `node` brings one.
    npm install --no-audit --no-fund --loglevel=error --prefix tests/js/.node node@20
    export PATH="$PWD/tests/js/.node/node_modules/.bin:$PATH"
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
# configurable-http-proxy for the JupyterHub tests, in a project-local prefix (.node/, gitignored).
[ -x .node/node_modules/.bin/configurable-http-proxy ] ||
    npm install --silent --no-audit --no-fund --prefix .node configurable-http-proxy@5

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

# Lint first: a style slip fails fast, and pytest's summary stays the last line.
.venv/bin/python -m ruff check jupyter_collab_mcp_secure tests benchmarks
.venv/bin/python -m ruff format --check jupyter_collab_mcp_secure tests benchmarks

# --dist loadgroup keeps the tests of one xdist_group (the one JupyterHub) on one worker.
exec .venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
