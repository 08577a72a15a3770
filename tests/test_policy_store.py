"""The baseline policy in a SQLite store: `policy push|pull`, and a real server that polls the store."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3

import pytest
from harness import audit_records, call, call_error, eventually, mcp_client, start_server
from jwt_support import AUDIENCE, ISSUER, SECRET, token
from policy_fixtures import MODEL, RecordingAuditTrail, principal

from jupyter_collab_mcp_secure.cli.main import main
from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.source import PolicyError
from jupyter_collab_mcp_secure.policy.store import PolicyStore

# Canonical text (rules, then role links, ", " between fields): its sha256 is the one servers audit.
INITIAL = "p, role:owner, **, admin, allow\n"
GRANTED = "p, role:owner, **, admin, allow\np, group:readers, docs/**, read, allow\ng, bob, group:readers\n"
BROKEN_FILE = "p, role:owner, **, admin, allow\np, bob, **, fly, allow\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def as_bob() -> str:
    return token("HS256", sub="bob", azp=None)


def jwt_config(workdir) -> dict:
    keys = workdir / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "secret").write_bytes(SECRET + b"\n")
    return {
        "jwt_secret_file": str(keys / "secret"),
        "jwt_algorithms": ["HS256"],
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
    }


def push(tmp_path, url: str, text: str) -> int:
    policy = tmp_path / f"push-{sha256(text)[:8]}.csv"
    policy.write_text("# an admin's comment, not kept by the store\n" + text)
    return main(["policy", "push", str(policy), "--store", url])


def test_push_then_pull_round_trips_canonical_text(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    assert push(tmp_path, url, GRANTED) == 0
    assert f"sha256 {sha256(GRANTED)}" in capsys.readouterr().out
    out = tmp_path / "pulled.csv"
    assert main(["policy", "pull", "--store", url, "-o", str(out)]) == 0
    assert out.read_text() == GRANTED


def test_push_refuses_a_file_that_fails_check(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    assert push(tmp_path, url, INITIAL) == 0
    assert push(tmp_path, url, BROKEN_FILE) == 3
    assert "not pushed" in capsys.readouterr().err
    assert main(["policy", "pull", "--store", url]) == 0
    assert capsys.readouterr().out == INITIAL


def test_pull_from_a_store_never_pushed_says_so(tmp_path, capsys):
    assert main(["policy", "pull", "--store", f"sqlite:///{tmp_path / 'empty.db'}"]) == 4
    assert "cannot read the policy store" in capsys.readouterr().err


def test_the_store_url_in_logs_and_audit_carries_no_password():
    described = PolicyStore("postgresql://hub:s3cret@db.example/policy").describe()
    assert "s3cret" not in described and described.startswith("store:postgresql+asyncpg://hub:")


def test_a_server_refuses_to_start_on_an_empty_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    assert push(tmp_path, url, INITIAL) == 0
    with sqlite3.connect(tmp_path / "policy.db") as connection:
        connection.execute("DELETE FROM casbin_rule")
    with pytest.raises(PolicyError, match="holds no rules"):
        PolicyEngine(MODEL, tmp_path / "unused.csv", store=PolicyStore(url))


async def test_an_emptied_store_keeps_the_last_good_policy(tmp_path):
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    assert await asyncio.to_thread(push, tmp_path, url, GRANTED) == 0
    trail = RecordingAuditTrail()
    engine = PolicyEngine(MODEL, tmp_path / "unused.csv", trail, store=PolicyStore(url), store_poll_interval=0.05)
    bob = principal("bob")
    assert engine.allowed(bob, "read", "docs/a.txt") and engine.snapshot.sha256 == sha256(GRANTED)
    await engine.start()
    try:
        with sqlite3.connect(tmp_path / "policy.db") as connection:
            connection.execute("DELETE FROM casbin_rule")
        await eventually(lambda: trail.reloads)
    finally:
        await engine.stop()
    assert [(r["ok"], r["sha256"]) for r in trail.reloads] == [(False, None)]
    assert "holds no rules" in trail.reloads[0]["reason"]
    assert engine.allowed(bob, "read", "docs/a.txt") and engine.snapshot.sha256 == sha256(GRANTED)


@pytest.fixture(scope="module")
def sqlite_store_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("store-sqlite")
    database = workdir / "policy.db"
    url = f"sqlite:///{database}"
    assert push(workdir, url, INITIAL) == 0
    (workdir / "root" / "docs").mkdir(parents=True)
    (workdir / "root" / "docs" / "a.txt").write_text("text\n")
    (workdir / "unused.csv").write_text("p, bob, **, read, allow\n")
    # The owner's own layer still applies on top of a baseline that comes from the store.
    (workdir / "owner.csv").write_text("p, carol, docs/**, read, allow\n")
    running = start_server(
        workdir,
        config={
            "CollabMCP": {
                **jwt_config(workdir),
                "policy_store": url,
                "policy_store_poll_interval": 0.2,
                # The file is not the baseline when a store is set: it would let bob read everything.
                "policy_file": str(workdir / "unused.csv"),
                "owner_policy_file": str(workdir / "owner.csv"),
            }
        },
    )
    running.url_of_store = url
    running.database = database
    yield running
    running.stop()


def reloads(server, outcome: str):
    return lambda record: (
        record.get("event") == "policy_reload"
        and record.get("outcome") == outcome
        and record.get("source", "").startswith("store:sqlite")
    )


async def carol_reads(server) -> bool:
    async with mcp_client(server, token("HS256", sub="carol", azp=None)) as carol:
        return (await call(carol, "get_document", path="docs/a.txt"))["content"] == "text\n"


async def test_a_push_reaches_a_polling_server_and_a_broken_row_keeps_the_last_good(sqlite_store_server, tmp_path):
    server = sqlite_store_server
    async with mcp_client(server, as_bob()) as bob:
        assert (await call_error(bob, "get_document", path="docs/a.txt"))["code"] == "forbidden"
    assert await carol_reads(server)

    assert await asyncio.to_thread(push, tmp_path, server.url_of_store, GRANTED) == 0
    loaded = await audit_records(server, reloads(server, "ok"), 1, timeout=20)
    assert [record["policy_sha256"] for record in loaded] == [sha256(GRANTED)]
    async with mcp_client(server, as_bob()) as bob:
        assert "text" in (await call(bob, "get_document", path="docs/a.txt"))["content"]
    assert await carol_reads(server)

    # A row written around `policy push` (no check): the server refuses it and says so.
    with sqlite3.connect(server.database) as connection:
        connection.execute("INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', 'bob', '**', 'fly', 'allow')")
    refused = await audit_records(server, reloads(server, "error"), 1, timeout=20)
    assert "unknown action 'fly'" in refused[0]["reason"]
    async with mcp_client(server, as_bob()) as bob:
        assert "text" in (await call(bob, "get_document", path="docs/a.txt"))["content"]
        assert (await call_error(bob, "insert_text", path="docs/a.txt", text="x", position=0))["code"] == "forbidden"


async def test_with_a_store_the_policy_file_is_not_watched_but_the_owner_file_is(tmp_path):
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    assert await asyncio.to_thread(push, tmp_path, url, GRANTED) == 0
    unused, owner_file = tmp_path / "unused.csv", tmp_path / "owner.csv"
    unused.write_text("p, bob, **, read, allow\n")
    trail = RecordingAuditTrail()
    engine = PolicyEngine(
        MODEL,
        unused,
        trail,
        poll_interval=0.05,
        owner_policy_path=owner_file,
        owner="owner",
        store=PolicyStore(url),
        store_poll_interval=3600,
    )
    await engine.start()
    try:
        # Both files change in the same tick: the owner file's reload is the sign the tick was handled.
        unused.write_text("p, bob, **, admin, allow\n")
        owner_file.write_text("p, carol, docs/**, read, allow\n")
        await eventually(lambda: trail.reloads)
    finally:
        await engine.stop()
    assert [(r["ok"], r["source"]) for r in trail.reloads] == [(True, str(owner_file))]
    assert engine.allowed(principal("carol"), "read", "docs/a.txt")
    assert not engine.allowed(principal("bob"), "admin", "docs/a.txt")
