"""Helpers shared by the benchmarks that run real servers: percentiles, and a process's CPU time and memory.

Not a benchmark itself. The per-process figures come from /proc (Linux), so they
count the server process only, not the kernels it starts.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

# The benchmarks drive servers with the test harness (real server, official MCP client, websocket collaborator).
TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

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
