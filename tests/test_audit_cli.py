"""`jupyter collab-mcp audit verify|query|summary` on real audit files, including tampered ones."""

from __future__ import annotations

import argparse
import json

import pytest
from audit_fixtures import records, write_chain

from jupyter_collab_mcp_secure.cli import audit as audit_cli

CALLS = [
    # user, agent, tool, action, path, decision, outcome, ts
    ("alice", "claude-code", "get_notebook", "read", "notebooks/a.ipynb", "allow", "ok", "2026-03-01T09:00:00Z"),
    (
        "alice",
        "claude-code",
        "update_notebook_cell",
        "write",
        "notebooks/a.ipynb",
        "allow",
        "ok",
        "2026-03-01T09:01:00Z",
    ),
    (
        "alice",
        "claude-code",
        "execute_notebook_cell",
        "execute",
        "notebooks/a.ipynb",
        "allow",
        "ok",
        "2026-03-01T09:02:00Z",
    ),
    ("bob", None, "update_document", "write", "data/secret/.env", "deny", "denied", "2026-03-01T10:00:00Z"),
    ("bob", None, "update_document", "write", "notes.txt", "allow", "ok", "2026-03-02T08:00:00Z"),
    (
        "alice",
        "cursor",
        "insert_notebook_cell",
        "write",
        "notebooks/b.ipynb",
        "allow",
        "rate_limited",
        "2026-03-02T09:00:00Z",
    ),
]


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    audit_cli.add_parser(parser.add_subparsers(dest="family", required=True))
    args = parser.parse_args(["audit", *argv])
    return args.run(args)


@pytest.fixture
def audit_log(tmp_path):
    entries = [
        {
            "event": "tool_call",
            "user": user,
            "agent": agent,
            "declared_client": "Some IDE",
            "tool": tool,
            "action": action,
            "paths": [path],
            "decision": decision,
            "outcome": outcome,
            "ts": ts,
        }
        for user, agent, tool, action, path, decision, outcome, ts in CALLS
    ]
    entries.append(
        {
            "event": "auth_failure",
            "ts": "2026-03-02T09:30:00Z",
            "remote_ip": "203.0.113.5",
            "outcome": "unauthenticated",
        }
    )
    write_chain(tmp_path / "audit.jsonl", entries)
    return tmp_path / "audit.jsonl"


def head_of(path) -> str:
    return records(path)[-1]["hash"]


def test_intact_log_verifies(audit_log, capsys):
    assert cli("verify", str(audit_log), "--expect-head", head_of(audit_log)) == 0
    out = capsys.readouterr().out
    assert "OK: 8 records" in out and head_of(audit_log) in out


def test_every_single_byte_change_is_caught(audit_log, capsys):
    original = audit_log.read_bytes()
    line_start = original.index(b"\n", original.index(b"\n") + 1) + 1  # third line
    line_end = original.index(b"\n", line_start)
    for offset in range(line_start, line_end):
        tampered = bytearray(original)
        tampered[offset] = ord("x") if tampered[offset] != ord("x") else ord("y")
        audit_log.write_bytes(bytes(tampered))
        assert cli("verify", str(audit_log)) == 1, f"change at byte {offset} went unnoticed"
        assert f"{audit_log} line 3:" in capsys.readouterr().out


def test_a_deleted_line_is_caught(audit_log, capsys):
    lines = audit_log.read_text().splitlines(keepends=True)
    audit_log.write_text("".join(lines[:3] + lines[4:]))
    assert cli("verify", str(audit_log)) == 1
    assert "line 4: prev_hash does not link" in capsys.readouterr().out


def test_swapped_lines_are_caught(audit_log, capsys):
    lines = audit_log.read_text().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    audit_log.write_text("".join(lines))
    assert cli("verify", str(audit_log)) == 1
    assert "line 3: prev_hash does not link" in capsys.readouterr().out


def test_a_truncated_tail_is_caught_with_the_anchored_head(audit_log, capsys):
    anchored = head_of(audit_log)
    lines = audit_log.read_text().splitlines(keepends=True)
    audit_log.write_text("".join(lines[:-2]))
    assert cli("verify", str(audit_log)) == 0  # a shorter chain is still a valid chain...
    assert cli("verify", str(audit_log), "--expect-head", anchored) == 1  # ...but not the anchored one
    assert "records are missing from the tail" in capsys.readouterr().out


def test_a_cut_mid_line_is_caught(audit_log, capsys):
    audit_log.write_bytes(audit_log.read_bytes()[:-20])
    assert cli("verify", str(audit_log)) == 1
    assert "line 8: the line is incomplete" in capsys.readouterr().out


def test_removed_head_lines_are_caught(audit_log, capsys):
    lines = audit_log.read_text().splitlines(keepends=True)
    audit_log.write_text("".join(lines[2:]))
    assert cli("verify", str(audit_log)) == 1
    assert "line 1: the first record is not a chain start" in capsys.readouterr().out


def test_a_rewritten_record_with_a_recomputed_hash_breaks_the_next_link(audit_log, capsys):
    from jupyter_collab_mcp_secure.audit.hashchain import seal

    lines = audit_log.read_text().splitlines(keepends=True)
    forged = json.loads(lines[4])
    assert forged["outcome"] == "denied"
    forged["outcome"], forged["decision"] = "ok", "allow"
    _, line = seal(forged, forged["prev_hash"])
    lines[4] = line + "\n"
    audit_log.write_text("".join(lines))
    assert cli("verify", str(audit_log)) == 1
    assert "line 6: prev_hash does not link" in capsys.readouterr().out


def test_unreadable_file_is_a_usage_error(tmp_path, capsys):
    assert cli("verify", str(tmp_path / "missing.jsonl")) == 2
    assert "error:" in capsys.readouterr().err


def test_query_filters_and_formats(audit_log, capsys):
    assert cli("query", str(audit_log), "--user", "alice", "--action", "write,execute", "--json") == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["tool"] for r in found] == ["update_notebook_cell", "execute_notebook_cell", "insert_notebook_cell"]

    assert (
        cli(
            "query",
            str(audit_log),
            "--path",
            "notebooks/*",
            "--outcome",
            "ok",
            "--since",
            "2026-03-01T09:01:00Z",
            "--json",
        )
        == 0
    )
    assert [json.loads(line)["tool"] for line in capsys.readouterr().out.splitlines()] == [
        "update_notebook_cell",
        "execute_notebook_cell",
    ]

    assert cli("query", str(audit_log), "--decision", "deny") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["TS", "EVENT", "USER", "AGENT"]
    assert len(table) == 2 and "data/secret/.env" in table[1] and "denied" in table[1]

    assert cli("query", str(audit_log), "--agent", "cursor", "--until", "2026-03-03", "--json") == 0
    assert [json.loads(line)["tool"] for line in capsys.readouterr().out.splitlines()] == ["insert_notebook_cell"]

    assert cli("query", str(audit_log), "--event", "auth_failure", "--json") == 0
    assert json.loads(capsys.readouterr().out)["remote_ip"] == "203.0.113.5"

    assert cli("query", str(audit_log), "--json") == 0
    assert len(capsys.readouterr().out.splitlines()) == 7  # chain markers hidden unless asked for


def test_query_rejects_a_bad_time(audit_log, capsys):
    with pytest.raises(SystemExit):
        cli("query", str(audit_log), "--since", "yesterday")
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_summary_per_user_and_per_path(audit_log, capsys):
    assert cli("summary", str(audit_log), "--json") == 0
    summary = json.loads(capsys.readouterr().out)["servers"][""]
    assert summary["users"]["alice"] == {
        "calls": 4,
        "denied": 0,
        "rate_limited": 1,
        "errors": 0,
        "by_tool": {
            "get_notebook": 1,
            "update_notebook_cell": 1,
            "execute_notebook_cell": 1,
            "insert_notebook_cell": 1,
        },
    }
    assert summary["users"]["bob"]["denied"] == 1
    assert summary["paths"]["notebooks/a.ipynb"] == {"wrote": {"alice": 1}, "executed": {"alice": 1}, "denied": {}}
    assert summary["paths"]["data/secret/.env"]["denied"] == {"bob": 1}
    assert summary["auth_failures"] == {"203.0.113.5": 1}

    assert cli("summary", str(audit_log)) == 0
    text = capsys.readouterr().out
    assert "Per user" in text and "Per path" in text and "Authentication failures" in text


def test_review_skips_and_reports_lines_that_do_not_parse(audit_log, capsys):
    with open(audit_log, "a") as handle:
        handle.write("garbage\n")
    assert cli("query", str(audit_log), "--user", "bob", "--json") == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "line 9: not JSON" in captured.err


def test_caller_chosen_text_cannot_forge_or_hide_a_row(tmp_path, capsys):
    log = tmp_path / "audit.jsonl"
    forged = "x\n2026-03-01T09:00:00Z  tool_call  alice  -  execute_notebook_cell  execute  a.ipynb  allow  ok"
    write_chain(
        log,
        [
            {
                "event": "tool_call",
                "user": "mallory",
                "tool": forged,
                "outcome": "denied",
                "ts": "2026-03-01T09:00:00Z",
            },
            {
                "event": "tool_call",
                "user": "mallory\u2028eve",
                "declared_client": "\x1b[8mhidden\x1b[0m\u202e",
                "tool": "get_notebook\\x0a",
                "paths": ["a\rb"],
                "outcome": "denied",
                "ts": "2026-03-01T09:00:01Z",
            },
        ],
    )
    assert cli("query", str(log)) == 0
    table = capsys.readouterr().out
    assert len(table.splitlines()) == 3
    for unprintable in ("\x1b", "\r", "\u2028", "\u202e"):
        assert unprintable not in table
    assert "x\\x0a2026-03-01T09:00:00Z" in table and "\\x1b[8mhidden" in table and "mallory\\u2028eve" in table
    assert "get_notebook\\\\x0a" in table  # a literal backslash cannot pose as an escape
    assert cli("summary", str(log)) == 0
    summary = capsys.readouterr().out
    assert "\x1b" not in summary and "\u2028" not in summary
    assert not any(line.startswith("2026") for line in summary.splitlines())


def execution(request_id: str, user: str = "alice", server: str = "alice/") -> dict:
    return {
        "event": "execution_started",
        "user": user,
        "tool": "execute_notebook_cell",
        "action": "execute",
        "paths": ["a.ipynb"],
        "request_id": request_id,
        "server": server,
        "ts": "2026-03-01T09:00:00Z",
    }


def test_executions_that_never_finished_are_shown(tmp_path, capsys):
    log = tmp_path / "audit.jsonl"
    ended = {"event": "tool_call", "user": "alice", "tool": "execute_notebook_cell", "server": "alice/"}
    write_chain(
        log,
        [
            execution("done"),
            {**ended, "request_id": "done", "outcome": "ok"},
            execution("detached"),
            {**ended, "request_id": "detached", "outcome": "client_disconnected"},
            {"event": "execution_finished", "request_id": "detached", "server": "alice/", "outcome": "ok"},
            execution("killed"),
            execution("gone", server="bob/"),
            {**ended, "request_id": "gone", "outcome": "client_disconnected", "server": "bob/"},
        ],
    )
    assert cli("query", str(log), "--unfinished", "--json") == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["request_id"], r["unfinished"]) for r in found] == [("killed", True), ("gone", True)]
    assert cli("query", str(log), "--event", "execution_started") == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[8] for row in rows] == ["started", "started", "unfinished", "unfinished"]
    assert cli("query", str(log), "--server", "bob/", "--json") == 0
    assert [json.loads(line)["request_id"] for line in capsys.readouterr().out.splitlines()] == ["gone", "gone"]
    assert cli("summary", str(log), "--json") == 0
    servers = json.loads(capsys.readouterr().out)["servers"]
    assert [e["request_id"] for e in servers["alice/"]["unfinished_executions"]] == ["killed"]
    assert [e["request_id"] for e in servers["bob/"]["unfinished_executions"]] == ["gone"]
    assert cli("summary", str(log)) == 0
    text = capsys.readouterr().out
    assert "=== Server alice/" in text and "=== Server bob/" in text and "never finished" in text


def test_unreadable_lines_the_server_skipped_are_gaps_and_what_follows_is_still_checked(tmp_path, capsys):
    from jupyter_collab_mcp_secure.audit.hashchain import GENESIS, START_EVENT, seal

    head, start = seal({"event": START_EVENT, "reason": "new_chain"}, GENESIS)
    head, first = seal({"event": "tool_call", "user": "alice"}, head)
    restart_head, restart = seal({"event": START_EVENT, "reason": "restart", "unreadable_tail": {"lines": 1}}, head)
    _, second = seal({"event": "tool_call", "user": "bob"}, restart_head)
    log = tmp_path / "audit.jsonl"

    log.write_text("\n".join([start, first, '{"cut record', restart, second]) + "\n")
    assert cli("verify", str(log)) == 3
    out = capsys.readouterr().out
    assert out.startswith("GAPS: 4 records") and "line 3: 1 unreadable line(s)" in out and "line 4" in out

    log.write_text("\n".join([start, first, '{"cut record', restart, second.replace("bob", "eve")]) + "\n")
    assert cli("verify", str(log)) == 1
    assert "line 5: the record's hash does not match" in capsys.readouterr().out

    _, unacknowledged = seal({"event": "tool_call", "user": "bob"}, head)
    log.write_text("\n".join([start, first, "junk", unacknowledged]) + "\n")
    assert cli("verify", str(log)) == 1
    assert "line 3: the line is not valid JSON" in capsys.readouterr().out


def test_path_patterns_are_the_policys_globs(tmp_path, capsys):
    log = tmp_path / "audit.jsonl"
    paths = ["a.ipynb", "notebooks/a.ipynb", "notebooks/deep/b.ipynb", "notebooks2/c.ipynb", "data/.env"]
    write_chain(log, [{"event": "tool_call", "user": "alice", "paths": [path], "tool": "t"} for path in paths])

    def matched(pattern: str) -> list[str]:
        assert cli("query", str(log), "--path", pattern, "--json") == 0
        return [json.loads(line)["paths"][0] for line in capsys.readouterr().out.splitlines()]

    assert matched("*.ipynb") == ["a.ipynb"]  # * stays inside one segment
    assert matched("notebooks/*") == ["notebooks/a.ipynb"]
    assert matched("notebooks/**") == ["notebooks/a.ipynb", "notebooks/deep/b.ipynb"]  # never notebooks2/
    assert matched("**/*.ipynb") == paths[:4]
    assert matched("data/**") == ["data/.env"]  # dotfiles too, as in a deny rule
    with pytest.raises(SystemExit):
        cli("query", str(log), "--path", "/notebooks/**")
    assert "drop the leading '/'" in capsys.readouterr().err


def test_agent_is_the_verified_id_and_client_the_declared_name(audit_log, capsys):
    assert cli("query", str(audit_log), "--agent", "Some IDE", "--json") == 0
    assert capsys.readouterr().out == ""  # a name a client gives itself is no agent id
    assert cli("query", str(audit_log), "--client", "Some IDE", "--user", "bob", "--json") == 0
    assert [json.loads(line)["tool"] for line in capsys.readouterr().out.splitlines()] == ["update_document"] * 2


def test_csv_cells_are_escaped_and_never_formulas(tmp_path, capsys):
    import csv
    import io

    log = tmp_path / "audit.jsonl"
    hostile = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "  =x", "tab\there", "line\r\nbreak", 'quote",="x']
    write_chain(
        log,
        [{"event": "tool_call", "user": "mallory", "tool": name, "paths": [name], "outcome": "ok"} for name in hostile],
    )
    assert cli("query", str(log), "--csv") == 0
    out = capsys.readouterr().out
    header, *rows = list(csv.reader(io.StringIO(out)))
    assert len(rows) == len(hostile) and len(out.splitlines()) == len(hostile) + 1
    tools = [dict(zip(header, row))["tool"] for row in rows]
    assert tools == [
        "'=1+2",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'  =x",
        "tab\\x09here",
        "line\\x0d\\x0abreak",
        'quote",="x',
    ]
    assert all(row[header.index("agent")] == "" for row in rows)  # missing is empty, not a '-' to neutralise


def test_query_verify_reports_gaps_with_their_own_status(tmp_path, capsys):
    from jupyter_collab_mcp_secure.audit.hashchain import GENESIS, START_EVENT, seal

    head, start = seal({"event": START_EVENT, "reason": "new_chain"}, GENESIS)
    head, first = seal({"event": "tool_call", "user": "alice"}, head)
    restart_head, restart = seal({"event": START_EVENT, "reason": "restart", "unreadable_tail": {"lines": 1}}, head)
    _, second = seal({"event": "tool_call", "user": "bob"}, restart_head)
    log = tmp_path / "audit.jsonl"
    log.write_text("\n".join([start, first, '{"cut record', restart, second]) + "\n")
    assert cli("query", str(log), "--user", "bob", "--verify") == 3
    out = capsys.readouterr().out
    assert "intact, with unreadable lines (gaps)" in out and "verify: unreadable: " in out and "line 3" in out


def test_query_with_an_anchored_head_catches_a_cut_tail(audit_log, capsys):
    anchored = head_of(audit_log)
    assert cli("query", str(audit_log), "--user", "bob", "--expect-head", anchored) == 0
    assert "intact" in capsys.readouterr().out
    lines = audit_log.read_text().splitlines(keepends=True)
    audit_log.write_text("".join(lines[:-1]))
    assert cli("query", str(audit_log), "--user", "bob", "--expect-head", anchored) == 1
    assert "records are missing from the tail" in capsys.readouterr().out
