"""`jupyter collab-mcp policy simulate`: a trail from real calls on two servers, across a reload, replayed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from harness import audit_records, call, call_error, mcp_client, start_server

from jupyter_collab_mcp_secure.cli.main import main
from jupyter_collab_mcp_secure.policy.simulate import replayable, subjects_of

AUDIENCE = "jupyter-mcp"
ISSUER = "https://issuer.example"
SECRET = b"0123456789abcdef0123456789abcdef"
BEFORE = """\
p, role:owner, **, admin, allow
p, group:team, shared/**, read, allow
p, bob, shared/**, write, allow
"""
# Server A's policy after its reload: carol may write too.
RELOADED = BEFORE + "p, carol, shared/**, write, allow\n"
# The candidate: the whole team writes shared/, bob no longer does.
CANDIDATE = """\
p, role:owner, **, admin, allow
p, group:team, shared/**, read, allow
p, group:team, shared/**, write, allow
p, bob, shared/**, write, deny
"""


def jwt_for(user: str, groups: list[str]) -> str:
    now = int(datetime.now(timezone.utc).timestamp())
    claims = {"sub": user, "groups": groups, "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "iat": now}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["policy", "simulate", *argv])
    return code, out.getvalue(), err.getvalue()


def start(workdir, policy_text):
    (workdir / "secret").write_bytes(SECRET)
    (workdir / "policy.csv").write_text(policy_text)
    (workdir / "root" / "shared").mkdir(parents=True)
    for name in ("a.txt", "b.txt"):
        (workdir / "root" / "shared" / name).write_text("shared\n")
    return start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_secret_file": str(workdir / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
                "policy_file": str(workdir / "policy.csv"),
            }
        },
    )


async def write(server, token, path, allowed):
    async with mcp_client(server, token) as client:
        if allowed:
            await call(client, "insert_text", path=path, text="x", position=0)
        else:
            assert (await call_error(client, "insert_text", path=path, text="x", position=0))["code"] == "forbidden"


@pytest.fixture(scope="module")
async def trails(tmp_path_factory):
    first = start(tmp_path_factory.mktemp("server-a"), BEFORE)
    second = start(tmp_path_factory.mktemp("server-b"), BEFORE)
    try:
        bob, carol, dave = jwt_for("bob", []), jwt_for("carol", ["team"]), jwt_for("dave", ["team"])
        await write(first, bob, "shared/a.txt", True)
        await write(first, carol, "shared/a.txt", False)
        async with mcp_client(first, carol) as client:
            await call(client, "get_document", path="shared/a.txt")
            await call(client, "list_documents")  # a filtered listing: not replayed
            assert (await call_error(client, "get_document", path="../outside.txt"))["code"] == "invalid_argument"
        (first.workdir / "policy.csv").write_text(RELOADED)
        reloaded = hashlib.sha256(RELOADED.encode()).hexdigest()
        (reload,) = await audit_records(first, lambda r: r.get("policy_sha256") == reloaded, 1, timeout=30)
        await write(first, carol, "shared/a.txt", True)
        await write(first, bob, "shared/a.txt", True)
        async with mcp_client(first) as owner:
            await call(owner, "insert_text", path="shared/a.txt", text="o", position=0)
        await write(second, dave, "shared/b.txt", False)
        async with mcp_client(second, dave) as client:
            await call(client, "get_document", path="shared/b.txt")
        assert len(await audit_records(first, lambda r: r["event"] == "tool_call", 8)) == 8
        assert len(await audit_records(second, lambda r: r["event"] == "tool_call", 2)) == 2
        yield first, second, reload
    finally:
        first.stop()
        second.stop()


def changes(out: str) -> dict[tuple[str, str], list[str]]:
    """Each reported group: (direction, 'subjects: action on path: n call(s)') -> its detail lines."""
    found: dict[tuple[str, str], list[str]] = {}
    direction = key = None
    for line in out.splitlines():
        if line.startswith("WOULD CHANGE "):
            direction = line.split(": ")[0].removeprefix("WOULD CHANGE ")
        elif line.startswith("    ") and key:
            found[key].append(line.strip())
        elif line.startswith("  ") and direction and not line.startswith("  not replayed"):
            key = (direction, line.strip())
            found[key] = []
        else:
            direction = key = None
    return found


def test_both_directions_found_and_nothing_else(trails, tmp_path):
    first, second, reload = trails
    candidate = tmp_path / "candidate.csv"
    candidate.write_text(CANDIDATE)
    code, out, err = cli(str(candidate), "--audit", str(first.audit_log), str(second.audit_log))
    assert code == 1, err
    found = changes(out)
    assert set(found) == {
        ("allow -> deny", "bob: write on shared/a.txt: 2 call(s)"),
        # Only the write decided before the reload changes: after it, the recorded allow stands.
        ("deny -> allow", "carol, group:team: write on shared/a.txt: 1 call(s)"),
        ("deny -> allow", "dave, group:team: write on shared/b.txt: 1 call(s)"),
    }
    assert (
        "candidate: deny by line 4: p, bob, shared/**, write, deny"
        in found[("allow -> deny", "bob: write on shared/a.txt: 2 call(s)")]
    )
    bob_policies = next(
        line for line in found[("allow -> deny", "bob: write on shared/a.txt: 2 call(s)")] if "policy" in line
    )
    # One of bob's writes was decided under the reloaded policy, and the trail says which.
    assert reload["policy_sha256"][:12] in bob_policies and "(x1)" in bob_policies
    assert (
        "candidate: allow by line 3: p, group:team, shared/**, write, allow"
        in found[("deny -> allow", "dave, group:team: write on shared/b.txt: 1 call(s)")]
    )
    summary = [line for line in out.splitlines() if "recorded decision(s) replayed" in line]
    # 8 calls on A, 2 on B; the listing and the invalid path are not replayed.
    assert summary == ["8 recorded decision(s) replayed, 4 would change (3 group(s)); 2 call(s) not replayed"]
    assert "  not replayed: 1 listings decided per result, not up front" in out
    assert "  not replayed: 1 refused before the policy ran (bad input, audit sink down)" in out


def test_the_policy_in_force_changes_nothing_since_it_was_loaded(trails, tmp_path):
    first, _, reload = trails
    candidate = tmp_path / "reloaded.csv"
    candidate.write_text(RELOADED)
    (tmp_path / "strict.csv").write_text("p, role:owner, **, admin, allow\n")
    code, out, _ = cli(str(candidate), "--audit", str(first.audit_log), "--since", reload["ts"])
    assert code == 0
    assert "WOULD CHANGE" not in out
    assert "3 recorded decision(s) replayed, 0 would change (0 group(s)); 0 call(s) not replayed" in out
    # A change since then is shown with the policy in force, from the reload before the period.
    after_reload = (datetime.fromisoformat(reload["ts"].replace("Z", "+00:00")) + timedelta(microseconds=1)).isoformat()
    code, out, _ = cli(str(tmp_path / "strict.csv"), "--audit", str(first.audit_log), "--since", after_reload)
    assert code == 1 and f"recorded under policy: {reload['policy_sha256'][:12]} (" in out
    # Over the whole trail the same policy would have let carol write before the reload.
    code, out, _ = cli(str(candidate), "--audit", str(first.audit_log))
    assert code == 1 and set(changes(out)) == {("deny -> allow", "carol, group:team: write on shared/a.txt: 1 call(s)")}


def test_unusable_input_exits_2(tmp_path):
    policy = tmp_path / "p.csv"
    policy.write_text("p, bob, a/**, raed, allow\n")
    trail = tmp_path / "audit.jsonl"
    trail.write_text("")
    assert cli(str(policy), "--audit", str(trail))[0] == 2
    policy.write_text(CANDIDATE)
    assert cli(str(policy), "--audit", str(tmp_path / "missing.jsonl"))[0] == 2


def test_subjects_come_from_the_record_or_are_rebuilt():
    assert subjects_of({"subjects": ["alice", "agent:bot", "role:hub-admin"], "user": "alice"}) == (
        "alice",
        "agent:bot",
        "role:hub-admin",
    )
    rebuilt = {"user": "alice", "agent": "bot", "groups": ["team"], "auth": "jwt", "server": "alice/"}
    assert subjects_of(rebuilt) == ("alice", "agent:bot", "group:team", "role:owner")
    assert subjects_of({**rebuilt, "server": "bob/"}) == ("alice", "agent:bot", "group:team")
    assert subjects_of({"user": "x", "auth": "jupyter-token"}) == ("x", "role:owner")
    assert subjects_of({"user": None}) is None


def test_what_is_not_replayed():
    call = {"event": "tool_call", "user": "bob", "paths": ["a.txt"], "action": "write", "tool": "insert_text"}
    assert replayable({**call, "decision": "deny", "outcome": "error", "error_code": "invalid_argument"}) == (
        "before_policy"
    )
    assert replayable({**call, "tool": "set_user_presence", "decision": "allow"}) == "no_policy_action"
    assert replayable({**call, "tool": "list_notebooks", "decision": "allow"}) == "filtered"
    assert replayable({**call, "paths": [], "decision": "allow"}) == "no_paths"
    # Rate limited after the policy allowed it: the policy's decision is replayed.
    assert replayable({**call, "decision": "allow", "outcome": "rate_limited"}).decision == "allow"
    assert replayable({**call, "decision": "deny", "outcome": "denied", "rule": "p, bob, **, write, deny"}).rule == (
        "p, bob, **, write, deny"
    )


def test_an_owner_file_is_layered_on_the_candidate_as_the_server_does(tmp_path):
    from policy_fixtures import EXAMPLES

    def record(user, groups, action, path, decision):
        outcome = "ok" if decision == "allow" else "denied"
        return {
            "event": "tool_call",
            "user": user,
            "groups": groups,
            "auth": "jwt",
            "tool": "get_document",
            "action": action,
            "paths": [path],
            "decision": decision,
            "outcome": outcome,
        }

    trail = tmp_path / "audit.jsonl"
    records = [
        record("bob", [], "read", "shared/x.txt", "allow"),  # the owner file shares shared/ with bob
        record("carol", ["team"], "execute", "archive/x.ipynb", "deny"),  # capped by the baseline
    ]
    trail.write_text("".join(json.dumps(r) + "\n" for r in records))
    baseline, owner = str(EXAMPLES / "layered-baseline.csv"), str(EXAMPLES / "layered-owner.csv")
    code, out, _ = cli(baseline, "--audit", str(trail), "--owner-policy", owner, "--owner-name", "alice")
    assert code == 0 and "2 recorded decision(s) replayed, 0 would change" in out
    # Without the owner file, what it shared is lost.
    code, out, _ = cli(baseline, "--audit", str(trail))
    assert code == 1 and set(changes(out)) == {("allow -> deny", "bob: read on shared/x.txt: 1 call(s)")}
    # An owner file that stops sharing: the change names the layer and the rule.
    stricter = tmp_path / "owner.csv"
    stricter.write_text("p, bob, shared/**, read, deny\n")
    code, out, _ = cli(baseline, "--audit", str(trail), "--owner-policy", str(stricter), "--owner-name", "alice")
    assert code == 1
    assert "candidate: deny by owner file line 1: p, bob, shared/**, read, deny" in out
