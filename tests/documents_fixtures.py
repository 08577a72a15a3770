"""A server for the document, history and fork tests, and helpers to drive documents."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import populate
from harness import Collaborator, JupyterServer, start_server
from pycrdt import Text

_names = itertools.count()


def unique_name(stem: str, suffix: str = ".txt") -> str:
    return f"{stem}-{next(_names)}{suffix}"


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    workdir = tmp_path_factory.mktemp("documents")
    populate(workdir / "root")
    running = start_server(workdir)
    yield running
    running.stop()


def write_file(server: JupyterServer, name: str, content: str | bytes) -> str:
    target: Path = server.root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    return name


def join_fork(server: JupyterServer, fork_id: str) -> contextlib.AbstractAsyncContextManager[Collaborator]:
    """A websocket peer in a fork's room, as JupyterLab joins a fork."""
    return Collaborator.connect(server, fork_id)


def source_of(peer: Collaborator) -> str:
    return str(peer.doc.get("source", type=Text))


async def fork_holds(
    server: JupyterServer, fork_id: str, predicate: Callable[[Any], bool], attempts: int = 100
) -> None:
    """Wait until the server's copy of a fork satisfies `predicate` (a fresh peer syncs from it)."""
    for _ in range(attempts):
        async with join_fork(server, fork_id) as observer:
            if predicate(observer.doc):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the fork never reached the expected state")
