"""Per-agent budgets over real MCP calls with JWT agents, and the reviewer's `audit query` on the trail they leave."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time

import jwt
import pytest
from awareness_fixtures import AUDIENCE, SECRET, jwt_config, token_for
from conftest import populate
from harness import audit_records, call, call_error, mcp_client, start_server

from jupyter_collab_mcp_secure.audit.hashchain import GENESIS, START_EVENT, seal
from jupyter_collab_mcp_secure.cli.main import main

BULK, TIGHT, PLAIN = "bulk-bot", "tight-bot", "plain-bot"
# Hours, so that no window can expire while the test runs.
LIMITS = {"read": "4/hour", "write": "100000/minute", "execute": "100000/minute", "admin": "100000/minute"}
OVERRIDES = {f"agent:{BULK}": {"read": "8/hour"}, f"agent:{TIGHT}": {"read": "1/hour"}}
# A client may call itself anything; in a spreadsheet this would be a formula.
FORMULA_CLIENT = '=HYPERLINK("http://evil.example","x")'
P = "notes.txt"


def token_without_agent(user: str) -> str:
    claims = {"sub": user, "aud": AUDIENCE, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def reads_until_refused(server, token: str, client_name: str = "test-agent", most: int = 12):
    """How many reads pass, and the refusal that ended them."""
    async with mcp_client(server, token, client_name=client_name) as client:
        for passed in range(most):
            result = await client.call_tool("get_document", {"path": P})
            if result.is_error:
                return passed, result.structured_content["error"]
    return most, None


@pytest.fixture(scope="module")
async def trail(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("agents")
    populate(workdir / "root")
    (workdir / "root" / "notebooks" / "other.txt").write_text("other\n")
    config = jwt_config(
        workdir / "policy", ["p, alice, **, write, allow"], rate_limits=LIMITS, rate_limit_overrides=OVERRIDES
    )
    server = start_server(workdir, config=config)
    try:
        seen = {
            "agent": await reads_until_refused(server, token_for("alice", BULK)),
            # The same person, with no agent claim, whose MCP client calls itself the agent.
            "declared": await reads_until_refused(server, token_without_agent("alice"), client_name=BULK),
            "smaller": await reads_until_refused(server, token_for("alice", TIGHT)),
            "no_override": await reads_until_refused(server, token_for("alice", PLAIN)),
        }
        async with mcp_client(server, token_for("alice", BULK)) as bulk:
            await call(bulk, "insert_text", path=P, text="bulk ", position=0)
            await call(bulk, "insert_text", path="notebooks/other.txt", text="x", position=0)
            assert (await call_error(bulk, "fork_document", path=P))["code"] == "forbidden"
        async with mcp_client(server, token_for("bob", BULK)) as bob:
            assert (await call_error(bob, "insert_text", path=P, text="b", position=0))["code"] == "forbidden"
        async with mcp_client(server, client_name=FORMULA_CLIENT) as owner:
            await call(owner, "insert_text", path=P, text="owner ", position=0)
        # Records are written in order: the last call's record means all are in the file.
        assert await audit_records(server, lambda r: r.get("declared_client") == FORMULA_CLIENT, 1)
        yield server, seen
    finally:
        server.stop()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def calls_of(server) -> list[dict]:
    return [r for r in map(json.loads, server.audit_log.read_text().splitlines()) if r["event"] == "tool_call"]


# -- per-agent budgets -----------------------------------------------------------------------


def test_an_agent_override_is_a_budget_and_a_counter_of_its_own(trail):
    server, seen = trail
    passed, refusal = seen["agent"]
    assert passed == 8 and refusal["code"] == "rate_limited"  # larger than its user's 4/hour
    assert f"of agent {BULK} (its own budget)" in refusal["message"]
    # The agent's 8 calls did not spend alice's budget: she still had all 4.
    assert seen["declared"][0] == 4
    assert seen["smaller"][0] == 1  # smaller than its user's
    assert len(calls_of(server)) == 22  # 8+1, 4+1, 1+1, 0+1 reads; alice's bulk-bot 3 more, bob 1, the owner 1
    # An agent without an override shares its user's counter, which alice has now spent.
    passed, refusal = seen["no_override"]
    assert passed == 0 and refusal["code"] == "rate_limited" and "own budget" not in refusal["message"]


def test_a_self_declared_client_name_gets_no_override(trail):
    server, seen = trail
    passed, refusal = seen["declared"]
    assert passed == 4 and refusal["code"] == "rate_limited" and "own budget" not in refusal["message"]
    declared = [r for r in calls_of(server) if r.get("declared_client") == BULK and r["tool"] == "get_document"]
    assert len(declared) == 5 and all(r.get("agent") is None for r in declared)
    assert [r["outcome"] for r in declared] == ["ok"] * 4 + ["rate_limited"]


# -- the reviewer's query --------------------------------------------------------------------


def test_what_agent_a_did_to_path_p_last_week_and_is_the_log_intact(trail):
    server, _ = trail
    log = str(server.audit_log)
    code, out, _ = cli("audit", "query", log, "--agent", BULK, "--path", P, "--since", "7d", "--verify")
    assert code == 0
    table, verdict = out.split("\nverify: ")
    header, *rows = table.splitlines()
    assert header.split()[:5] == ["TS", "EVENT", "USER", "AGENT", "TOOL"]
    expected = [
        r for r in calls_of(server) if r.get("agent") == BULK and P in r.get("paths", [])
    ]  # alice's 9 reads, her write, her refused fork, bob's refused write
    assert len(rows) == len(expected) == 12
    assert all(f" {BULK} " in row and P in row for row in rows)
    assert sum(" bob " in row for row in rows) == 1 and sum("rate_limited" in row for row in rows) == 1
    assert not any("notebooks/other.txt" in row for row in rows)
    server_name = expected[0]["server"]
    assert verdict.startswith(f"server {server_name}: intact: ") and "chain head " in verdict

    code, out, _ = cli("audit", "query", log, "--agent", BULK, "--path", P, "--user", "alice", "--decision", "deny")
    assert code == 0 and [row.split()[4] for row in out.splitlines()[1:]] == ["fork_document"]


def test_json_lines_and_csv_carry_the_same_answer(trail):
    server, _ = trail
    log = str(server.audit_log)
    code, out, err = cli("audit", "query", log, "--path", P, "--action", "write", "--json", "--verify")
    assert code == 0 and "intact" in err  # the verdict leaves the JSON lines alone
    found = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["user"] for r in found) == ["alice", "bob", "owner"]

    code, out, err = cli("audit", "query", log, "--path", P, "--action", "write", "--csv", "--verify")
    assert code == 0 and "intact" in err
    header, *rows = list(csv.reader(io.StringIO(out)))
    assert header[:4] == ["ts", "event", "user", "agent"]
    assert len(rows) == 3
    owner_row = next(dict(zip(header, row)) for row in rows if row[2] == "owner")
    # The client's formula is text in a spreadsheet: a leading quote.
    assert owner_row["agent"] == f"'{FORMULA_CLIENT} (declared)"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_relative_times_and_an_empty_answer_is_still_verified(trail, tmp_path):
    server, _ = trail
    code, out, _ = cli("audit", "query", str(server.audit_log), "--until", "1h", "--verify")
    assert code == 0 and out.splitlines()[1].startswith("verify: server ")  # no rows, the chain checked
    # Records of another agent removed: agent A's answer is unchanged, but the log is not intact.
    lines = server.audit_log.read_text().splitlines(keepends=True)
    victim = next(i for i, line in enumerate(lines) if f'"agent":"{TIGHT}"' in line)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:victim] + lines[victim + 1 :]))
    code, out, _ = cli("audit", "query", str(cut), "--agent", BULK, "--path", P, "--verify")
    assert code == 1 and "verify: BROKEN: " in out and "prev_hash does not link" in out
    assert len(out.split("\nverify: ")[0].splitlines()) == 13  # the rows are all there


def test_verify_checks_each_server_chain_the_answer_comes_from(trail, tmp_path):
    server, _ = trail
    ours = server.audit_log.read_text().splitlines(keepends=True)
    server_name = json.loads(ours[0])["server"]
    head, theirs = GENESIS, []
    call = {"event": "tool_call", "user": "bob", "agent": BULK, "tool": "get_document", "paths": [P]}
    for entry in [{"event": START_EVENT, "reason": "new_chain"}, call, call, call]:
        head, line = seal({**entry, "server": "bob/"}, head)
        theirs.append(line + "\n")
    # One stream, as a hub's log pipeline collects it; then bob's chain loses a record.
    stream = tmp_path / "hub.jsonl"
    stream.write_text("".join(ours[:5] + theirs[:2] + ours[5:] + theirs[3:]))
    log = str(stream)

    code, out, _ = cli("audit", "query", log, "--server", server_name, "--agent", BULK, "--verify")
    assert code == 0 and f"verify: server {server_name}: intact" in out and "bob/" not in out

    code, out, _ = cli("audit", "query", log, "--agent", BULK, "--path", P, "--verify")
    assert code == 1
    assert f"verify: server {server_name}: intact" in out
    assert "verify: server bob/: BROKEN: " in out and "prev_hash does not link" in out

    code, out, _ = cli("audit", "query", log, "--server", "carol/", "--verify")
    assert code == 1 and "no chain of the servers asked about" in out
