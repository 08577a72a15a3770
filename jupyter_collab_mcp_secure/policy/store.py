"""The baseline policy in a database, shared by many servers (`c.CollabMCP.policy_store`).

Rows live in Casbin's standard `casbin_rule` table (ptype, v0..v5), written through
casbin-async-sqlalchemy-adapter, so Casbin's own tools read the same store. A server
reads the rows in id order and renders them as canonical CSV text: that text is what
is validated and hashed, exactly as a file's bytes are.

Every server learns of a change within seconds: on PostgreSQL a statement trigger
NOTIFYs `CHANNEL` on any change to the table (whoever the writer), and each server
LISTENs; every other database is polled. A poll also runs on PostgreSQL, as the net
under a dropped notification connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# The `store` extra: imported only when policy_store is set (see config.py).
from casbin_async_sqlalchemy_adapter import Adapter
from casbin_async_sqlalchemy_adapter.adapter import CasbinRule
from sqlalchemy import select
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from .source import ERROR, Finding, PolicyError, PolicySnapshot, build_snapshot

CHANNEL = "collab_mcp_policy"
TABLE = "casbin_rule"
# Async drivers for the URLs admins usually write; any other async SQLAlchemy driver is taken as given.
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
_NOTIFY_DDL = (
    f"""CREATE OR REPLACE FUNCTION collab_mcp_policy_notify() RETURNS trigger AS $$
    BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$ LANGUAGE plpgsql""",
    f"DROP TRIGGER IF EXISTS collab_mcp_policy_changed ON {TABLE}",
    f"""CREATE TRIGGER collab_mcp_policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION collab_mcp_policy_notify()""",
)


def canonical_text(snapshot: PolicySnapshot) -> str:
    """The text a store holds for `snapshot`: rules then role links, as the adapter writes them."""
    return "".join(f"{line}\n" for line in (*snapshot.rules, *snapshot.links))


class PolicyStore:
    def __init__(self, url: str, log: logging.Logger | None = None) -> None:
        parsed = make_url(url)
        self.url = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
        self._log = log or logging.getLogger(__name__)
        self._engine: Any = None
        # The text of the last load, good or refused: only a different text is a change.
        self.loaded_text: str | None = None

    def describe(self) -> str:
        """The URL without its password: fit for logs and the audit trail."""
        return "store:" + self.url.render_as_string(hide_password=True)

    @property
    def notifies(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def _engine_here(self) -> Any:
        # An async engine belongs to the event loop that first used it.
        if self._engine is None:
            self._engine = create_async_engine(self.url)
        return self._engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def read_text(self) -> str:
        """The stored policy as canonical CSV text; raises PolicyError when it cannot be read."""
        try:
            async with self._engine_here().connect() as connection:
                rows = (await connection.execute(select(CasbinRule.__table__).order_by(CasbinRule.id))).all()
        except (SQLAlchemyError, OSError) as error:
            raise self._error(f"cannot read the policy store: {_first_line(error)}") from error
        lines = []
        for row in rows:
            values = [row.ptype, row.v0, row.v1, row.v2, row.v3, row.v4, row.v5]
            present = values[: values.index(None)] if None in values else values
            lines.append(", ".join(present) + "\n")
        return "".join(lines)

    async def load(self, model_path: str | Path) -> PolicySnapshot:
        text = self.loaded_text = await self.read_text()
        return await asyncio.to_thread(self.snapshot_of, Path(model_path), text)

    def load_now(self, model_path: str | Path) -> PolicySnapshot:
        """For startup, from synchronous code (a loop may be running): its own loop, engine and thread."""

        async def once() -> PolicySnapshot:
            try:
                return await self.load(model_path)
            finally:
                await self.close()

        return _run_in_thread(once())

    def snapshot_of(self, model_path: Path, text: str) -> PolicySnapshot:
        """The snapshot a server builds from the stored `text`, or PolicyError."""
        if not text.strip():
            raise self._error("the policy store holds no rules; push one with `jupyter collab-mcp policy push`")
        try:
            model_text = model_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise self._error(f"cannot read model {model_path}: {error}") from error
        return build_snapshot(model_text, text.encode("utf-8"), self.describe())

    def _error(self, message: str) -> PolicyError:
        return PolicyError(self.describe(), [Finding(ERROR, None, message)])

    async def push(self, snapshot: PolicySnapshot) -> str:
        """Replace the stored policy with `snapshot` in one transaction; returns the sha256 servers will log."""
        engine = self._engine_here()
        try:
            await Adapter(engine).create_table()
            if self.notifies:
                async with engine.begin() as connection:
                    for statement in _NOTIFY_DDL:
                        await connection.execute(sql(statement))
            async with AsyncSession(engine) as session, session.begin():
                await Adapter(engine, db_session=session).save_policy(snapshot.enforcer.model)
        except (SQLAlchemyError, OSError) as error:
            raise self._error(f"cannot write the policy store, nothing changed: {_first_line(error)}") from error
        return hashlib.sha256(canonical_text(snapshot).encode("utf-8")).hexdigest()

    async def changes(self, poll_interval: float) -> AsyncIterator[None]:
        """Yields each time the stored text differs from the text of the last load (good or refused)."""
        wake = asyncio.Event()
        listener = None
        try:
            while True:
                if self.notifies and (listener is None or listener[1].is_closed()):
                    if listener is not None:
                        await _close_quietly(listener[0])
                    listener = await self._listen(wake)
                try:
                    await asyncio.wait_for(wake.wait(), timeout=poll_interval)
                except asyncio.TimeoutError:
                    pass
                wake.clear()
                try:
                    current = await self.read_text()
                except PolicyError as error:
                    # An outage is not a policy change: the last good policy stays; the next tick retries.
                    self._log.warning("%s", error)
                    continue
                if current != self.loaded_text:
                    yield
        finally:
            if listener is not None:
                await _close_quietly(listener[0])

    async def _listen(self, wake: asyncio.Event) -> tuple[Any, Any] | None:
        """A connection LISTENing on CHANNEL and its asyncpg connection (None when it cannot be opened:
        the poll carries on and the next tick tries again)."""
        connection = None
        try:
            connection = await self._engine_here().connect()
            driver = (await connection.get_raw_connection()).driver_connection
            await driver.add_listener(CHANNEL, lambda *_: wake.set())
            # A lost connection wakes the loop at once, which opens a new one.
            driver.add_termination_listener(lambda *_: wake.set())
        except Exception as error:  # noqa: BLE001 - any failure to listen falls back to polling
            if connection is not None:
                await _close_quietly(connection)
            self._log.warning("cannot LISTEN on %s (%s); polling only", self.describe(), _first_line(error))
            return None
        # Changes between the last read and LISTEN would otherwise wait for the poll.
        wake.set()
        return connection, driver


async def _close_quietly(connection: Any) -> None:
    try:
        await connection.close()
    except Exception:  # noqa: BLE001 - a dead listener connection has nothing left to release
        pass


def _first_line(error: BaseException) -> str:
    # Driver messages can run to the SQL text; the first line names the problem.
    return (str(error).splitlines() or [type(error).__name__])[0]


def _run_in_thread(coroutine: Any) -> Any:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            result.append(error)

    thread = threading.Thread(target=run, name="collab-mcp-policy-store")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]
