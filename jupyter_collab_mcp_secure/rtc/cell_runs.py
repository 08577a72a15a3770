"""Running a notebook cell for a call: the live cell, its kernel, the agent shown at the cell, the deadline.

The run is not a child of the call: a client that goes away cancels its call,
never the execution (nor its lease on the room), as when a person closes the tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..gateway.errors import INVALID_ARGUMENT, UNAVAILABLE, ToolFailure
from .adapter import NOTEBOOK
from .execution import INTERRUPT_GRACE, Execution, Executions
from .notebook import cell_identity, find_cell, kernelspec, require_version
from .notebook_edit import LiveCellOutputs
from .outputs import bound_outputs

if TYPE_CHECKING:
    from ..identity.principal import Principal
    from .adapter import RTCAdapter
    from .attribution import AttributionLog
    from .peers import AgentPeers

log = logging.getLogger(__name__)

# How often a long silent execution sends a progress notification.
HEARTBEAT_SECONDS = 5.0

Progress = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class RunRequest:
    """Which cell a call runs, for whom, and for how long the caller waits."""

    principal: Principal
    mcp_session_id: str | None
    tool: str
    path: str
    cell_id: str
    timeout: float
    expected_version: str | None


@dataclass
class CellRun:
    """How a run ended for the caller: finished (`execution`), or out of time (`timed_out` says why)."""

    path: str
    cell_id: str
    kernel_id: str
    outputs: list[dict[str, Any]]  # bounded for the model
    execution: Execution | None = None
    timed_out: str | None = None
    interrupted: bool = False


class CellRuns:
    def __init__(
        self,
        rtc: RTCAdapter,
        executions: Executions,
        peers: AgentPeers,
        attribution: AttributionLog,
        output_max_chars: int,
    ) -> None:
        self.rtc = rtc
        self.executions = executions
        self.peers = peers
        self.attribution = attribution
        self.cap = output_max_chars

    def start(self, request: RunRequest, progress: Progress) -> tuple[asyncio.Future[CellRun], asyncio.Task[None]]:
        """The answer (set at the end or at the deadline, whichever is first) and the run, which goes on after it."""
        answer: asyncio.Future[CellRun] = asyncio.get_running_loop().create_future()
        run = asyncio.create_task(self._run(request, progress, answer))
        run.add_done_callback(_log_failure)
        answer.add_done_callback(_consume)
        return answer, run

    async def _run(self, request: RunRequest, report: Progress, answer: asyncio.Future[CellRun]) -> None:
        principal, tool, path, cell_id = request.principal, request.tool, request.path, request.cell_id

        async def progress(count: int, message: str) -> None:
            if not answer.done():
                with contextlib.suppress(Exception):
                    await report(count, message)

        try:
            async with self.rtc.open(path, NOTEBOOK) as document:
                nb = document.doc
                started = time.time()
                _, ycell = find_cell(nb, cell_id)
                cell = cell_identity(ycell)
                if cell["cell_type"] != "code":
                    raise ToolFailure(
                        INVALID_ARGUMENT, f"cell '{cell_id}' is a {cell['cell_type']} cell; only code cells run"
                    )
                require_version(nb, cell, request.expected_version)
                kernel_id = await self.executions.kernel_for(document.path, (kernelspec(nb) or {}).get("name"))
                deadline = asyncio.get_running_loop().time() + request.timeout
                outputs = LiveCellOutputs(nb, cell_id)
                watch, execution = await self.executions.start(
                    kernel_id, cell["source"], outputs, progress, request.timeout
                )
                await self.peers.touch(principal, request.mcp_session_id, tool, document, cell_id=cell_id)
                await progress(0, "running")
                loop = asyncio.get_running_loop()
                while not watch.done():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        ended = await self._timed_out(document.path, cell_id, kernel_id, watch, execution, outputs)
                        answer.set_result(ended)
                        await asyncio.shield(watch)
                        break
                    # A cell that prints nothing for a while still tells the client it is alive.
                    if not (await asyncio.wait({watch}, timeout=min(remaining, HEARTBEAT_SECONDS)))[0]:
                        await progress(
                            len(outputs.outputs), f"running for {loop.time() - deadline + request.timeout:.0f} s"
                        )
                await self.attribution.record(file_id=document.file_id, started=started, principal=principal, tool=tool)
                if not answer.done():
                    answer.set_result(
                        CellRun(document.path, cell_id, kernel_id, self._bounded(outputs), execution=watch.result())
                    )
        except BaseException as error:
            if not answer.done():
                answer.set_exception(
                    error
                    if isinstance(error, ToolFailure)
                    else ToolFailure(UNAVAILABLE, f"the execution failed ({type(error).__name__})")
                )
            if not isinstance(error, (ToolFailure, asyncio.CancelledError)):
                raise

    async def _timed_out(
        self,
        path: str,
        cell_id: str,
        kernel_id: str,
        watch: asyncio.Task[Execution],
        execution: Execution,
        outputs: LiveCellOutputs,
    ) -> CellRun:
        """Interrupt a cell that ran out of time and describe what it did; a cell still queued is left alone."""
        if not execution.started:
            message = (
                "the kernel was busy with other work for the whole timeout; "
                "the cell is queued and will run when it is free"
            )
        else:
            await self.executions.interrupt(kernel_id)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(watch), INTERRUPT_GRACE)
            message = "the cell ran out of time and the kernel was interrupted"
            if not watch.done():
                message += "; it has not stopped yet (the kernel may need a restart)"
        return CellRun(
            path, cell_id, kernel_id, self._bounded(outputs), timed_out=message, interrupted=execution.started
        )

    def _bounded(self, outputs: LiveCellOutputs) -> list[dict[str, Any]]:
        return bound_outputs(outputs.outputs, self.cap)


def _consume(answer: asyncio.Future[Any]) -> None:
    # When the client went away nobody awaits the answer; retrieving it here keeps asyncio from warning.
    if not answer.cancelled():
        answer.exception()


def _log_failure(run: asyncio.Task[None]) -> None:
    if not run.cancelled() and run.exception() is not None:
        log.error("notebook execution failed", exc_info=run.exception())
