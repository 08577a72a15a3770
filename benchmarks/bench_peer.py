"""This project beside datalayer's jupyter-mcp-server 2.2.4 (the most used Jupyter MCP server), in one run.

Both run as Jupyter server extensions on 127.0.0.1 with the same notebooks (50 and 1,000 cells), a live
collaboration room for each (a y-websocket collaborator connected to it, as a JupyterLab tab would be) and a
kernel session for the 50-cell one (as JupyterLab starts). The same official MCP client (this repo's SDK 2.3)
talks to both in the 2025-11-25 handshake era. Operations run in interleaved batches (which side goes first
alternates) so that the machine's load drifts hit both sides alike:

- get_notebook, 50 and 1,000 cells (the peer: use_notebook once, then read_notebook detailed, no limit)
- insert a cell + delete it (one sample is both calls); the collaborator must receive each inserted cell, and
  the script reports how many arrived before the call's response (lag > 0: after it)
- execute `1+1` on the notebook's kernel

It prints p50 (p95) per side and their ratios (this project / the peer: below 1 is faster), server CPU per call
(from /proc/<pid>/stat, the server process only, not the kernel), client CPU per call, and server RSS.

The peer is installed in its own venv (benchmarks/.peer-venv, its pins differ from ours) on first use.

    .venv/bin/python benchmarks/bench_peer.py [--calls 20] [--batches 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from jupyter_ydoc import YNotebook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from benchlib import LabCollaborator, cpu_seconds, percentiles, rss_mb  # noqa: E402
from harness import (  # noqa: E402
    LEGACY,
    Collaborator,
    JupyterServer,
    call,
    free_port,
    mcp_client,
    start_server,
    write_notebook,
)

PEER_VERSION = "2.2.4"
PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
SIZES = (50, 1000)
# Same for both servers: the collaboration save delay at its default, and no INFO logging (the peer's MCP SDK
# installs an INFO handler on the root logger unless the root logger already has one).
COMMON_CONFIG: dict[str, Any] = {
    "ServerApp": {"logging_config": {"root": {"level": "WARNING", "handlers": ["console"]}}},
    "YDocExtension": {"document_save_delay": 1.0},
}
OPERATIONS = ("get_notebook 50 cells", "get_notebook 1000 cells", "insert + delete a cell", "execute 1+1")


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    version = "import importlib.metadata as m; print(m.version('jupyter-mcp-server'))"
    if python.exists():
        found = subprocess.run([python, "-c", version], capture_output=True, text=True).stdout.strip()
        if found == PEER_VERSION:
            return python
    print(f"installing jupyter-mcp-server=={PEER_VERSION} into {PEER_VENV} (a few minutes) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"jupyter-mcp-server=={PEER_VERSION}"], check=True)
    return python


def start_peer(workdir: Path, python: Path) -> JupyterServer:
    """The peer's Jupyter server from its own venv, configured as tests/harness.py configures ours."""
    root = workdir / "root"
    token, port = uuid.uuid4().hex, free_port()
    config = {
        "ServerApp": {
            "ip": "127.0.0.1",
            "port": port,
            "port_retries": 0,
            "allow_root": True,
            "open_browser": False,
            "root_dir": str(root),
            **COMMON_CONFIG["ServerApp"],
        },
        "IdentityProvider": {"token": token},
        "YDocExtension": COMMON_CONFIG["YDocExtension"],
        # No notebook enrolled at start: the benchmark connects its notebooks with use_notebook.
        "JupyterMCPServerExtensionApp": {"document_id": ""},
    }
    config_path = workdir / "jupyter_server_config.json"
    config_path.write_text(json.dumps(config))
    # Nothing of this repo's venv may leak into the peer's interpreter.
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for name in ("CONFIG", "DATA", "RUNTIME"):
        env[f"JUPYTER_{name}_DIR"] = str(workdir / name.lower())
    env["IPYTHONDIR"] = str(workdir / "ipython")
    with open(workdir / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [str(python), "-m", "jupyter_server", f"--config={config_path}"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = JupyterServer(workdir, root, port, token, "/", proc, config)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the peer's server exited:\n{server.log_text()[-5000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "api/status", headers=server.headers(), timeout=5).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the peer's server did not get ready:\n{server.log_text()[-5000:]}")


class InsertWatch:
    """Follows the collaborator of the 50-cell notebook and notes when a cell with a given source arrives."""

    def __init__(self, collaborator: Collaborator) -> None:
        self.collaborator = collaborator
        self.marker: str | None = None
        self.seen_at = 0.0
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._follow())

    def expect(self, marker: str) -> None:
        self.marker, self.seen_at = marker, 0.0
        self.arrived.clear()

    async def lag_after(self, returned: float) -> float:
        """Milliseconds from the response to the cell's arrival at the collaborator (<= 0: it came first)."""
        await asyncio.wait_for(self.arrived.wait(), 30)
        return (self.seen_at - returned) * 1000

    def cell_count(self) -> int:
        return len(YNotebook(self.collaborator.doc).ycells)

    async def _follow(self) -> None:
        while True:
            await self.collaborator.changed.wait()
            self.collaborator.changed.clear()
            now = time.perf_counter()
            if self.marker and not self.arrived.is_set():
                if any(str(cell["source"]) == self.marker for cell in YNotebook(self.collaborator.doc).ycells):
                    self.seen_at = now
                    self.arrived.set()


class Side(ABC):
    """One server under test: how each operation is called on it, and the figures collected for it."""

    def __init__(self, name: str, server: JupyterServer, client: Any, watch: InsertWatch, cell_id: str) -> None:
        self.name, self.server, self.client, self.watch, self.cell_id = name, server, client, watch, cell_id
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.server_cpu: dict[str, float] = defaultdict(float)
        self.client_cpu: dict[str, float] = defaultdict(float)
        self.lags: list[float] = []

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(name, arguments)
        if result.is_error:
            raise RuntimeError(f"{self.name}: {name} failed: {result.content}")
        return result.structured_content or {}

    @abstractmethod
    async def read(self, cells: int) -> None:
        """Read the notebook of that many cells, checking every cell came back."""

    @abstractmethod
    async def insert(self, marker: str) -> Any:
        """Insert a code cell with this source at the top of the 50-cell notebook; returns what delete needs."""

    @abstractmethod
    async def delete(self, handle: Any) -> None:
        """Delete the cell insert made."""

    @abstractmethod
    async def execute(self) -> None:
        """Run `1+1` in the first cell, checking the output is 2."""

    async def pair(self) -> float:
        """Insert and delete one cell; returns the time of both calls (the collaborator check is not timed)."""
        marker = f"z = '{uuid.uuid4().hex}'"
        self.watch.expect(marker)
        started = time.perf_counter()
        handle = await self.insert(marker)
        returned = time.perf_counter()
        self.lags.append(await self.watch.lag_after(returned))
        resumed = time.perf_counter()
        await self.delete(handle)
        return (returned - started) + (time.perf_counter() - resumed)


class Ours(Side):
    async def read(self, cells: int) -> None:
        result = await call(self.client, "get_notebook", path=f"nb{cells}.ipynb")
        if result["cell_count"] != cells:
            raise RuntimeError(f"ours: get_notebook read {result['cell_count']} cells, not {cells}")

    async def insert(self, marker: str) -> str:
        return (await call(self.client, "insert_notebook_cell", path="nb50.ipynb", content=marker, position=0))[
            "cell_id"
        ]

    async def delete(self, handle: str) -> None:
        await call(self.client, "delete_notebook_cell", path="nb50.ipynb", cell_id=handle)

    async def execute(self) -> None:
        result = await call(self.client, "execute_notebook_cell", path="nb50.ipynb", cell_id=self.cell_id)
        if result["outputs"][0]["data"] != {"text/plain": "2"}:
            raise RuntimeError(f"ours: 1+1 gave {result['outputs']}")


class Peer(Side):
    async def read(self, cells: int) -> None:
        result = await self.tool("read_notebook", notebook_name=f"nb{cells}", response_format="detailed", limit=0)
        if result["result"].count("=====Cell ") != cells:
            raise RuntimeError(f"peer: read_notebook did not return {cells} cells")

    async def insert(self, marker: str) -> None:
        await self.tool("insert_cell", cell_index=0, cell_type="code", cell_source=marker, notebook_name="nb50")

    async def delete(self, handle: None) -> None:
        # The peer's insert answers no cell id; its cell is the one at the index it was inserted at.
        await self.tool("delete_cell", cell_indices=[0], notebook_name="nb50")

    async def execute(self) -> None:
        result = await self.tool("execute_cell", cell_id=self.cell_id, timeout=30)
        if result.get("outputs") != ["2"]:
            raise RuntimeError(f"peer: 1+1 gave {result}")


def operation(side: Side, name: str) -> Callable[[], Awaitable[float | None]]:
    return {
        OPERATIONS[0]: lambda: side.read(50),
        OPERATIONS[1]: lambda: side.read(1000),
        OPERATIONS[2]: side.pair,
        OPERATIONS[3]: side.execute,
    }[name]


async def run_batch(side: Side, name: str, calls: int) -> None:
    action = operation(side, name)
    pid = side.server.proc.pid
    server_before, client_before = cpu_seconds(pid), time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        timed = await action()
        side.samples[name].append((timed if timed is not None else time.perf_counter() - started) * 1000)
    side.server_cpu[name] += cpu_seconds(pid) - server_before
    side.client_cpu[name] += time.process_time() - client_before


@contextlib.asynccontextmanager
async def side_for(kind: type[Side], server: JupyterServer, cell_id: str) -> AsyncIterator[Side]:
    """The side with its MCP session and a collaborator connected to each notebook for the whole run."""
    async with (
        LabCollaborator.join(server, "nb50.ipynb") as collab50,
        LabCollaborator.join(server, "nb1000.ipynb"),
        mcp_client(server, mode=LEGACY, client_name="bench-peer") as client,
    ):
        watch = InsertWatch(collab50)
        side = kind(kind.__name__.lower(), server, client, watch, cell_id)
        try:
            if kind is Peer:
                for cells in (1000, 50):  # the last one used is the one execute_cell runs in
                    await side.tool("use_notebook", notebook_name=f"nb{cells}", notebook_path=f"nb{cells}.ipynb")
            yield side
        finally:
            watch.task.cancel()


def print_report(ours: Side, peer: Side, rss: dict[str, tuple[float, float]]) -> None:
    print(f"\n{'operation':<26} {'this project p50 (p95)':>24} {'peer p50 (p95)':>20} {'ratio p50 (p95)':>18}")
    for name in OPERATIONS:
        ours_p50, ours_p95 = percentiles(ours.samples[name])
        peer_p50, peer_p95 = percentiles(peer.samples[name])
        print(
            f"{name:<26} {f'{ours_p50:.1f} ({ours_p95:.1f}) ms':>24} {f'{peer_p50:.1f} ({peer_p95:.1f}) ms':>20}"
            f" {f'x{ours_p50 / peer_p50:.2f} (x{ours_p95 / peer_p95:.2f})':>18}"
        )
    for side in (ours, peer):
        before = sum(lag <= 0 for lag in side.lags)
        lag_p50, lag_p95 = percentiles(side.lags)
        print(
            f"inserted cell at the collaborator, {side.name}: {before}/{len(side.lags)} before the response;"
            f" arrival minus response p50 {lag_p50:.1f} ms, p95 {lag_p95:.1f} ms"
        )
    print(f"\n{'CPU ms per call (server / client)':<36} {'this project':>16} {'peer':>16}")
    for name in OPERATIONS:
        cells = []
        for side in (ours, peer):
            count = len(side.samples[name])
            cells.append(f"{side.server_cpu[name] * 1000 / count:.1f} / {side.client_cpu[name] * 1000 / count:.1f}")
        print(f"{name:<36} {cells[0]:>16} {cells[1]:>16}")
    print("server RSS (MiB, start -> end): " + ", ".join(f"{k} {a:.0f} -> {b:.0f}" for k, (a, b) in rss.items()))


async def run(calls: int, batches: int) -> None:
    python = ensure_peer_venv()
    workdir = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    sources = {cells: ["1+1"] + [f"x{i} = {i}\nprint(x{i})" for i in range(cells - 1)] for cells in SIZES}
    template = workdir / "template"
    for cells, cell_sources in sources.items():
        write_notebook(template / f"nb{cells}.ipynb", cell_sources)
    for name in ("ours", "peer"):
        shutil.copytree(template, workdir / name / "root")  # the same files, cell ids included
    cell_id = json.loads((template / "nb50.ipynb").read_text())["cells"][0]["id"]
    servers: list[JupyterServer] = []
    try:
        servers.append(start_server(workdir / "ours", config=COMMON_CONFIG))
        servers.append(start_peer(workdir / "peer", python))
        for server in servers:
            kernel = {"path": "nb50.ipynb", "type": "notebook", "name": "nb50.ipynb", "kernel": {"name": "python3"}}
            server.api("POST", "api/sessions", json=kernel).raise_for_status()
        async with side_for(Ours, servers[0], cell_id) as ours, side_for(Peer, servers[1], cell_id) as peer:
            rss = {side.name: (rss_mb(side.server.proc.pid), 0.0) for side in (ours, peer)}
            for side in (ours, peer):  # warm-up: kernel start, first room access, caches
                for name in OPERATIONS:
                    for _ in range(3):
                        await operation(side, name)()
                side.lags.clear()
            for batch in range(batches):
                order = (ours, peer) if batch % 2 == 0 else (peer, ours)
                for name in OPERATIONS:
                    for side in order:
                        await run_batch(side, name, calls)
                print(f"batch {batch + 1}/{batches} done", file=sys.stderr)
            for side in (ours, peer):
                rss[side.name] = (rss[side.name][0], rss_mb(side.server.proc.pid))
                if side.watch.cell_count() != 50:
                    raise RuntimeError(f"{side.name}: the collaborator holds {side.watch.cell_count()} cells, not 50")
            print_report(ours, peer, rss)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20, help="calls of each operation per side in a batch")
    parser.add_argument("--batches", type=int, default=5, help="interleaved batches")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.calls, arguments.batches))
