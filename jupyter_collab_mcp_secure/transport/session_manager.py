"""The SDK's StreamableHTTP session manager, kept running for the server's lifetime."""

from __future__ import annotations

import asyncio
import logging

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager


class ManagerRunner:
    """Owns the manager's `run()` context in one task, as anyio's task group requires.

    Until the context is entered the endpoint answers 503; `stop()` leaves it in
    the same task, which cancels every open session cleanly.
    """

    def __init__(self, manager: StreamableHTTPSessionManager, log: logging.Logger) -> None:
        self.manager = manager
        self.log = log
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._stop.is_set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="collab-mcp-session-manager")

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await self._stop.wait()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(self._task, timeout=10)
        except Exception:
            self.log.exception("MCP session manager did not stop cleanly")
        self._task = None
