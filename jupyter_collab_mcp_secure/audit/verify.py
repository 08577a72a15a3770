"""Checks audit files against their hash chain and reports the first broken link.

Files are given oldest first (rotated files, then the live one). What is caught:
any changed byte (the line is no longer the canonical rendering of its record, or
its hash no longer matches), a removed, inserted or reordered line (the next
`prev_hash` does not link), lines removed from the head of the first file (it no
longer begins with a chain start record), and, given the head the server logged,
lines removed from the tail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
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
class VerifyReport:
    files: list[str] = field(default_factory=list)
    records: int = 0
    # The hash the first record links to: GENESIS, or where earlier files would end.
    chain_start: str | None = None
    head: str | None = None
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_files(paths: Iterable[str | Path], expect_head: str | None = None) -> VerifyReport:
    report = VerifyReport()
    last_position = ("", 0)
    for name, number, raw, complete in _lines(paths, report):
        last_position = (name, number)
        problem = (
            _check_line(raw, report)
            if complete
            else ("the line is incomplete (no newline): the file was cut or a write was torn")
        )
        if problem:
            report.broken = Break(name, number, problem)
            return report
    if expect_head is not None and report.head != expect_head.strip().lower():
        name, number = last_position if report.files else ("", 0)
        report.broken = Break(
            name,
            number,
            f"the chain ends at {report.head}, not at the expected head {expect_head}: "
            "records are missing from the tail (or the files were rewritten)",
        )
    return report


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


def _check_line(raw: bytes, report: VerifyReport) -> str | None:
    try:
        record = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return "the line is not valid JSON: its bytes were changed"
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("hash"), str)
        or not isinstance(record.get("prev_hash"), str)
    ):
        return "the line is not an audit record (no hash / prev_hash)"
    if canonical(record).encode("ascii") != raw:
        return "the line is not in canonical form: its bytes were changed"
    claimed = record.pop("hash")
    if record_hash(record) != claimed:
        return "the record's hash does not match its content: the record was changed"
    prev = record["prev_hash"]
    if report.head is None:
        if prev != GENESIS and record.get("event") != START_EVENT:
            return "the first record is not a chain start: records before it are missing"
        report.chain_start = prev
    elif prev != report.head:
        if prev == GENESIS:
            return "a new chain starts here: the records of the earlier chain do not lead to it"
        return "prev_hash does not link to the record before it: a record was removed, inserted or reordered here"
    report.head = claimed
    report.records += 1
    return None
