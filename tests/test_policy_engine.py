"""The engine: decisions across subjects, hot reload, and keeping the last good policy."""

from __future__ import annotations

import asyncio
import hashlib
import shutil

import pytest
from policy_fixtures import (
    MODEL,
    RecordingAuditTrail,
    principal,
    write_atomically,
)

from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.source import PolicyError

TEAM = "p, role:owner, **, admin, allow\np, group:team, shared/**, write, allow\n"


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.csv"
    path.write_text(TEAM)
    return path


@pytest.fixture
def audit():
    return RecordingAuditTrail()


@pytest.fixture
def engine(policy_file, audit):
    return PolicyEngine(MODEL, policy_file, audit_trail=audit, poll_interval=0.05)


def test_any_subject_may_allow_and_any_subject_may_deny(tmp_path):
    policy = tmp_path / "p.csv"
    policy.write_text(
        "p, alice, a/**, write, allow\n"
        "p, group:team, b/**, read, allow\n"
        "p, agent:bot, a/private/**, write, deny\n"
        "g, group:team, role:editor\n"
        "p, role:editor, c/**, write, allow\n"
    )
    engine = PolicyEngine(MODEL, policy)
    alice_bot = principal("alice", groups=("team",), agent="bot")
    assert engine.allowed(alice_bot, "write", "a/x")
    assert engine.allowed(alice_bot, "read", "b/x")  # from the group
    assert engine.allowed(alice_bot, "write", "c/x")  # from a role the group has
    assert not engine.allowed(alice_bot, "write", "a/private/x")  # the agent's deny wins
    assert not engine.allowed(alice_bot, "admin", "a/private/x")  # admin includes write
    assert engine.allowed(alice_bot, "read", "a/private/x")  # reading was not denied
    assert engine.allowed(principal("alice"), "write", "a/private/x")  # the user alone is untouched


def test_implications(tmp_path):
    policy = tmp_path / "p.csv"
    policy.write_text("p, u, w/**, write, allow\np, u, x/**, execute, allow\np, u, ad/**, admin, allow\n")
    engine = PolicyEngine(MODEL, policy)
    u = principal("u")
    decisions = {
        (act, folder): engine.allowed(u, act, f"{folder}/f")
        for act in ("read", "write", "execute", "admin")
        for folder in ("w", "x", "ad")
    }
    assert decisions == {
        ("read", "w"): True,
        ("write", "w"): True,
        ("execute", "w"): False,
        ("admin", "w"): False,
        ("read", "x"): True,
        ("write", "x"): False,
        ("execute", "x"): True,
        ("admin", "x"): False,
        ("read", "ad"): True,
        ("write", "ad"): True,
        ("execute", "ad"): True,
        ("admin", "ad"): True,
    }


def test_a_bad_file_at_startup_is_fatal(tmp_path):
    policy = tmp_path / "p.csv"
    policy.write_text("p, alice, a/**, raed, allow\n")
    with pytest.raises(PolicyError, match="unknown action 'raed'"):
        PolicyEngine(MODEL, policy)


async def test_change_applies_on_the_second_tick_after_the_write(engine, policy_file, audit):
    member = principal("erin", groups=("team",))
    assert engine.allowed(member, "write", "shared/a")
    new_text = TEAM.replace("write", "read") + "p, erin, own/**, write, allow\n"
    write_atomically(policy_file, new_text)
    assert await engine.poll_once() is False  # first sight of the change: wait until it is stable
    assert engine.allowed(member, "write", "shared/a")
    assert await engine.poll_once() is True
    assert not engine.allowed(member, "write", "shared/a")
    assert engine.allowed(member, "write", "own/x")
    assert audit.reloads == [
        {
            "ok": True,
            "sha256": hashlib.sha256(new_text.encode()).hexdigest(),
            "reason": None,
            "source": str(policy_file),
        }
    ]
    assert await engine.poll_once() is False  # nothing changed since


async def test_a_file_still_being_written_is_not_read(engine, policy_file, audit):
    with policy_file.open("a") as handle:
        handle.write("p, erin, own/**, wri")
        handle.flush()
        assert await engine.poll_once() is False
        handle.write("te, allow\n")
        handle.flush()
        assert await engine.poll_once() is False  # it grew again: still not stable
    assert await engine.poll_once() is True
    assert engine.allowed(principal("erin"), "write", "own/x")
    assert [r["ok"] for r in audit.reloads] == [True]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            TEAM + "p, erin, own/**, read, al\n",
            "unknown effect 'al'",
        ),  # truncated mid-rule
        (TEAM + "p, erin, own/**\n", "'p' needs 4 fields"),
        (TEAM + "p, gruop:team, x/**, read, allow\n", "unknown subject kind"),
        (TEAM + "p, erin, /abs/**, read, allow\n", "can never match"),
        (TEAM + "x, erin, a, read, allow\n", "unknown line type"),
        (TEAM + "p, erin, a], read, allow\n", "unbalanced"),
    ],
)
async def test_a_bad_reload_keeps_the_last_good_policy_and_is_audited(engine, policy_file, audit, text, reason):
    member = principal("erin", groups=("team",))
    write_atomically(policy_file, text)
    await engine.poll_once()
    assert await engine.poll_once() is True
    assert engine.allowed(member, "write", "shared/a")
    assert engine.snapshot.sha256 == hashlib.sha256(TEAM.encode()).hexdigest()
    assert len(audit.reloads) == 1
    record = audit.reloads[0]
    assert record["ok"] is False and record["sha256"] is None and record["source"] == str(policy_file)
    assert reason in record["reason"]


async def test_a_deleted_file_keeps_the_last_good_policy(engine, policy_file, audit):
    policy_file.unlink()
    await engine.poll_once()
    await engine.poll_once()
    assert engine.allowed(principal("erin", groups=("team",)), "write", "shared/a")
    assert audit.reloads[0]["ok"] is False and "cannot read policy" in audit.reloads[0]["reason"]


async def test_the_watcher_applies_changes_while_running(engine, policy_file):
    await engine.start()
    try:
        write_atomically(policy_file, TEAM + "p, erin, own/**, write, allow\n")
        async with asyncio.timeout(30):
            while not engine.allowed(principal("erin"), "write", "own/x"):
                await asyncio.sleep(0.02)
    finally:
        await engine.stop()


def test_decisions_never_mix_two_policies(engine, policy_file):
    # The swap is one assignment: the decider a decision uses belongs to exactly one snapshot.
    before = engine._active
    write_atomically(policy_file, TEAM + "p, erin, own/**, write, allow\n")
    asyncio.run(engine.reload())
    after = engine._active
    assert before is not after and before.snapshot.sha256 != after.snapshot.sha256
    assert not before.decider.allowed(("erin",), "write", "own/x")
    assert after.decider.allowed(("erin",), "write", "own/x")


def test_a_custom_model_is_decided_by_plain_casbin(tmp_path):
    model = tmp_path / "model.conf"
    # Same shape, but only exact path equality: the fast index does not know this matcher.
    model.write_text(MODEL.read_text().replace("pathMatch(r.obj, p.obj)", "r.obj == p.obj"))
    policy = tmp_path / "p.csv"
    policy.write_text("p, alice, a/**, read, allow\np, alice, b, read, allow\n")
    engine = PolicyEngine(model, policy)
    assert not engine.snapshot.standard_model
    assert not engine.allowed(principal("alice"), "read", "a/x")
    assert engine.allowed(principal("alice"), "read", "b")


def test_bundled_files_are_the_defaults(tmp_path):
    from jupyter_collab_mcp_secure.policy.config import PolicyConfig

    config = PolicyConfig()
    assert config.policy_model.endswith("model.conf") and config.policy_file.endswith("policy.csv")
    copy = tmp_path / "policy.csv"
    shutil.copy(config.policy_file, copy)
    config.policy_file = str(copy)
    engine = config.make_policy_engine(RecordingAuditTrail(), None)
    assert engine.allowed(principal("me", owner=True), "admin", "")
