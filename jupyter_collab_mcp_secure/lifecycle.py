"""Stopping promptly and cleanly under a process manager (JupyterHub's spawners, Kubernetes, systemd).

JupyterHub's LocalProcessSpawner stops a server with SIGINT, then SIGTERM, then SIGKILL.
Jupyter Server handles SIGINT only with a terminal attached (it asks for confirmation);
without one, SIGINT raises KeyboardInterrupt out of the event loop, so no extension's
shutdown runs. And AnyIO's worker threads (used by the MCP SDK and the YStore) are
not daemon threads and stop only when the loop's root task ends, which never
happens under tornado's IOLoop: the interpreter then waits for them at exit forever.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
from typing import Any


def stop_on_sigint(serverapp: Any, log: logging.Logger) -> None:
    """Make SIGINT stop the server as SIGTERM does (extensions' shutdown included); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # an interactive confirmation handler or JupyterHub's own is in place

    def handle(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        serverapp._signal_stop(signum, frame)

    signal.signal(signal.SIGINT, handle)
    log.debug("SIGINT stops the server like SIGTERM")


def release_worker_threads_at_exit() -> None:
    """At interpreter exit, before non-daemon threads are joined, tell idle AnyIO workers to end."""
    # threading._register_atexit runs before the join of non-daemon threads (as concurrent.futures uses it).
    threading._register_atexit(_stop_anyio_workers)  # type: ignore[attr-defined]


def _stop_anyio_workers() -> None:
    try:
        from anyio._backends._asyncio import WorkerThread
    except ImportError:
        return
    for thread in threading.enumerate():
        if isinstance(thread, WorkerThread) and thread.is_alive():
            with contextlib.suppress(queue.Full):
                thread.stop()
