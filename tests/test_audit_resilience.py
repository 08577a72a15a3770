"""The trail against hostile input and a hostile disk: bounded fields, garbled tails, removed files,
retention of rotated files, and refusal floods."""

from __future__ import annotations

import json
import shutil

from audit_fixtures import make_trail, records
from harness import eventually

from jupyter_collab_mcp_secure.audit.bounds import MAX_RECORD_BYTES
from jupyter_collab_mcp_secure.audit.hashchain import START_EVENT, seal
from jupyter_collab_mcp_secure.audit.sinks import FileSink
from jupyter_collab_mcp_secure.audit.verify import verify_files
from jupyter_collab_mcp_secure.ratelimit.refusals import RefusalBudget


async def test_caller_supplied_fields_are_bounded_and_the_chain_survives_a_restart(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()
    client = "C" * 70_000
    trail.record({"event": "tool_call", "user": "mallory", "declared_client": client, "tool": "t" * 70_000})
    trail.auth_failure("10.0.0.9", f"no configured key matches kid {'é' * 15_000}", "jwt")
    trail.record({"event": "tool_call", "user": "mallory", "groups": [f"g{n}" for n in range(10_000)]})
    await trail.close()

    log = tmp_path / "audit.jsonl"
    lines = log.read_text().splitlines()
    assert max(len(line) for line in lines) <= MAX_RECORD_BYTES
    call, failure, groups = records(log)[1:]
    assert call["declared_client"].startswith("C" * 512 + "...[truncated: 70000 chars, sha256:")
    assert "kid" in failure["reason"] and "truncated: 15030 chars" in failure["reason"]
    assert len(groups["groups"]) == 65 and groups["groups"][-1].startswith("...[9936 more")

    restarted = make_trail(tmp_path)
    await restarted.start()
    assert restarted.healthy
    await restarted.close()
    assert verify_files([log]).ok


async def test_a_record_too_large_even_when_bounded_keeps_its_identity_and_a_digest(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()
    trail.record({"event": "tool_call", "user": "mallory", "request_id": "r1", "paths": ["é" * 512] * 64})
    await trail.close()
    oversized = records(tmp_path / "audit.jsonl")[-1]
    assert oversized["user"] == "mallory" and oversized["request_id"] == "r1" and "paths" not in oversized
    assert oversized["oversized"]["bytes"] > MAX_RECORD_BYTES and len(oversized["oversized"]["sha256"]) == 32


async def test_a_garbled_tail_is_kept_and_the_chain_links_to_the_last_readable_record(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()
    trail.record({"event": "tool_call", "user": "alice"})
    await trail.close()
    log = tmp_path / "audit.jsonl"
    good_head = records(log)[-1]["hash"]
    junk = '{"declared_client":"' + "x" * 70_000 + '",\n' + "garbage\n"
    with open(log, "a") as handle:  # a cut 70 kB record (what an old server wrote), then junk
        handle.write(junk)

    trail = make_trail(tmp_path)
    await trail.start()
    assert trail.healthy
    trail.record({"event": "tool_call", "user": "bob"})
    await trail.close()
    lines = log.read_text().splitlines()
    start, after = json.loads(lines[-2]), json.loads(lines[-1])
    assert start["event"] == START_EVENT and start["prev_hash"] == good_head
    assert start["unreadable_tail"] == {"lines": 2, "bytes": len(junk)}
    assert after["user"] == "bob" and after["prev_hash"] == start["hash"]
    report = verify_files([log])
    assert report.broken is None and [(gap.line, gap.reason[:22]) for gap in report.gaps] == [
        (3, "2 unreadable line(s) (")
    ]
    assert report.records == 4 and report.head == after["hash"]


async def test_an_oversized_but_valid_last_record_still_gives_the_head(tmp_path):
    log = tmp_path / "audit.jsonl"
    head, line = seal({"event": START_EVENT, "reason": "new_chain"}, "0" * 64)
    head, big = seal({"event": "tool_call", "declared_client": "x" * 100_000}, head)
    log.write_text(line + "\n" + big + "\n")
    trail = make_trail(tmp_path)
    await trail.start()
    await trail.close()
    restart = records(log)[-1]
    assert restart["prev_hash"] == head and "unreadable_tail" not in restart
    assert verify_files([log]).ok


async def test_a_removed_audit_file_or_folder_is_noticed_and_the_chain_goes_on_in_a_new_file(tmp_path):
    folder = tmp_path / "audit"
    trail = make_trail(tmp_path, sink=FileSink(folder / "audit.jsonl", rotate_bytes=0, fsync=False))
    await trail.start()
    log = folder / "audit.jsonl"
    trail.record({"event": "tool_call", "user": "alice", "n": 1})
    await eventually(lambda: len(records(log)) == 2)
    head = records(log)[-1]["hash"]

    log.unlink()
    trail.record({"event": "tool_call", "user": "alice", "n": 2})
    await eventually(lambda: log.exists() and len(records(log)) == 2)
    start, second = records(log)
    assert start["event"] == START_EVENT and start["reason"] == "reopen" and start["previous_file_missing"]
    assert start["prev_hash"] == head and second["n"] == 2
    head = second["hash"]

    shutil.rmtree(folder)
    trail.record({"event": "tool_call", "user": "alice", "n": 3})
    await eventually(lambda: log.exists() and len(records(log)) == 2)
    assert records(log)[0]["prev_hash"] == head and records(log)[1]["n"] == 3
    assert trail.healthy
    await trail.close()
    report = verify_files([log])
    assert report.ok and report.chain_start == head


async def test_rotated_files_beyond_the_retention_are_deleted_and_named(tmp_path):
    sink = FileSink(tmp_path / "audit.jsonl", rotate_bytes=1200, fsync=False, keep_rotated=2)
    trail = make_trail(tmp_path, sink=sink)
    await trail.start()
    for n in range(60):
        trail.record({"event": "tool_call", "user": "alice", "n": n})
    await trail.close()
    rotated = sorted(tmp_path.glob("audit.jsonl.*"))
    assert len(rotated) == 2
    deleted = [name for r in records(tmp_path / "audit.jsonl") for name in r.get("deleted_files", [])]
    assert deleted and all(not (tmp_path / name).exists() for name in deleted)
    assert verify_files([*rotated, tmp_path / "audit.jsonl"]).ok


async def test_a_refusal_flood_costs_a_few_lines(tmp_path):
    budget = RefusalBudget(principal_limit="3/hour", address_limit="2/hour")
    trail = make_trail(tmp_path, refusals=budget, suppressed_interval=0.05)
    await trail.start()
    for _ in range(500):
        trail.record_refusal({"event": "tool_call", "user": "mallory", "error_code": "forbidden"}, "jupyter:mallory")
        trail.auth_failure("203.0.113.5", "invalid token", "jwt")
    trail.record_refusal({"event": "tool_call", "user": "eve", "error_code": "rate_limited"}, "jupyter:eve")
    log = tmp_path / "audit.jsonl"
    await eventually(lambda: any(r["event"] == "refusals_suppressed" for r in records(log)))
    await trail.close()
    written = records(log)
    assert len(written) <= 10
    assert [r["event"] for r in written].count("tool_call") == 4
    assert [r["event"] for r in written].count("auth_failure") == 2
    suppressed = [r for r in written if r["event"] == "refusals_suppressed"]
    counts: dict[str, dict[str, int]] = {}
    for record in suppressed:
        for key, reasons in record["counts"].items():
            for reason, n in reasons.items():
                counts.setdefault(key, {}).setdefault(reason, 0)
                counts[key][reason] += n
    assert counts == {"jupyter:mallory": {"forbidden": 497}, "@203.0.113.5": {"invalid token": 498}}
    assert sum(r["total"] for r in suppressed) == 995
    assert verify_files([log]).ok


async def test_a_flood_from_many_addresses_names_the_busiest_and_sums_the_rest(tmp_path):
    budget = RefusalBudget(principal_limit="1/hour", address_limit="1/hour")
    trail = make_trail(tmp_path, refusals=budget, suppressed_interval=3600)
    await trail.start()
    for n in range(1, 201):
        for _ in range(2 + (n == 7) * 10):
            trail.auth_failure(f"198.51.{n // 256}.{n % 256}", "invalid token", None)
    await trail.close()  # shutdown writes what was counted
    (suppressed,) = [r for r in records(tmp_path / "audit.jsonl") if r["event"] == "refusals_suppressed"]
    assert suppressed["total"] == 200 + 10
    assert suppressed["counts"]["@198.51.0.7"] == {"invalid token": 11}
    assert len(suppressed["counts"]) == 51 and suppressed["counts"]["(others)"] == {"invalid token": 150}
