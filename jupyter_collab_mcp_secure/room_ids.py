"""Room ids jupyter-collaboration gives its rooms, named by both the RTC layer and the server-wide policy."""

from __future__ import annotations

# The room every JupyterLab joins for presence; it holds no document.
GLOBAL_AWARENESS_ROOM = "JupyterLab:globalAwareness"
