"""Helpers for the audit tests: trails on temporary files, calls, and a sink whose disk can fail."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from jupyter_collab_mcp_secure.audit.hashchain import GENESIS, START_EVENT, seal
from jupyter_collab_mcp_secure.audit.sinks import FileSink
from jupyter_collab_mcp_secure.audit.trail import AuditTrail
from jupyter_collab_mcp_secure.gateway.context import CallContext
from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.registry import BY_NAME

ALICE = Principal(
    user="alice",
    auth="jwt",
    realm="https://issuer.example",
    groups=("staff",),
    agent="claude-code",
    declared_client="Claude Desktop",
)


def make_trail(directory: Path, *, sink: FileSink | None = None, **options: Any) -> AuditTrail:
    options.setdefault("retry_interval", 0.02)
    sink = sink or FileSink(directory / "audit.jsonl", rotate_bytes=0, fsync=False)
    return AuditTrail(sink, directory / "audit.digest-key", logging.getLogger("test-audit"), **options)


def make_call(tool: str = "update_notebook_cell", principal: Principal = ALICE, **fields: Any) -> CallContext:
    fields.setdefault("arguments", {"path": "notebooks/demo.ipynb", "cell_id": "c1", "content": "secret = 42"})
    # As the resolve stage leaves it for the stages after it.
    fields.setdefault("spec", BY_NAME.get(tool))
    return CallContext(principal=principal, tool=tool, request_id="req-1", **fields)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class FlakyDisk(FileSink):
    """A real audit file whose writes can be made to fail (as on a full disk) or to hang."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, rotate_bytes=0, fsync=False)
        self.full = False
        self.gate = threading.Event()
        self.gate.set()

    def open(self):
        if self.full:
            raise OSError(28, "No space left on device")
        return super().open()

    def write(self, line: str) -> None:
        self.gate.wait()
        if self.full:
            raise OSError(28, "No space left on device")
        super().write(line)


def write_chain(path: Path, entries: list[dict[str, Any]]) -> None:
    """An audit file as the trail writes it, but with chosen timestamps (the trail stamps `now`)."""
    head = GENESIS
    lines = []
    for entry in [{"event": START_EVENT, "ts": "2026-01-01T00:00:00Z", "reason": "new_chain"}, *entries]:
        head, line = seal(entry, head)
        lines.append(line + "\n")
    path.write_text("".join(lines))
