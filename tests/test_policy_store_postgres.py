"""One policy for many servers: two Jupyter servers share a real PostgreSQL store and learn of
every change by LISTEN/NOTIFY (their poll is set far beyond the test's waits)."""

from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import pytest
from harness import audit_records, free_port, mcp_client, start_server
from jwt_support import AUDIENCE, ISSUER, SECRET, token

from jupyter_collab_mcp_secure.cli.main import main

INITIAL = "p, role:owner, **, admin, allow\n"
GRANTED = "p, role:owner, **, admin, allow\np, group:readers, docs/**, read, allow\ng, bob, group:readers\n"
BROKEN_FILE = "p, role:owner, **, admin, allow\np, bob, **, fly, allow\n"
REVOKED = "p, role:owner, **, admin, allow\np, bob, docs/**, read, deny\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def postgres_binary(name: str) -> str:
    # Debian keeps the server binaries off PATH, under the major version.
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} is missing: scripts/run-tests.sh installs Debian's postgresql")
    return found[-1]


def as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url():
    base = Path(tempfile.mkdtemp(prefix="collab-mcp-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    subprocess.run(
        as_postgres([postgres_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    pg_ctl = postgres_binary("pg_ctl")
    subprocess.run(
        as_postgres(
            [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60"]
            + ["-o", f"-k {base} -h 127.0.0.1 -p {port} -F", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def push(workdir: Path, url: str, text: str) -> int:
    policy = workdir / f"push-{sha256(text)[:8]}.csv"
    policy.write_text(text)
    return main(["policy", "push", str(policy), "--store", url])


@pytest.fixture(scope="module")
def two_servers(postgres_url, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("store-pg")
    assert push(workdir, postgres_url, INITIAL) == 0
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "secret").write_bytes(SECRET + b"\n")
    servers = []
    try:
        for name in ("one", "two"):
            root = workdir / name / "root"
            (root / "docs").mkdir(parents=True)
            (root / "docs" / "a.txt").write_text("text\n")
            config = {
                "jwt_secret_file": str(keys / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
                "policy_store": postgres_url,
                # Far beyond every wait below: only a notification can bring a change in time.
                "policy_store_poll_interval": 3600,
            }
            servers.append(start_server(workdir / name, config={"CollabMCP": config}))
        yield servers
    finally:
        for server in servers:
            server.stop()


def store_reloads(outcome: str, sha: str | None = None):
    return lambda record: (
        record.get("event") == "policy_reload"
        and record.get("outcome") == outcome
        and record.get("source", "").startswith("store:postgresql")
        and (sha is None or record.get("policy_sha256") == sha)
    )


async def bob_reads(server) -> bool:
    """True when bob may read docs/a.txt, False when he is refused (any other outcome fails)."""
    async with mcp_client(server, token("HS256", sub="bob", azp=None)) as bob:
        result = await bob.call_tool("get_document", {"path": "docs/a.txt"})
    if result.is_error:
        assert result.structured_content["error"]["code"] == "forbidden", result.structured_content
        return False
    return result.structured_content["content"] == "text\n"


async def test_one_push_reaches_both_servers_and_a_broken_change_reaches_neither(two_servers, postgres_url, tmp_path):
    assert [await bob_reads(server) for server in two_servers] == [False, False]

    assert await asyncio.to_thread(push, tmp_path, postgres_url, GRANTED) == 0
    for server in two_servers:
        loaded = await audit_records(server, store_reloads("ok"), 1, timeout=15)
        assert [record["policy_sha256"] for record in loaded] == [sha256(GRANTED)]
    assert [await bob_reads(server) for server in two_servers] == [True, True]

    # `policy push` refuses a file that fails the check: the store is untouched.
    assert await asyncio.to_thread(push, tmp_path, postgres_url, BROKEN_FILE) == 3
    pulled = tmp_path / "pulled.csv"
    assert await asyncio.to_thread(main, ["policy", "pull", "--store", postgres_url, "-o", str(pulled)]) == 0
    assert pulled.read_text() == GRANTED

    # A row written straight into the table: the trigger notifies, both servers refuse it and keep GRANTED.
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', 'bob', '**', 'fly', 'allow')"
        )
    finally:
        await connection.close()
    for server in two_servers:
        refused = await audit_records(server, store_reloads("error"), 1, timeout=15)
        assert "unknown action 'fly'" in refused[0]["reason"]
        assert [record["policy_sha256"] for record in await audit_records(server, store_reloads("ok"), 1)] == [
            sha256(GRANTED)
        ]
    assert [await bob_reads(server) for server in two_servers] == [True, True]


async def listeners(url: str) -> set[int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN \"collab_mcp_policy\"'")
        return {row["pid"] for row in rows}
    finally:
        await connection.close()


async def test_a_server_whose_notification_connection_drops_listens_again(two_servers, postgres_url, tmp_path):
    before = await listeners(postgres_url)
    assert len(before) == 2
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(before))
    finally:
        await connection.close()
    for _ in range(200):
        after = await listeners(postgres_url)
        if len(after) == 2 and not after & before:
            break
        await asyncio.sleep(0.05)
    assert len(after) == 2 and not after & before

    assert await asyncio.to_thread(push, tmp_path, postgres_url, REVOKED) == 0
    for server in two_servers:
        assert len(await audit_records(server, store_reloads("ok", sha256(REVOKED)), 1, timeout=15)) == 1
    assert [await bob_reads(server) for server in two_servers] == [False, False]
