"""The collaboration YStore, kept outside the served root, that history reads and edits wait on.

Upstream's default SQLiteYStore writes `.jupyter_ystore.db` into the server's
working directory (under JupyterHub usually inside the served root, where any
user with file access can rewrite history). Its `db_path` can be configured, but
rooms created server-side by `get_document(create=True)` build their store
without the server config, so a configured path would only apply to rooms
opened by browsers. `CollabYStore` takes its location from the class instead
of the config, so both kinds of rooms share one database: `install_ystore`
binds it to the extension's state folder before jupyter_server_ydoc builds its
handlers (our extension loads first: extensions load alphabetically).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from jupyter_core.paths import jupyter_data_dir
from jupyter_server_ydoc.stores import SQLiteYStore
from traitlets import Unicode, default

from ..upstream import YStoreWriteHooks, room_updates_pending
from .private import private_file

STORE_FILE = "ystore.sqlite"
YDOC_EXTENSION = "jupyter_server_ydoc"


def default_store_path() -> Path:
    """Where the store lives when no extension bound it: inside the default `CollabMCP.state_dir`."""
    return Path(jupyter_data_dir()) / "collab_mcp_secure" / STORE_FILE


@dataclass(frozen=True)
class StoredSpan:
    """Bounds of the timestamp the store gave an update."""

    earliest: float
    latest: float


def _digest(update: bytes) -> bytes:
    return hashlib.blake2b(update, digest_size=16).digest()


class CollabYStore(YStoreWriteHooks):
    """SQLiteYStore whose database lies where the extension says, whatever config a room was built with."""

    # Set on the subclass `install_ystore` makes; None: the default state folder.
    location: ClassVar[str | None] = None

    # Not config=True on purpose: rooms built with and without the config must agree.
    db_path = Unicode(help="The SQLite database of Y updates (set by the extension, not by config).")

    @default("db_path")
    def _default_db_path(self) -> str:
        return str(private_file(Path(self.location) if self.location else default_store_path()))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaited: dict[bytes, list[asyncio.Future[StoredSpan]]] = {}
        self._locked_at: float | None = None
        self._stamped_at: float | None = None
        self.writing = 0

    @classmethod
    def database(cls) -> Path:
        return Path(cls.location) if cls.location else default_store_path()

    def expect(self, update: bytes) -> asyncio.Future[StoredSpan]:
        """A future for the time span holding the stored timestamp of `update`, once written."""
        future: asyncio.Future[StoredSpan] = asyncio.get_running_loop().create_future()
        self._awaited.setdefault(_digest(update), []).append(future)
        return future

    # Upstream's write() holds the store lock from write_locked() to the
    # INSERT, takes its timestamp in between and asks get_metadata() last:
    # these two bound the stored timestamp, and no other write of this
    # document's store can land inside them.
    def write_locked(self) -> None:
        self._locked_at, self._stamped_at = time.time(), None

    async def get_metadata(self) -> bytes:
        self._stamped_at = time.time()
        return await super().get_metadata()

    async def write(self, data: bytes) -> None:
        called = time.time()
        self.writing += 1
        try:
            await super().write(data)
        finally:
            self.writing -= 1
            # No await since the lock was released: the marks are still this write's.
            span = StoredSpan(self._locked_at or called, self._stamped_at or time.time())
            self._locked_at = self._stamped_at = None
            for future in self._awaited.pop(_digest(data), ()):
                if not future.done():
                    future.set_result(span)


def bound_store_class(db_path: Path, base: type[CollabYStore] = CollabYStore) -> type[CollabYStore]:
    return type(base.__name__, (base,), {"location": str(db_path), "__module__": base.__module__})


def install_ystore(serverapp: Any, db_path: Path, log: logging.Logger) -> type[CollabYStore] | None:
    """Make jupyter_server_ydoc store Y updates in `db_path`; call from CollabMCP.initialize_settings.

    Returns the store class in use, or None when history cannot be kept
    (collaboration absent, another store class configured, or the
    collaboration extension already initialized).
    """
    point = serverapp.extension_manager.extension_points.get(YDOC_EXTENSION)
    ydoc_app = point.app if point is not None else None
    if ydoc_app is None:
        log.warning("jupyter_server_ydoc is not enabled: no document history")
        return None
    configured = ydoc_app.ystore_class
    if not issubclass(configured, CollabYStore):
        if configured is not SQLiteYStore:
            log.warning(
                "YDocExtension.ystore_class is %s: document history needs %s.%s",
                configured.__qualname__,
                CollabYStore.__module__,
                CollabYStore.__qualname__,
            )
            return None
        configured = CollabYStore
    if hasattr(ydoc_app, "ywebsocket_server"):
        log.warning(
            "jupyter_server_ydoc initialized before this extension; set "
            "c.YDocExtension.ystore_class = '%s.%s' to keep history outside the served root",
            CollabYStore.__module__,
            CollabYStore.__qualname__,
        )
        return configured if issubclass(ydoc_app.ystore_class, CollabYStore) else None
    bound = bound_store_class(db_path, configured)
    ydoc_app.ystore_class = bound
    log.info("collaboration YStore: %s", db_path)
    return bound


def store_class_in_use(ydoc_extension: Any) -> type[CollabYStore] | None:
    store_class = getattr(ydoc_extension, "ystore_class", None)
    if isinstance(store_class, type) and issubclass(store_class, CollabYStore):
        return store_class
    return None


def store_key(kind: str, file_id: str) -> str:
    """The `path` column upstream rooms write a document's updates under."""
    return f".{kind}:{file_id}.y"


async def settled(room: Any, timeout: float = 2.0) -> None:
    """Wait until the updates a live room has applied are in its store, so history includes them.

    The room hands updates to the store through a memory stream and a task per
    write; both being empty twice in a row, one loop turn apart, means drained.
    """
    store = getattr(room, "ystore", None)
    if not isinstance(store, CollabYStore) or room_updates_pending(room) is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet_checks = 0
    while quiet_checks < 2 and loop.time() < deadline:
        busy = room_updates_pending(room) or store.writing
        quiet_checks = 0 if busy else quiet_checks + 1
        await asyncio.sleep(0.005)
