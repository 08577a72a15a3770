"""Checks audit files against their hash chains and reports the first broken link.

Files are given oldest first (rotated files, then the live one). One file or stream
may interleave several servers' chains (a hub's log collects every user's server):
records are grouped by their `server` field and each chain is checked on its own.
What is caught: any changed byte (the line is no longer the canonical rendering of
its record, or its hash no longer matches), a removed, inserted or reordered line
(the next `prev_hash` of that chain does not link), lines removed from the head of
the first file (it no longer begins with a chain start record), and, given the head
the server logged, lines removed from the tail.

Unreadable lines (not JSON, not a record: a line torn by a crash, a record cut by an
older server) that the server acknowledged when it continued the chain (its next
`audit_start` carries `torn_tail` or `unreadable_tail` and links to the record before
them) are reported as gaps, and checking goes on after them; anywhere else they are
the break.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .hashchain import GENESIS, START_EVENT, canonical, record_hash


@dataclass(frozen=True)
class Break:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass
class ChainReport:
    server: str
    records: int = 0
    # The hash the first record links to: GENESIS, or where earlier files would end.
    chain_start: str | None = None
    head: str | None = None
    last_line: tuple[str, int] = ("", 0)


@dataclass
class VerifyReport:
    files: list[str] = field(default_factory=list)
    chains: dict[str, ChainReport] = field(default_factory=dict)
    broken: Break | None = None
    # Unreadable lines the server acknowledged: the chain links across them.
    gaps: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Intact: no break, and no unreadable lines (a gap may hide a record that was being written)."""
        return self.broken is None and not self.gaps

    @property
    def records(self) -> int:
        return sum(chain.records for chain in self.chains.values())

    @property
    def head(self) -> str | None:
        """The head when the files hold one chain."""
        return self._only().head

    @property
    def chain_start(self) -> str | None:
        return self._only().chain_start

    def _only(self) -> ChainReport:
        if len(self.chains) == 1:
            return next(iter(self.chains.values()))
        return ChainReport(server="")


def verify_files(
    paths: Iterable[str | Path],
    expect_head: str | Mapping[str, str] | None = None,
    servers: Collection[str] | None = None,
) -> VerifyReport:
    """`expect_head`: the head the server logged, or one per server (`{"alice/": hash}`).

    `servers`: check only these servers' chains (a reviewer's answer comes from them; a break
    in another server's chain says nothing about it). Unreadable lines belong to no server:
    they count for every chain."""
    report = VerifyReport()
    last_position = ("", 0)
    gap: Break | None = None
    gap_lines = 0
    for name, number, raw, complete in _lines(paths, report):
        last_position = (name, number)
        record, problem = _parse(raw) if complete else (None, INCOMPLETE)
        if record is None:
            gap = gap or Break(name, number, problem or "")
            gap_lines += 1
            continue
        checked = servers is None or str(record.get("server") or "") in servers
        problem = _check_record(record, raw, report, (name, number)) if checked else None
        if problem:
            # After unreadable lines, they are the first problem.
            report.broken = gap or Break(name, number, problem)
            return report
        if gap is not None and _acknowledges(record):
            report.gaps.append(
                Break(
                    gap.file,
                    gap.line,
                    f"{gap_lines} unreadable line(s) ({gap.reason}); the server skipped them when it continued "
                    f"the chain at {name} line {number}, which links to the record before them",
                )
            )
            gap, gap_lines = None, 0
    if gap is not None:
        report.broken = gap
        return report
    if expect_head is not None:
        report.broken = _check_heads(report, expect_head, last_position)
    return report


INCOMPLETE = "the line is incomplete (no newline): the file was cut or a write was torn"


def _acknowledges(record: dict) -> bool:
    return record.get("event") == START_EVENT and bool(record.get("torn_tail") or record.get("unreadable_tail"))


def _check_heads(
    report: VerifyReport, expect_head: str | Mapping[str, str], last_position: tuple[str, int]
) -> Break | None:
    if isinstance(expect_head, str):
        if len(report.chains) > 1:
            return Break(*last_position, "the files hold several servers' chains: give the expected head per server")
        expected = {next(iter(report.chains), ""): expect_head}
    else:
        expected = dict(expect_head)
    for server, head in expected.items():
        chain = report.chains.get(server)
        if chain is None:
            return Break(*last_position, f"no records of server {server!r}")
        if chain.head != head.strip().lower():
            return Break(
                *chain.last_line,
                f"the chain{_of(server)} ends at {chain.head}, not at the expected head {head}: "
                "records are missing from the tail (or the files were rewritten)",
            )
    return None


def _of(server: str) -> str:
    return f" of server {server!r}" if server else ""


def _lines(paths: Iterable[str | Path], report: VerifyReport) -> Iterator[tuple[str, int, bytes, bool]]:
    for path in paths:
        name = str(path)
        report.files.append(name)
        data = Path(path).read_bytes()
        lines = data.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        for number, raw in enumerate(complete, start=1):
            yield name, number, raw, True
        if tail:
            yield name, len(complete) + 1, tail, False


def _parse(raw: bytes) -> tuple[dict | None, str | None]:
    try:
        record = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None, "the line is not valid JSON: its bytes were changed, or a write was torn"
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("hash"), str)
        or not isinstance(record.get("prev_hash"), str)
    ):
        return None, "the line is not an audit record (no hash / prev_hash)"
    return record, None


def _check_record(record: dict, raw: bytes, report: VerifyReport, position: tuple[str, int]) -> str | None:
    if canonical(record).encode("ascii") != raw:
        return "the line is not in canonical form: its bytes were changed"
    record = dict(record)
    claimed = record.pop("hash")
    if record_hash(record) != claimed:
        return "the record's hash does not match its content: the record was changed"
    server = str(record.get("server") or "")
    chain = report.chains.get(server)
    prev = record["prev_hash"]
    if chain is None:
        if prev != GENESIS and record.get("event") != START_EVENT:
            return f"the first record{_of(server)} is not a chain start: records before it are missing"
        chain = report.chains[server] = ChainReport(server=server, chain_start=prev)
    elif prev != chain.head:
        if prev == GENESIS:
            return f"a new chain{_of(server)} starts here: the records of the earlier chain do not lead to it"
        return (
            f"prev_hash does not link to the record before it{_of(server)}: "
            "a record was removed, inserted or reordered here"
        )
    chain.head = claimed
    chain.records += 1
    chain.last_line = position
    return None
