"""Who made which edit: the YStore keeps updates with timestamps but no author, so MCP edits record theirs here.

One row per edit call: the document (by file id, which survives renames), the
time span in which its updates were applied, and the principal. History
attributes YStore updates that fall inside a span to that span's principal.
Kept in SQLite outside the served root, so it survives restarts.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..identity.principal import Principal
from .private import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
    file_id TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    user TEXT NOT NULL,
    agent TEXT,
    tool TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS edits_by_file ON edits (file_id, started);
"""


@dataclass(frozen=True)
class AttributedEdit:
    file_id: str
    started: float
    finished: float
    user: str
    agent: str | None
    tool: str


class AttributionLog:
    def __init__(self, db_path: Path) -> None:
        private_file(db_path)
        # One short write per edit call; a lock keeps the shared connection safe across threads.
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._pending: dict[str, set[asyncio.Task[None]]] = {}

    def track(self, file_id: str, recording: asyncio.Task[None]) -> None:
        """A record still being made (it waits for the edit's updates to be stored); `settled` waits for it."""
        pending = self._pending.setdefault(file_id, set())
        pending.add(recording)
        recording.add_done_callback(pending.discard)

    async def settled(self, file_id: str) -> None:
        """Every edit made so far on the document has its record."""
        pending = self._pending.get(file_id)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def record(
        self, *, file_id: str, started: float, principal: Principal, tool: str, finished: float | None = None
    ) -> None:
        agent = principal.agent or principal.declared_client
        row = (file_id, started, finished if finished is not None else time.time(), principal.user, agent, tool)
        # An SQLite commit waits for the disk: on a worker thread, the event loop serves other calls meanwhile.
        await asyncio.to_thread(self._insert, row)

    def _insert(self, row: tuple[str, float, float, str, str | None, str]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO edits VALUES (?, ?, ?, ?, ?, ?)", row)

    async def edits(self, file_id: str) -> list[AttributedEdit]:
        return await asyncio.to_thread(self._select, file_id)

    def _select(self, file_id: str) -> list[AttributedEdit]:
        with self._lock:
            rows = self._db.execute(
                "SELECT file_id, started, finished, user, agent, tool FROM edits WHERE file_id = ? ORDER BY started",
                (file_id,),
            ).fetchall()
        return [AttributedEdit(*row) for row in rows]

    async def close(self) -> None:
        for pending in self._pending.values():
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()
