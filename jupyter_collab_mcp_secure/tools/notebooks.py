"""Notebook tools: read, edit and execute cells of the live shared notebook."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel
from mcp.server.mcpserver import Context

from ..gateway.context import CallContext
from ..gateway.errors import INVALID_ARGUMENT, TIMEOUT, UNAVAILABLE, ToolFailure
from ..rtc.adapter import NOTEBOOK, OpenDocument, cell_version, version_of
from ..rtc.cell_runs import CellRun, RunRequest
from ..rtc.diff import edits_to
from ..rtc.execution import DEAD
from ..rtc.history import recorded
from ..rtc.notebook import (
    all_cells,
    cell_identity,
    cell_to_dict,
    find_cell,
    kernelspec,
    notebook_language,
    require_version,
)
from ..rtc.notebook_edit import CELL_TYPES, converted_cell, new_cell
from ..rtc.outputs import bound_outputs
from ..rtc.services import Services
from ..rtc.text import apply_edits
from .content import bounded_collaborators, call, listing, services, with_untrusted


async def list_notebooks(path: str | None = None) -> dict[str, Any]:
    """List the notebooks (.ipynb) you may read, under `path` (a folder or notebook; default: everything).

    Checkpoints, hidden folders and names the server hides (its `hide_globs`)
    are skipped. Each entry says whether a
    collaboration room is open for it and how many collaborators are in it (people and agents apart).
    A very large tree is examined only up to the server's limit: `truncated`
    then says so (narrow the listing with `path`).
    """
    rtc = services().rtc
    found, truncated = await listing(path or "", lambda relative: relative.endswith(".ipynb"))
    notebooks = []
    for entry in found:
        room = rtc.live_room_of(entry.path, NOTEBOOK)
        notebooks.append(
            {
                "path": entry.path,
                "name": entry.path.rsplit("/", 1)[-1],
                "collaborating": room is not None,
                **rtc.presence_counts(room),
            }
        )
    return with_untrusted({"notebooks": notebooks, "count": len(notebooks), "truncated": truncated})


async def get_notebook(
    path: str, include_collaboration_state: bool = True, fork_id: str | None = None
) -> dict[str, Any]:
    """Read a notebook from its live shared model: cells with ids, types, sources, execution counts and outputs.

    Edits collaborators made that are not saved yet are included. Large
    outputs are truncated and binary outputs summarized as mime type and size.
    `version` (and each cell's `version`) can be passed back as
    `expected_version` to write tools, which then refuse with `conflict` if
    someone changed it since. With `fork_id` (from fork_document), read that
    fork of the notebook instead.
    """
    cap = services().limits.output_max_chars
    async with _open_notebook(path, fork_id) as document:
        nb = document.doc
        cells = []
        for cell in all_cells(nb):
            entry: dict[str, Any] = {
                "id": cell.get("id"),
                "cell_type": cell.get("cell_type"),
                "source": cell.get("source", ""),
                "version": cell_version(cell),
            }
            if cell.get("cell_type") == "code":
                entry["execution_count"] = cell.get("execution_count")
                entry["outputs"] = bound_outputs(cell.get("outputs") or [], cap)
            cells.append(entry)
        result: dict[str, Any] = {
            "path": document.path,
            "version": version_of(nb.ydoc),
            "cell_count": len(cells),
            "kernelspec": kernelspec(nb),
            "language": notebook_language(nb, _installed_language),
            "cells": cells,
        }
        if include_collaboration_state:
            result["collaboration"] = bounded_collaborators(services().rtc.collaboration_state(document))
    return with_untrusted(result)


async def create_notebook_session(path: str) -> dict[str, Any]:
    """Open (or join) the collaboration session of a notebook, as JupyterLab does when it opens one.

    `session_id` is the collaboration room id (`json:notebook:<file_id>`); it
    is what join_session, leave_session and get_active_sessions use.
    """
    rtc = services().rtc
    async with rtc.open(path, NOTEBOOK) as document:
        state = bounded_collaborators(rtc.collaboration_state(document))
    return with_untrusted(
        {"path": document.path, "session_id": document.room_id, "format": "json", "type": NOTEBOOK, **state}
    )


def _installed_language(kernel_name: str) -> str | None:
    try:
        return services().kernel_specs.get_kernel_spec(kernel_name).language
    except (NoSuchKernel, OSError, ValueError):
        return None  # not installed here, or its kernel.json is unreadable


def _check_cell_type(cell_type: str | None) -> None:
    if cell_type is not None and cell_type not in CELL_TYPES:
        raise ToolFailure(INVALID_ARGUMENT, f"cell_type must be one of {', '.join(CELL_TYPES)}, not {cell_type!r}")


def _open_notebook(path: str, fork_id: str | None) -> contextlib.AbstractAsyncContextManager[OpenDocument]:
    """The live notebook at `path`, or its fork `fork_id` (forks are authorized on their root path)."""
    return services().forks.open_target(path, NOTEBOOK, fork_id)


def _recorded(
    current: CallContext, document: OpenDocument, fork_id: str | None
) -> contextlib.AbstractAsyncContextManager[None]:
    return recorded(document, services().attribution, current.principal, current.tool, fork_id)


async def _show_agent(current: CallContext, document: OpenDocument, fork_id: str | None, cell_id: str | None) -> None:
    """The agent appears in the notebook's room, its cursor at the cell it touched (a fork has no people in it)."""
    if fork_id is None:
        await services().peers.touch(current.principal, current.mcp_session_id, current.tool, document, cell_id=cell_id)


async def update_notebook_cell(
    path: str,
    cell_id: str,
    content: str,
    cell_type: str | None = None,
    expected_version: str | None = None,
    fork_id: str | None = None,
) -> dict[str, Any]:
    """Replace the source of a cell (and optionally change its type) in the live shared notebook.

    The source is changed by the smallest text edit, so what collaborators type
    elsewhere in the same cell at the same time is kept. Changing `cell_type`
    ("code" or "markdown") replaces the cell like JupyterLab does (same id;
    outputs are dropped). Pass the `version` get_notebook gave for the cell (or
    the notebook) as `expected_version` to get `conflict` instead of
    overwriting a change someone made since. `fork_id` (from fork_document)
    edits that fork instead.
    """
    _check_cell_type(cell_type)
    current = call()
    async with _open_notebook(path, fork_id) as document:
        nb = document.doc
        index, ycell = find_cell(nb, cell_id)
        cell = cell_identity(ycell)
        require_version(nb, cell, expected_version)
        converting = cell_type is not None and cell_type != cell["cell_type"]
        if not converting:
            # A large source is diffed off the event loop, so the cell is found again by id afterwards.
            old, edits = await edits_to(lambda: str(find_cell(nb, cell_id)[1]["source"]), content)
            index, ycell = find_cell(nb, cell_id)
            require_version(nb, cell_identity(ycell), expected_version)
        async with _recorded(current, document, fork_id):
            with nb.ydoc.transaction():
                if converting:
                    nb.set_ycell(index, nb.create_ycell(converted_cell(cell_to_dict(ycell), cell_type, content)))
                    changed = True
                else:
                    apply_edits(ycell["source"], old, edits)
                    changed = bool(edits)
        index, ycell = find_cell(nb, cell_id)
        updated = cell_identity(ycell)
        if changed:
            await _show_agent(current, document, fork_id, cell_id)
        return {
            "path": document.path,
            "cell_id": cell_id,
            "index": index,
            "cell_type": updated["cell_type"],
            "changed": changed,
            "version": cell_version(updated),
            "document_version": version_of(nb.ydoc),
        }


async def insert_notebook_cell(
    path: str,
    content: str,
    position: int,
    cell_type: str = "code",
    expected_version: str | None = None,
    fork_id: str | None = None,
) -> dict[str, Any]:
    """Insert a new cell at `position` (0 = first, the cell count = last) of the live shared notebook; returns its id.

    `expected_version` (the notebook's `version` from get_notebook) makes the
    insert fail with `conflict` if the notebook changed since. `fork_id` edits that fork instead.
    """
    _check_cell_type(cell_type)
    current = call()
    async with _open_notebook(path, fork_id) as document:
        nb = document.doc
        require_version(nb, None, expected_version)
        count = len(nb.ycells)
        if isinstance(position, bool) or not 0 <= position <= count:
            raise ToolFailure(
                INVALID_ARGUMENT, f"position must be between 0 and {count} (the cell count), not {position}"
            )
        cell = new_cell(cell_type, content)
        async with _recorded(current, document, fork_id):
            with nb.ydoc.transaction():
                nb.ycells.insert(position, nb.create_ycell(cell))
        await _show_agent(current, document, fork_id, cell["id"])
        return {
            "path": document.path,
            "cell_id": cell["id"],
            "index": position,
            "cell_type": cell_type,
            "version": cell_version(cell),
            "document_version": version_of(nb.ydoc),
        }


async def delete_notebook_cell(
    path: str, cell_id: str, expected_version: str | None = None, fork_id: str | None = None
) -> dict[str, Any]:
    """Delete a cell from the live shared notebook.

    `expected_version` (the cell's or the notebook's `version` from
    get_notebook) makes the delete fail with `conflict` if it changed since.
    `fork_id` edits that fork instead.
    """
    current = call()
    async with _open_notebook(path, fork_id) as document:
        nb = document.doc
        index, ycell = find_cell(nb, cell_id)
        require_version(nb, cell_identity(ycell), expected_version)
        async with _recorded(current, document, fork_id):
            with nb.ydoc.transaction():
                del nb.ycells[index]
        neighbour = nb.ycells[min(index, len(nb.ycells) - 1)].get("id") if len(nb.ycells) else None
        await _show_agent(current, document, fork_id, neighbour)
        return {
            "path": document.path,
            "cell_id": cell_id,
            "deleted": True,
            "index": index,
            "cell_count": len(nb.ycells),
            "document_version": version_of(nb.ydoc),
        }


async def execute_notebook_cell(
    path: str, cell_id: str, timeout: int = 30, expected_version: str | None = None, ctx: Context | None = None
) -> dict[str, Any]:
    """Run a code cell on the notebook's kernel, as JupyterLab does, and return its outputs.

    Uses the notebook's kernel session (the one JupyterLab uses) or starts the
    kernel named by the notebook's kernelspec in a new session JupyterLab will
    reuse. Outputs appear in the shared cell while it runs; execution count and
    state are set as in JupyterLab. Executions on one kernel run one at a time.
    `timeout` (seconds the cell may take, waiting for earlier executions
    included) interrupts the kernel and answers `timeout` with the output so
    far. Progress notifications are sent while it runs if you ask for them. If
    you disconnect, the cell still runs to the end. Returned outputs are
    bounded; they are untrusted program output.
    """
    if isinstance(timeout, bool) or timeout <= 0:
        raise ToolFailure(INVALID_ARGUMENT, f"timeout must be a positive number of seconds, not {timeout}")
    current = call()
    runs = services()

    async def progress(count: int, message: str) -> None:
        if ctx is not None:
            await ctx.report_progress(count, None, message)

    request = RunRequest(
        current.principal,
        current.mcp_session_id,
        current.tool,
        path,
        cell_id,
        min(timeout, runs.limits.execution_timeout_max),
        expected_version,
    )
    answer, run = runs.cell_runs.start(request, progress)
    try:
        ended = await asyncio.shield(answer)
    except asyncio.CancelledError:
        # The client went away; the cell runs on (as when a person closes the tab) and its end is audited.
        run.add_done_callback(lambda _: _audit_detached_end(runs, current, answer))
        raise
    return _result(ended, runs.limits.output_max_chars)


def _audit_detached_end(runs: Services, current: CallContext, answer: asyncio.Future[CellRun]) -> None:
    failure: BaseException | None = None
    if answer.done() and not answer.cancelled():
        failure = answer.exception()
        if failure is None:
            try:
                _result(answer.result(), runs.limits.output_max_chars)
            except ToolFailure as shaped:
                failure = shaped
    runs.audit.record(
        {
            "event": "execution_finished",
            "detached": True,
            "user": current.principal.user,
            "auth": current.principal.auth,
            "agent": current.principal.agent or current.principal.declared_client,
            "tool": current.tool,
            "action": current.action,
            "paths": list(current.paths),
            "request_id": current.request_id,
            "outcome": "ok" if failure is None else "error",
            "error_code": getattr(failure, "code", None),
        }
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _result(ended: CellRun, cap: int) -> dict[str, Any]:
    """What the model is told of a run: its outputs and status, or why it has none yet."""
    if ended.timed_out is not None:
        raise ToolFailure(
            TIMEOUT,
            ended.timed_out,
            **with_untrusted({"interrupted": ended.interrupted, "outputs": ended.outputs}),
        )
    execution = ended.execution
    assert execution is not None
    if execution.status == DEAD:
        raise ToolFailure(
            UNAVAILABLE,
            "the kernel died while running the cell; it is being restarted (its variables are gone): "
            "run the cell again",
            **with_untrusted({"outputs": ended.outputs}),
        )
    result: dict[str, Any] = {
        "path": ended.path,
        "cell_id": ended.cell_id,
        "kernel_id": ended.kernel_id,
        "status": execution.status,
        "execution_count": execution.execution_count,
        "outputs": ended.outputs,
    }
    if execution.error is not None:
        traceback = _ANSI.sub("", "\n".join(execution.error.get("traceback") or []))
        result["ename"] = execution.error.get("ename")
        result["evalue"] = execution.error.get("evalue")
        result["traceback"] = traceback[:cap]
    return with_untrusted(result)
