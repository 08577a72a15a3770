"""Where documents were before they moved, so history does not carry old content across a permission boundary.

History follows a document by file id, through renames. A document moved from
a folder the caller may not read into one they may write would otherwise let
them list and restore what it held before the move. The contents manager
reports every rename (of a file or a folder); they are kept here, outside the
served root, and history shows a version only to callers who may read the path
the document had when the version was made.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from jupyter_server.services.contents.manager import ContentsManager

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS moves (moved_at REAL NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS moves_by_time ON moves (moved_at);
"""


class MoveLog:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # Paths of private folders: readable by the server user only, like the audit log.
        db_path.touch(mode=0o600, exist_ok=True)
        os.chmod(db_path, 0o600)
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def listen(self, contents_manager: ContentsManager) -> None:
        event_logger = getattr(contents_manager, "event_logger", None)
        if event_logger is None:
            # A contents manager outside jupyter_server's hierarchy reports no renames: history cannot see moves.
            log.warning("%s emits no contents events: moves are not tracked in document history", contents_manager)
            return
        event_logger.add_listener(schema_id=ContentsManager.event_schema_id, listener=self._on_event)

    async def _on_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        if data.get("action") == "rename" and data.get("source_path") is not None:
            # A commit waits for the disk: on a worker thread, off the event loop.
            await asyncio.to_thread(self.record, str(data["source_path"]), str(data.get("path") or ""), time.time())

    def record(self, source: str, destination: str, moved_at: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO moves VALUES (?, ?, ?)", (moved_at, source.strip("/"), destination.strip("/"))
            )

    def former_paths(self, path: str) -> list[tuple[float, str]]:
        """(moved at, path before that move) for each move that brought the document at `path` here, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT moved_at, source, destination FROM moves ORDER BY moved_at DESC").fetchall()
        former = []
        current = path
        for moved_at, source, destination in rows:
            if current == destination or current.startswith(destination + "/"):
                current = source + current[len(destination) :]
                former.append((moved_at, current))
        return former

    def close(self) -> None:
        with self._lock:
            self._db.close()
