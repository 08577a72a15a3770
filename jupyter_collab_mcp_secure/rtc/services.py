"""The services tools work with, typed and built once by the extension: a tool reaches them in one step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

    from ..audit.trail import AuditTrail
    from .adapter import RTCAdapter
    from .attribution import AttributionLog
    from .cell_runs import CellRuns
    from .forks import ForkRegistry
    from .history_reader import HistoryReader
    from .peers import AgentPeers


@dataclass(frozen=True)
class Limits:
    """Bounds on what one call returns or waits for, from the extension's traits."""

    output_max_chars: int
    listing_max_entries: int
    document_read_max_chars: int
    execution_timeout_max: float


@dataclass(frozen=True)
class Services:
    root: Path
    rtc: RTCAdapter
    peers: AgentPeers
    forks: ForkRegistry
    cell_runs: CellRuns
    attribution: AttributionLog
    history: HistoryReader
    audit: AuditTrail
    kernel_specs: KernelSpecManager
    limits: Limits
