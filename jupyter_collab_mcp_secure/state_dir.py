"""The one folder this extension keeps its state in by default (history, attribution, moves, audit)."""

from __future__ import annotations

from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

STATE_DIR_NAME = "collab_mcp_secure"


def default_state_dir() -> Path:
    """`CollabMCP.state_dir` when unset: `<jupyter data dir>/collab_mcp_secure`."""
    return Path(jupyter_data_dir()) / STATE_DIR_NAME
