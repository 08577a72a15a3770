#!/usr/bin/env bash
# Installs the extension with JupyterLab and starts it on a demo folder, printing the MCP URL and credentials.
# Options: --port N (default 8888), --folder DIR, --token-file FILE; COLLAB_MCP_DEMO_TOKEN gives the token.
# Stop it with Ctrl+C (or kill the process id it prints).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[demo]"

exec .venv/bin/jupyter-collab-mcp demo "$@"
