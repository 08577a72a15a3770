"""Running code cells on the notebook's own kernel, one execution at a time per kernel.

The kernel is the one of the notebook's kernel session (JupyterLab's, if a
person has the notebook open); without one, a session is created the way
JupyterLab creates it, so JupyterLab shows and reuses that kernel. Outputs are
written into the shared cell as they arrive (see LiveCellOutputs).

An execution is watched by its own task, which also holds the kernel's queue:
a caller that stops waiting (timeout, client gone) leaves it running to the end,
as when a person closes the tab, and the next execution waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import queue
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_core.utils import ensure_async
from tornado import web

from ..gateway.errors import INVALID_ARGUMENT, TIMEOUT, UNAVAILABLE, ToolFailure
from .notebook_edit import LiveCellOutputs

# A kernel that sends nothing is checked this often for having died or been restarted.
LIVENESS_INTERVAL = 0.5
# After an interrupt, the cell gets this long to report the interruption and finish.
INTERRUPT_GRACE = 5.0
# Starting a kernel (or a client's first handshake with it) fails after this long.
KERNEL_READY_TIMEOUT = 60.0
# A dead kernel is first left to jupyter_client's autorestarter (it polls every 3 s); after this, restarted here.
AUTORESTART_WAIT = 10.0

OK, ERROR, ABORTED, DEAD = "ok", "error", "aborted", "dead"

Progress = Callable[[int, str], Awaitable[None]]


@dataclass
class Execution:
    """How a cell's run ended (so far, for one still running)."""

    status: str | None = None  # ok, error (the code raised), aborted (the kernel skipped it), dead (kernel died)
    started: bool = False  # the kernel began this cell (not merely queued it behind other work)
    execution_count: int | None = None
    error: dict[str, Any] | None = None


@dataclass
class _Client:
    client: Any
    pid: Any


@dataclass(frozen=True)
class _Sent:
    """An execute request on its way: replies are matched to it, and to the kernel process that received it."""

    kernel_id: str
    client: Any
    msg_id: str
    pid: Any


class Executions:
    def __init__(self, serverapp: Any, log: logging.Logger) -> None:
        self.sessions = serverapp.session_manager
        self.kernels = serverapp.kernel_manager
        self.log = log
        self._clients: dict[str, _Client] = {}
        self._queues: dict[str, asyncio.Lock] = {}
        self._session_locks: dict[str, asyncio.Lock] = {}
        # Watches outlive the calls that started them; strong references keep them from being collected.
        self._watches: set[asyncio.Task[Execution]] = set()

    async def kernel_for(self, path: str, kernel_name: str | None) -> str:
        """The kernel id of the notebook's session, creating the session (and kernel) when there is none."""
        lock = self._session_locks.setdefault(path, asyncio.Lock())
        async with lock:
            with contextlib.suppress(web.HTTPError):
                session = await self.sessions.get_session(path=path)
                return session["kernel"]["id"]
            try:
                session = await asyncio.wait_for(
                    self.sessions.create_session(
                        path=path, name=posixpath.basename(path), type="notebook", kernel_name=kernel_name or None
                    ),
                    KERNEL_READY_TIMEOUT,
                )
            except NoSuchKernel as error:
                raise ToolFailure(
                    INVALID_ARGUMENT, f"the notebook's kernel '{kernel_name}' is not installed on this server"
                ) from error
            except (asyncio.TimeoutError, RuntimeError, OSError) as error:
                raise ToolFailure(UNAVAILABLE, f"could not start a kernel for '{path}': {error}") from error
            self.log.info("started kernel %s for notebook %s", session["kernel"]["id"], path)
            return session["kernel"]["id"]

    async def start(
        self, kernel_id: str, code: str, outputs: LiveCellOutputs, progress: Progress, queue_timeout: float
    ) -> tuple[asyncio.Task[Execution], Execution]:
        """Queue the code on the kernel; returns the task watching it and its live state.

        Raises `timeout` if earlier executions still hold the kernel after `queue_timeout`.
        """
        kernel_queue = self._queues.setdefault(kernel_id, asyncio.Lock())
        try:
            await asyncio.wait_for(kernel_queue.acquire(), queue_timeout)
        except asyncio.TimeoutError as error:
            raise ToolFailure(
                TIMEOUT, "earlier executions are still running on this kernel; the cell was not run"
            ) from error
        try:
            client = await self._ready_client(kernel_id)
            outputs.begin()
            msg_id = client.execute(code, allow_stdin=False, stop_on_error=True)
        except BaseException:
            kernel_queue.release()
            raise
        execution = Execution()
        watch = asyncio.create_task(self._watch(kernel_id, client, msg_id, outputs, progress, execution, kernel_queue))
        self._watches.add(watch)
        watch.add_done_callback(self._watches.discard)
        return watch, execution

    async def interrupt(self, kernel_id: str) -> None:
        with contextlib.suppress(KeyError, RuntimeError):
            await ensure_async(self.kernels.interrupt_kernel(kernel_id))

    async def close(self) -> None:
        """At shutdown: stop watching; the kernels themselves belong to the server's kernel manager."""
        for watch in list(self._watches):
            watch.cancel()
        for entry in self._clients.values():
            entry.client.stop_channels()
        self._clients.clear()

    async def _watch(
        self,
        kernel_id: str,
        client: Any,
        msg_id: str,
        outputs: LiveCellOutputs,
        progress: Progress,
        execution: Execution,
        kernel_queue: asyncio.Lock,
    ) -> Execution:
        try:
            sent = _Sent(kernel_id, client, msg_id, self._clients[kernel_id].pid)
            if await self._follow_iopub(sent, outputs, progress, execution):
                reply = await self._reply(sent, client.get_shell_msg)
                if reply is not None:
                    content = reply["content"]
                    execution.status = content.get("status", ERROR)
                    execution.execution_count = content.get("execution_count")
                    if execution.status == ERROR:
                        execution.error = {key: content.get(key) for key in ("ename", "evalue", "traceback")}
            if execution.status is None:
                execution.status = DEAD
                self._drop_client(kernel_id)
            return execution
        finally:
            outputs.finish(execution.execution_count)
            kernel_queue.release()

    async def _follow_iopub(
        self, sent: _Sent, outputs: LiveCellOutputs, progress: Progress, execution: Execution
    ) -> bool:
        """Write this execution's outputs into the cell until the kernel is idle again; False if the kernel died."""
        while True:
            msg = await self._reply(sent, sent.client.get_iopub_msg)
            if msg is None:
                return False
            kind = msg["header"]["msg_type"]
            if kind == "status":
                if msg["content"]["execution_state"] == "idle":
                    return True
                execution.started = True
            elif kind == "execute_input":
                execution.started = True
                execution.execution_count = msg["content"].get("execution_count")
            elif outputs.handle(msg):
                await progress(len(outputs.outputs), f"{kind} output")

    async def _reply(self, sent: _Sent, receive: Callable[..., Awaitable[Any]]) -> dict[str, Any] | None:
        """The next message on a channel answering this request; None once the kernel that got it is gone."""
        while True:
            try:
                msg = await receive(timeout=LIVENESS_INTERVAL)
            except queue.Empty:
                if not await self._same_kernel_alive(sent.kernel_id, sent.pid):
                    return None
                continue
            if msg["parent_header"].get("msg_id") == sent.msg_id:
                return msg

    async def _same_kernel_alive(self, kernel_id: str, pid: Any) -> bool:
        """False once the kernel died, was shut down, or was restarted (a restarted kernel forgot the request)."""
        try:
            kernel = self.kernels.get_kernel(kernel_id)
        except KeyError:
            return False
        return _pid(kernel) == pid and bool(await ensure_async(kernel.is_alive()))

    async def _ready_client(self, kernel_id: str) -> Any:
        kernel = await self._living_kernel(kernel_id)
        entry = self._clients.get(kernel_id)
        if entry is not None and entry.pid == _pid(kernel):
            return entry.client
        self._drop_client(kernel_id)
        client = kernel.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
        except RuntimeError as error:
            client.stop_channels()
            raise ToolFailure(UNAVAILABLE, f"the kernel does not answer: {error}") from error
        self._clients[kernel_id] = _Client(client, _pid(kernel))
        return client

    async def _living_kernel(self, kernel_id: str) -> Any:
        """The kernel, brought back first if it died since the last execution."""
        kernel = self._kernel(kernel_id)
        if await ensure_async(kernel.is_alive()):
            return kernel
        deadline = asyncio.get_running_loop().time() + AUTORESTART_WAIT
        while kernel.autorestart and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            kernel = self._kernel(kernel_id)
            if await ensure_async(kernel.is_alive()):
                return kernel
        self.log.warning("kernel %s is dead; restarting it", kernel_id)
        try:
            await ensure_async(self.kernels.restart_kernel(kernel_id, now=True))
        except Exception as error:
            raise ToolFailure(
                UNAVAILABLE, f"the notebook's kernel is dead and could not be restarted: {error}"
            ) from error
        return self._kernel(kernel_id)

    def _kernel(self, kernel_id: str) -> Any:
        try:
            return self.kernels.get_kernel(kernel_id)
        except KeyError as error:
            raise ToolFailure(
                UNAVAILABLE, "the notebook's kernel was shut down; run the cell again to start one"
            ) from error

    def _drop_client(self, kernel_id: str) -> None:
        entry = self._clients.pop(kernel_id, None)
        if entry is not None:
            entry.client.stop_channels()


def _pid(kernel: Any) -> Any:
    # A restart replaces the kernel process; the provisioner's pid tells the two apart.
    return getattr(kernel.provisioner, "pid", None)
