"""A real redis-server on a random 127.0.0.1 port, started and stopped by the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import free_port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> bytes:
        request = b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"*%d\r\n" % len(words) + request)
            return conn.recv(65536)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_redis(workdir: Path) -> RedisServer:
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=open(workdir / "redis.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    server = RedisServer(port, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(workdir / 'redis.log').read_text()}")
        try:
            if server.command("PING").startswith(b"+PONG"):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("redis-server did not answer PING")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> RedisServer:
    """The module's redis-server, emptied for this test."""
    redis_server.command("FLUSHALL")
    return redis_server
