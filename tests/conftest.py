"""Shared fixtures: real Jupyter servers (subprocesses on 127.0.0.1) with the extension loaded.

`server` is one server for the whole session, owner-only default policy; tests
that need their own configuration use `server_factory`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import JupyterServer, start_server, write_notebook

# Fixture modules shared by several test modules (servers with JWT keys, document history, Redis).
pytest_plugins = ["jwt_support", "documents_fixtures", "ratelimit_fixtures", "hub_fixtures"]


def populate(root: Path) -> None:
    write_notebook(root / "notebooks" / "demo.ipynb", ["x = 21", "print(x * 2)", ("markdown", "# Notes")])
    (root / "notes.txt").write_text("first line\nsecond line\n")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    workdir = tmp_path_factory.mktemp("server")
    populate(workdir / "root")
    running = start_server(workdir)
    yield running
    running.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., JupyterServer]]:
    """Start servers with their own configuration; all are stopped after the test."""
    started: list[JupyterServer] = []

    def start(name: str = "custom", populate_root: bool = True, **kwargs: Any) -> JupyterServer:
        workdir = tmp_path / name
        if populate_root and "root" not in kwargs:
            populate(workdir / "root")
        running = start_server(workdir, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
