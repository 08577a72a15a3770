"""Helpers shared by the benchmarks that run real servers: percentiles, a process's CPU time and memory,
and a websocket collaborator that behaves like a JupyterLab tab.

Not a benchmark itself; import it after putting tests/ on sys.path (it builds on tests/harness.py). The
per-process figures come from /proc (Linux), so they count the server process only, not the kernels it starts.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from pathlib import Path
from typing import Any

from harness import Collaborator

_TICKS = os.sysconf("SC_CLK_TCK")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 (nearest rank) of a non-empty list."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (clock-tick resolution, usually 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    """Resident set size of the process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class LabCollaborator(Collaborator):
    """A websocket collaborator that sends only its own edits, as JupyterLab's provider does.

    The test harness's Collaborator also sends back every update it receives (pycrdt reports applied remote
    updates to `observe` as well); in a benchmark that would double the server's websocket traffic.
    """

    def __init__(self, websocket: Any, room_id: str) -> None:
        super().__init__(websocket, room_id)
        self.applying_remote = False
        self._updates = _OwnUpdates(self)
        apply_update = self.doc.apply_update

        def apply_remote(update: bytes) -> None:
            self.applying_remote = True
            try:
                apply_update(update)
            finally:
                self.applying_remote = False

        self.doc.apply_update = apply_remote  # what the sync protocol calls for everything the server sends


class _OwnUpdates(asyncio.Queue[bytes]):
    def __init__(self, peer: LabCollaborator) -> None:
        super().__init__()
        self._peer = peer

    def put_nowait(self, item: bytes) -> None:
        if not self._peer.applying_remote:
            super().put_nowait(item)
