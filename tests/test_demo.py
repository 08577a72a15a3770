"""The demo as a new user runs it: a clear refusal when the port is taken, a stable private token, never on `ps`."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from harness import free_port

from jupyter_collab_mcp_secure.cli.demo import run, stored_token


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "COLLAB_MCP"))}
    for name in ("DATA", "CONFIG", "RUNTIME"):
        env[f"JUPYTER_{name}_DIR"] = str(tmp_path / name.lower())
    return {**env, "PYTHONUNBUFFERED": "1"}


def demo_command(port: int, folder: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter_collab_mcp_secure.cli.main",
        "demo",
        "--port",
        str(port),
        "--folder",
        str(folder),
    ]


def demo_args(port: int, folder: Path, token_file: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(port=port, folder=str(folder), token_file=str(token_file) if token_file else None)


def test_port_in_use_is_refused_before_any_credential(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "state" / "demo-token"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run(demo_args(port, tmp_path / "demo", token_file)) == 1
    printed = capsys.readouterr()
    assert f"Port {port} on 127.0.0.1 is already in use" in printed.err
    assert f"--port {port + 1}" in printed.err
    assert printed.out == ""
    assert not token_file.exists()


def test_token_is_kept_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "state" / "demo-token"
    token = stored_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_token(path) == token
    path.chmod(0o644)
    assert stored_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_file_inside_the_served_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "demo"
    assert run(demo_args(free_port(), folder, folder / "token")) == 1
    printed = capsys.readouterr()
    assert "must not be inside the served folder" in printed.err
    assert "Token" not in printed.out
    assert not (folder / "token").exists()


def test_demo_serves_mcp_with_the_stored_token_which_ps_never_shows(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with open(log, "w") as output:
        demo = subprocess.Popen(
            demo_command(port, tmp_path / "demo"), env=demo_env(tmp_path), stdout=output, stderr=subprocess.STDOUT
        )
    try:
        token_file = tmp_path / "data" / "collab_mcp_secure" / "demo-token"
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28"}
        status = None
        deadline = time.monotonic() + 90
        while status != 400 and time.monotonic() < deadline:
            assert demo.poll() is None, log.read_text()
            try:
                token = token_file.read_text()
                auth = {**headers, "Authorization": f"Bearer {token}"}
                # An empty body: 400 once the endpoint runs and accepts the token (401 would mean it does not).
                status = httpx.post(f"http://127.0.0.1:{port}/mcp", headers=auth, content=b"{}").status_code
            except (httpx.HTTPError, FileNotFoundError):
                time.sleep(0.3)
        assert status == 400, log.read_text()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        printed = log.read_text()
        assert f"Token        : {token}" in printed
        assert f"kill {demo.pid}" in printed
        # `ps` shows /proc/<pid>/cmdline to every local user; exec kept the printed process id.
        assert token not in Path(f"/proc/{demo.pid}/cmdline").read_bytes().decode()
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert token not in ps
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
