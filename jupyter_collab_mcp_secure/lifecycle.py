"""A server's life under a process manager (JupyterHub's spawners, Kubernetes, systemd, the idle culler).

Tool calls in flight keep the server's last activity recent (the hub's culler reads it),
and are ended (and so audited) when the server stops.

JupyterHub's LocalProcessSpawner stops a server with SIGINT, then SIGTERM, then SIGKILL.
Jupyter Server handles SIGINT only with a terminal attached (it asks for confirmation);
without one, SIGINT raises KeyboardInterrupt out of the event loop, so no extension's
shutdown runs. And AnyIO's worker threads (used by the MCP SDK and the YStore) are
not daemon threads and stop only when the loop's root task ends, which never
happens under tornado's IOLoop: the interpreter then waits for them at exit forever.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from .upstream import before_threads_join, stop_idle_anyio_workers, stop_server

T = TypeVar("T")


def freeze_startup_heap() -> None:
    """Leave what the server built at start (modules, grammars, schemas: most of its objects) out of full GCs.

    A long read allocates tens of thousands of short-lived objects, which trigger a full collection
    every few calls; walking the whole startup heap then held the event loop for up to 200 ms (the
    long tail of every call in flight). Those objects live as long as the process anyway.
    """
    gc.collect()
    gc.freeze()


def stop_on_sigint(serverapp: Any, log: logging.Logger) -> None:
    """Make SIGINT stop the server as SIGTERM does (extensions' shutdown included); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # an interactive confirmation handler or JupyterHub's own is in place

    def handle(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop_server(serverapp, signum, frame)

    signal.signal(signal.SIGINT, handle)
    log.debug("SIGINT stops the server like SIGTERM")


def release_worker_threads_at_exit() -> None:
    """At interpreter exit, before non-daemon threads are joined, tell idle AnyIO workers to end."""
    before_threads_join(stop_idle_anyio_workers)


class CallsInFlight:
    """Tool calls between admission and result: `api_last_activity` stays recent while any runs."""

    def __init__(self, settings: dict[str, Any], bump_interval: float) -> None:
        self.settings = settings
        self.bump_interval = bump_interval
        self.tasks: set[asyncio.Task[Any]] = set()
        self._bumper: asyncio.Task[None] | None = None

    def wrap(self, endpoint: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def tracked(*args: Any, **kwargs: Any) -> T:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                return await endpoint(*args, **kwargs)
            finally:
                self.tasks.discard(task)
                self.touch()

        return tracked

    def touch(self) -> None:
        self.settings["api_last_activity"] = datetime.now(timezone.utc)

    def start(self) -> None:
        if self.bump_interval > 0:
            self._bumper = asyncio.get_running_loop().create_task(self._bump(), name="collab-mcp-activity")

    async def _bump(self) -> None:
        while True:
            await asyncio.sleep(self.bump_interval)
            if self.tasks:
                self.touch()

    async def stop(self, grace: float = 2) -> None:
        """End the calls still running (the audit stage records each) before the trail closes."""
        if self._bumper is not None:
            self._bumper.cancel()
            self._bumper = None
        running = [task for task in self.tasks if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=grace)
