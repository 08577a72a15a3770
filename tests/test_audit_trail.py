"""The audit trail: records, hash chain across restarts and rotation, concurrency, sinks, failures."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import stat
import threading
import time
from types import SimpleNamespace

import pytest
from audit_fixtures import FlakyDisk, make_trail, records
from harness import eventually
from jupyter_events import EventLogger

from jupyter_collab_mcp_secure.audit import sinks
from jupyter_collab_mcp_secure.audit.config import AuditConfig, default_audit_log
from jupyter_collab_mcp_secure.audit.hashchain import GENESIS, START_EVENT
from jupyter_collab_mcp_secure.audit.sinks import FileSink, StreamSink
from jupyter_collab_mcp_secure.audit.trail import SCHEMA_ID, AuditTrail
from jupyter_collab_mcp_secure.audit.verify import verify_files
from jupyter_collab_mcp_secure.extension import CollabMCP


async def test_records_are_json_lines_with_a_chain_and_private_files(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()
    trail.record({"event": "tool_call", "user": "alice", "args_digest": trail.digest({"content": "top secret"})})
    trail.auth_failure("10.0.0.9", "invalid token", "jwt")
    trail.policy_reload(False, None, "parse error line 3", "watch")
    await trail.close()

    log = tmp_path / "audit.jsonl"
    lines = records(log)
    assert [r["event"] for r in lines] == [START_EVENT, "tool_call", "auth_failure", "policy_reload"]
    assert lines[0]["prev_hash"] == GENESIS and lines[0]["reason"] == "new_chain"
    for before, after in zip(lines, lines[1:]):
        assert after["prev_hash"] == before["hash"]
    assert lines[1]["ts"].endswith("Z") and "T" in lines[1]["ts"]
    assert lines[2] == {**lines[2], "remote_ip": "10.0.0.9", "outcome": "unauthenticated", "reason": "invalid token"}
    assert lines[3]["outcome"] == "error" and lines[3]["source"] == "watch"
    assert "top secret" not in log.read_text()
    assert lines[1]["args_digest"].startswith("hmac-sha256:")
    for private in (log, tmp_path / "audit.digest-key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert verify_files([log]).ok


async def test_digest_is_keyed_stable_across_restarts_and_order_independent(tmp_path):
    first = make_trail(tmp_path)
    await first.start()
    digest = first.digest({"path": "a.ipynb", "cell_id": "c1"})
    assert digest == first.digest({"cell_id": "c1", "path": "a.ipynb"})
    assert digest != first.digest({"path": "a.ipynb", "cell_id": "c2"})
    await first.close()
    again = make_trail(tmp_path)
    await again.start()
    assert again.digest({"path": "a.ipynb", "cell_id": "c1"}) == digest
    await again.close()
    other = make_trail(tmp_path / "elsewhere")
    await other.start()
    assert other.digest({"path": "a.ipynb", "cell_id": "c1"}) != digest
    await other.close()


async def test_chain_continues_across_restarts(tmp_path):
    for run in range(3):
        trail = make_trail(tmp_path)
        await trail.start()
        trail.record({"event": "tool_call", "user": "alice", "run": run})
        await trail.close()
    lines = records(tmp_path / "audit.jsonl")
    starts = [r for r in lines if r["event"] == START_EVENT]
    assert [s["reason"] for s in starts] == ["new_chain", "restart", "restart"]
    report = verify_files([tmp_path / "audit.jsonl"])
    assert report.ok and report.records == 6 and report.head == lines[-1]["hash"]


async def test_torn_last_line_is_kept_as_evidence_and_the_chain_continues(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()
    trail.record({"event": "tool_call", "user": "alice"})
    await trail.close()
    log = tmp_path / "audit.jsonl"
    good_head = records(log)[-1]["hash"]
    with open(log, "a") as handle:
        handle.write('{"event":"tool_call","us')  # the process died mid-write
    trail = make_trail(tmp_path)
    await trail.start()
    await trail.close()
    restart = json.loads(log.read_text().splitlines()[-1])
    assert restart["torn_tail"] is True and restart["prev_hash"] == good_head
    report = verify_files([log])
    assert report.broken is None and not report.ok
    (gap,) = report.gaps
    assert gap.line == 3 and "not valid JSON" in gap.reason and "line 4" in gap.reason


async def test_rotation_by_size_continues_the_chain_into_the_next_file(tmp_path):
    sink = FileSink(tmp_path / "audit.jsonl", rotate_bytes=1500, fsync=True)
    trail = make_trail(tmp_path, sink=sink)
    await trail.start()
    for n in range(40):
        trail.record({"event": "tool_call", "user": "alice", "n": n})
    await trail.close()
    rotated = sorted(tmp_path.glob("audit.jsonl.*"))
    assert len(rotated) >= 3
    files = [*rotated, tmp_path / "audit.jsonl"]
    assert all(path.stat().st_size <= 1500 for path in files)
    report = verify_files(files)
    assert report.ok, report.broken
    assert report.records == 41 + len(rotated)
    calls = [r["n"] for path in files for r in records(path) if r["event"] == "tool_call"]
    assert calls == list(range(40))
    # each file starts at a rotation record, so it verifies alone too
    assert verify_files([rotated[1]]).ok
    first_of_next = records(rotated[1])[0]
    assert first_of_next["reason"] == "rotation" and first_of_next["previous_file"] == rotated[0].name
    # leaving out a file in the middle breaks the link
    gap = verify_files([rotated[0], *rotated[2:], tmp_path / "audit.jsonl"])
    assert gap.broken is not None and gap.broken.file == str(rotated[2]) and gap.broken.line == 1


def test_rotated_names_sort_in_rotation_order_across_a_second_boundary(tmp_path, monkeypatch):
    # Two rotations 0.5 ms apart, the second just past a second boundary: reading the
    # seconds and the microseconds from the clock separately named the second file so that
    # it sorted before the first (CI saw it as a chain break between rotated files).
    clock = iter([999_999_000, 999_999_500, 999_999_900, 1_000_000_100])

    def now_ns():
        return next(clock) * 1000

    def gmtime(secs=None):
        return time.gmtime(now_ns() / 1e9 if secs is None else secs)

    monkeypatch.setattr(sinks, "time", SimpleNamespace(time_ns=now_ns, gmtime=gmtime, strftime=time.strftime))
    sink = FileSink(tmp_path / "audit.jsonl", rotate_bytes=10, fsync=False)
    sink.open()
    sink.write("first")
    first, _ = sink.rotate()
    sink.write("second")
    second, _ = sink.rotate()
    sink.close()
    assert sorted([second, first]) == [first, second]


async def test_concurrent_records_from_tasks_and_threads_are_neither_lost_nor_interleaved(tmp_path):
    trail = make_trail(tmp_path)
    await trail.start()

    async def agent(number: int) -> None:
        for sequence in range(25):
            trail.record({"event": "tool_call", "user": f"task-{number}", "n": sequence, "pad": "x" * 300})
            await asyncio.sleep(0)

    def worker(number: int) -> None:
        for sequence in range(100):
            trail.policy_reload(True, f"{number}-{sequence}", None, "thread")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(agent(i) for i in range(40)))
    await asyncio.to_thread(lambda: [thread.join() for thread in threads])
    await trail.close()

    lines = records(tmp_path / "audit.jsonl")  # every line parses: none interleaved
    calls = [(r["user"], r["n"]) for r in lines if r["event"] == "tool_call"]
    reloads = [r["policy_sha256"] for r in lines if r["event"] == "policy_reload"]
    assert sorted(calls) == sorted((f"task-{i}", n) for i in range(40) for n in range(25))
    assert sorted(reloads) == sorted(f"{i}-{n}" for i in range(4) for n in range(100))
    for number in range(40):  # one task's records keep their order
        assert [n for user, n in calls if user == f"task-{number}"] == list(range(25))
    assert verify_files([tmp_path / "audit.jsonl"]).ok


async def test_recording_does_not_wait_for_the_disk(tmp_path):
    disk = FlakyDisk(tmp_path / "audit.jsonl")
    trail = make_trail(tmp_path, sink=disk)
    await trail.start()
    disk.gate.clear()  # the disk hangs
    for n in range(100):
        trail.record({"event": "tool_call", "n": n})
    # the loop still runs other work while the writer thread is stuck
    assert await asyncio.wait_for(asyncio.sleep(0, result="loop alive"), 5) == "loop alive"
    assert len(records(tmp_path / "audit.jsonl")) == 1
    disk.gate.set()
    await trail.close()
    assert len(records(tmp_path / "audit.jsonl")) == 101


async def test_unwritable_sink_makes_the_trail_unhealthy_until_it_recovers(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be")
    trail = make_trail(tmp_path, sink=FileSink(blocker / "audit.jsonl", rotate_bytes=0, fsync=False))
    with caplog.at_level(logging.INFO, logger="test-audit"):
        await trail.start()
        assert not trail.healthy
        trail.record({"event": "tool_call", "user": "alice", "outcome": "error"})
        blocker.unlink()  # the sink creates the directory on its next attempt
        await eventually(lambda: trail.healthy)
        await trail.close()
    assert [r["event"] for r in records(blocker / "audit.jsonl")] == [START_EVENT, "tool_call"]
    assert sum("cannot write" in message for message in caplog.messages) == 1


async def test_write_failure_mid_run_is_retried_without_losing_records(tmp_path):
    disk = FlakyDisk(tmp_path / "audit.jsonl")
    trail = make_trail(tmp_path, sink=disk)
    await trail.start()
    trail.record({"event": "tool_call", "n": 0})
    await eventually(lambda: trail.records_written == 2)
    disk.full = True
    trail.record({"event": "tool_call", "n": 1})
    await eventually(lambda: not trail.healthy)
    trail.record({"event": "tool_call", "n": 2})
    disk.full = False
    await eventually(lambda: trail.healthy)
    await trail.close()
    lines = records(tmp_path / "audit.jsonl")
    assert [r.get("n") for r in lines if r["event"] == "tool_call"] == [0, 1, 2]
    assert [r["reason"] for r in lines if r["event"] == START_EVENT] == ["new_chain", "reopen"]
    assert verify_files([tmp_path / "audit.jsonl"]).ok


async def test_overflowing_records_during_an_outage_leave_a_gap_marker(tmp_path):
    disk = FlakyDisk(tmp_path / "audit.jsonl")
    trail = make_trail(tmp_path, sink=disk, max_pending=5)
    await trail.start()
    disk.full = True
    trail.record({"event": "tool_call", "n": 0})
    await eventually(lambda: not trail.healthy)
    for n in range(1, 12):
        trail.record({"event": "tool_call", "n": n})
    disk.full = False
    await eventually(lambda: trail.healthy)
    await trail.close()
    lines = records(tmp_path / "audit.jsonl")
    assert [r["n"] for r in lines if r["event"] == "tool_call"] == [0, 1, 2, 3, 4]
    assert [r["dropped"] for r in lines if r["event"] == "audit_gap"] == [7]


async def test_head_is_logged_every_n_records_and_at_shutdown(tmp_path, caplog):
    trail = make_trail(tmp_path, head_every=3)
    with caplog.at_level(logging.INFO, logger="test-audit"):
        await trail.start()
        for n in range(7):
            trail.record({"event": "tool_call", "n": n})
        await trail.close()
    heads = [m for m in caplog.messages if m.startswith("audit chain head")]
    assert [m.split("(")[1].split(")")[0] for m in heads] == ["periodic", "periodic", "shutdown"]
    logged_head = heads[-1].split(": ")[1].split()[0]
    assert verify_files([tmp_path / "audit.jsonl"], expect_head=logged_head).ok


async def test_stdout_sink_continues_its_chain_through_a_head_file(tmp_path):
    outputs = []
    for _ in range(2):
        stream = io.StringIO()
        trail = AuditTrail(
            StreamSink(stream, tmp_path / "audit-stdout.head"), tmp_path / "k.key", logging.getLogger("t")
        )
        await trail.start()
        trail.record({"event": "tool_call", "user": "alice"})
        await trail.close()
        outputs.append(stream.getvalue())
    (tmp_path / "collected.jsonl").write_text("".join(outputs))
    assert verify_files([tmp_path / "collected.jsonl"]).ok
    assert json.loads(outputs[1].splitlines()[0])["reason"] == "restart"


async def test_records_are_also_jupyter_events(tmp_path):
    received = []

    async def listener(logger, schema_id, data):
        received.append((schema_id, data))

    events = EventLogger()
    trail = make_trail(tmp_path)
    trail.attach_event_logger(events)
    events.add_listener(schema_id=SCHEMA_ID, listener=listener)
    await trail.start()
    trail.record({"event": "tool_call", "user": "alice", "paths": ["a.ipynb"], "outcome": "ok"})
    await asyncio.to_thread(trail.auth_failure, "10.1.1.1", "expired", "jwt")  # from another thread
    await eventually(lambda: len(received) == 2)
    await trail.close()
    assert {data["event"] for _, data in received} == {"tool_call", "auth_failure"}
    assert all(schema == SCHEMA_ID and data["ts"].endswith("Z") for schema, data in received)


def test_default_sink_is_a_state_dir_file_outside_the_root_else_stdout(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    state_audit = tmp_path / "data" / "collab_mcp_secure" / "audit"
    assert default_audit_log(tmp_path / "root", state_audit) == str(state_audit / "audit.jsonl")
    assert default_audit_log(tmp_path, state_audit) == "stdout"
    config = AuditConfig()
    assert isinstance(config.make_audit_trail(str(tmp_path / "root"), logging.getLogger("t")).sink, FileSink)
    assert isinstance(config.make_audit_trail(str(tmp_path), logging.getLogger("t")).sink, StreamSink)


async def test_moving_state_dir_moves_the_audit_trail_and_its_digest_key(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    for state_dir in (tmp_path / "state-a", tmp_path / "state-b"):
        trail = CollabMCP(state_dir=str(state_dir)).make_audit_trail(str(tmp_path / "root"), logging.getLogger("t"))
        await trail.start()
        trail.record({"event": "tool_call", "user": "alice", "outcome": "ok"})
        await trail.close()
        assert [r["event"] for r in records(state_dir / "audit" / "audit.jsonl")][-1] == "tool_call"
        assert (state_dir / "audit" / "audit.digest-key").is_file()
    assert not (tmp_path / "data").exists()


def test_auditing_to_stdout_keeps_its_key_and_head_under_state_dir(tmp_path):
    config = CollabMCP(state_dir=str(tmp_path / "state"), audit_log="stdout")
    trail = config.make_audit_trail(str(tmp_path / "root"), logging.getLogger("t"))
    assert trail.digest_key_file == tmp_path / "state" / "audit" / "audit-digest.key"
    assert trail.sink.head_file == tmp_path / "state" / "audit" / "audit-stdout.head"


def test_explicit_audit_settings_win_over_state_dir(tmp_path):
    config = CollabMCP(
        state_dir=str(tmp_path / "state"),
        audit_log=str(tmp_path / "logs" / "trail.jsonl"),
        audit_digest_key_file=str(tmp_path / "keys" / "k"),
    )
    trail = config.make_audit_trail(str(tmp_path / "root"), logging.getLogger("t"))
    assert trail.sink.path == tmp_path / "logs" / "trail.jsonl"
    assert trail.digest_key_file == tmp_path / "keys" / "k"


def test_an_audit_file_inside_the_served_root_is_refused(tmp_path):
    config = AuditConfig(audit_log=str(tmp_path / "root" / "audit.jsonl"))
    with pytest.raises(ValueError, match="inside the served root"):
        config.make_audit_trail(str(tmp_path / "root"), logging.getLogger("t"))
