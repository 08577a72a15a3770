"""Real components for the tests: a Jupyter server subprocess, the official MCP client, a websocket collaborator."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nbformat
import websockets
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import Implementation
from pycrdt import (
    Awareness,
    Doc,
    YMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)

MODERN = "2026-07-28"
LEGACY = "legacy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path: Path, sources: list[str | tuple[str, str]], kernel: str = "python3") -> Path:
    """A notebook with cells given as code strings or (cell_type, source) pairs."""
    cells = []
    for item in sources:
        cell_type, source = item if isinstance(item, tuple) else ("code", item)
        cells.append(
            nbformat.v4.new_code_cell(source) if cell_type == "code" else nbformat.v4.new_markdown_cell(source)
        )
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@dataclass
class JupyterServer:
    workdir: Path
    root: Path
    port: int
    token: str
    base_url: str
    proc: subprocess.Popen[bytes]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def mcp_url(self) -> str:
        return self.url + "mcp"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.base_url}"

    @property
    def audit_log(self) -> Path:
        return Path(self.config["CollabMCP"]["audit_log"])

    def log_text(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"token {token or self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.headers())
        return httpx.request(method, self.url + path, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {key: dict(value) for key, value in base.items()}
    for section, values in extra.items():
        merged.setdefault(section, {}).update(values)
    return merged


def start_server(
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    base_url: str = "/",
    env: dict[str, str] | None = None,
    root: Path | None = None,
    token: str | None = None,
    port: int | None = None,
) -> JupyterServer:
    """Start `jupyter server` with the extension on 127.0.0.1 and wait until /mcp answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = root or workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    token = token or secrets.token_hex(16)
    port = port or free_port()
    full_config = _merge(
        {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": port,
                "port_retries": 0,
                "allow_root": True,
                "open_browser": False,
                "root_dir": str(root),
                "base_url": base_url,
            },
            "IdentityProvider": {"token": token},
            "CollabMCP": {
                "owner": "owner",
                "audit_log": str(workdir / "audit" / "audit.jsonl"),
                # Suites share servers; rate-limit tests set their own budgets.
                "rate_limits": {action: "100000/minute" for action in ("read", "write", "execute", "admin")},
            },
            "YDocExtension": {"document_save_delay": 0.2},
        },
        config or {},
    )
    config_path = workdir / "jupyter_server_config.json"
    config_path.write_text(json.dumps(full_config))
    process_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "IPYTHONDIR": str(workdir / "ipython"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    for name in ("JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL"):
        if env is None or name not in env:
            process_env.pop(name, None)
    log = open(workdir / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--config={config_path}"],
        cwd=workdir,
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = JupyterServer(workdir, root, port, token, base_url, proc, full_config)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited:\n{server.log_text()[-5000:]}")
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.post(server.mcp_url, headers=server.headers(), timeout=5, content=b"{}")
            if response.status_code not in (404, 503):
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"jupyter server did not get ready:\n{server.log_text()[-5000:]}")


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """A `WWW-Authenticate` challenge as (scheme, {param: value}); values are quoted strings without quotes inside."""
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'([a-z_]+)="([^"]*)"', rest))
    return scheme, params


async def audit_records(
    server: JupyterServer, predicate: Callable[[dict[str, Any]], bool], count: int, timeout: float = 10
) -> list[dict[str, Any]]:
    """The audit records matching `predicate`, once at least `count` are written (a writer thread writes them)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = server.audit_log.read_text().splitlines() if server.audit_log.exists() else []
        found = [record for record in map(json.loads, lines) if predicate(record)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def eventually(
    check: Callable[[], Any], accept: Callable[[Any], Any] = bool, timeout: float = 20, interval: float = 0.02
) -> Any:
    """The first result of `check` (sync or async) that `accept` takes, asking again every `interval` seconds.

    For what another process, thread or task makes true (a file saved, a record written, an update
    relayed); past `timeout` the test fails with the last result.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if accept(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last result: {result!r}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def mcp_client(
    server: JupyterServer,
    token: str | None = None,
    *,
    mode: str = MODERN,
    client_name: str = "test-agent",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Client]:
    """The official SDK client, authenticated with the server token unless told otherwise."""
    all_headers = {"Authorization": f"Bearer {token or server.token}", **(headers or {})}
    http = create_mcp_http_client(headers=all_headers)
    try:
        transport = streamable_http_client(server.mcp_url, http_client=http)
        async with Client(transport, mode=mode, client_info=Implementation(name=client_name, version="1.0")) as client:
            yield client
    finally:
        await http.aclose()


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {result.structured_content or result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail with a contract error; return the error object."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    assert result.structured_content is not None, result.content
    return result.structured_content["error"]


class AwarenessPeer:
    """A websocket peer with its own awareness state, as a JupyterLab tab has in every room it joins."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket
        self.doc = Doc()
        self.awareness = Awareness(self.doc)
        self.changed = asyncio.Event()

    async def set_awareness(self, state: dict[str, Any]) -> None:
        self.awareness.set_local_state(state)
        update = self.awareness.encode_awareness_update([self.awareness.client_id])
        await self.websocket.send(create_awareness_message(update))

    def receive_awareness(self, message: bytes) -> None:
        self.awareness.apply_awareness_update(read_message(message[1:]), "remote")
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        """Wait until `predicate()` holds on this peer's view."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"{type(self).__name__} did not observe the expected state in time")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.5))


class Collaborator(AwarenessPeer):
    """A second peer in a room, speaking the Yjs sync and awareness protocol over the room websocket.

    It stands in for a JupyterLab tab: edits made on `doc` reach the server, and
    everything the server or other peers do arrives here.
    """

    def __init__(self, websocket: Any, room_id: str) -> None:
        super().__init__(websocket)
        self.room_id = room_id
        self.synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._updates: asyncio.Queue[bytes] = asyncio.Queue()
        self.doc.observe(lambda event: self._updates.put_nowait(event.update))

    @classmethod
    @contextlib.asynccontextmanager
    async def join(
        cls, server: JupyterServer, path: str, kind: str = "notebook", token: str | None = None
    ) -> AsyncIterator[Collaborator]:
        """Open the document's collaboration session as JupyterLab does, then join its room."""
        file_format = "json" if kind == "notebook" else "text"
        session = server.api("PUT", f"api/collaboration/session/{path}", json={"format": file_format, "type": kind})
        session.raise_for_status()
        info = session.json()
        room_id = f"{file_format}:{kind}:{info['fileId']}"
        async with cls.connect(server, room_id, session_id=info["sessionId"], token=token) as peer:
            yield peer

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, server: JupyterServer, room_id: str, *, session_id: str | None = None, token: str | None = None
    ) -> AsyncIterator[Collaborator]:
        """Join a room by id (a fork's room has no session of its own) and sync with it."""
        query = f"?sessionId={session_id}" if session_id else ""
        url = f"{server.ws_url}api/collaboration/room/{room_id}{query}"
        async with websockets.connect(url, additional_headers=server.headers(token), max_size=None) as websocket:
            peer = cls(websocket, room_id)
            peer._tasks = [asyncio.create_task(peer._receive()), asyncio.create_task(peer._send_updates())]
            await websocket.send(create_sync_message(peer.doc))
            try:
                await asyncio.wait_for(peer.synced.wait(), 30)
                yield peer
            finally:
                for task in peer._tasks:
                    task.cancel()

    async def _receive(self) -> None:
        async for message in self.websocket:
            message = bytes(message)
            if message[0] == YMessageType.SYNC:
                reply = handle_sync_message(message[1:], self.doc)
                if message[1] == 1:  # sync step 2: we have the server's state
                    self.synced.set()
                if reply is not None:
                    await self.websocket.send(reply)
                self.changed.set()
            elif message[0] == YMessageType.AWARENESS:
                self.receive_awareness(message)

    async def _send_updates(self) -> None:
        while True:
            update = await self._updates.get()
            await self.websocket.send(create_update_message(update))
            self._updates.task_done()

    async def flush(self) -> None:
        """Return once every local edit so far is on the wire: what this peer sends next, the server handles after."""
        await self._updates.join()
