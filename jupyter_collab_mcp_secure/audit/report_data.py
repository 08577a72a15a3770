"""What the reviewer's report shows, computed from the trail: chains, per-principal figures, executions, a timeline.

The figures count as `audit summary` does (a call is a `tool_call` record; a denial is
outcome `denied`; a write or an execution is a call with that action that ended `ok`),
so the report and the summary of the same trail agree.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .review import Filters, parse_time, read_records
from .verify import Break, verify_files

EXECUTION_STARTED = "execution_started"
EXECUTION_FINISHED = "execution_finished"
# Calls refused before any code ran: no execution to pair.
_NOT_RUN = frozenset({"denied", "rate_limited"})
_RELATIVE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Timeline bucket widths, smallest first: the first giving at most MAX_BUCKETS buckets is used.
_WIDTHS = [
    timedelta(**{unit: n})
    for unit, n in [
        ("minutes", 1),
        ("minutes", 5),
        ("minutes", 15),
        ("hours", 1),
        ("hours", 6),
        ("days", 1),
        ("weeks", 1),
        ("weeks", 4),
    ]
]
MAX_BUCKETS = 60
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m`, `2w` (that long before now) or an ISO 8601 time (UTC if no zone)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = relative.groups()
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[unit]: int(amount)})
    return parse_time(text)


@dataclass(frozen=True)
class Chain:
    server: str
    records: int
    head: str | None
    chain_start: str | None


@dataclass
class Figures:
    calls: int = 0
    denied: int = 0
    rate_limited: int = 0
    errors: int = 0
    writes: int = 0
    executions: int = 0
    documents: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Execution:
    request_id: str
    start: dict[str, Any] | None
    end: dict[str, Any] | None

    @property
    def first(self) -> dict[str, Any]:
        return self.start or self.end or {}


@dataclass(frozen=True)
class Bucket:
    start: datetime
    end: datetime
    calls: int
    denials: int


@dataclass
class ReportData:
    files: list[str]
    since: datetime | None
    until: datetime | None
    chains: list[Chain]
    broken: Break | None
    first: datetime | None = None
    last: datetime | None = None
    principals: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    agents: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    failures: list[dict[str, Any]] = field(default_factory=list)
    auth_failures: list[dict[str, Any]] = field(default_factory=list)
    # Refused outside the MCP tools: Jupyter's REST routes and RTC rooms (the server-wide Authorizer).
    other_refusals: list[dict[str, Any]] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    suppressed: Counter = field(default_factory=Counter)
    timeline: list[Bucket] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.broken is None


def agent_label(record: dict[str, Any]) -> str:
    """The verified agent id, else the client's own name marked as self-declared (never trusted)."""
    if record.get("agent"):
        return str(record["agent"])
    if record.get("declared_client"):
        return f"{record['declared_client']} (self-declared)"
    return "(no agent)"


def build(paths: list[str | Path], since: datetime | None = None, until: datetime | None = None) -> ReportData:
    """Read and verify the files (OSError when one cannot be read) and compute every section."""
    chains, broken = _verify(paths)
    data = ReportData([str(p) for p in paths], since, until, chains, broken)
    keep = Filters(since=since, until=until)
    records = [r for r in read_records(paths, data.skipped_lines.append) if keep(r)]
    moments = []
    starts: dict[str, dict[str, Any]] = {}
    finished: dict[str, dict[str, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}
    for record in records:
        moment = _moment(record)
        if moment is not None:
            moments.append(moment)
        event = record.get("event")
        request_id = record.get("request_id")
        if event == "tool_call":
            _count(data, record)
            if record.get("action") == "execute" and isinstance(request_id, str):
                calls[request_id] = record
        elif event == "auth_failure":
            data.auth_failures.append(record)
        elif event == "policy_reload":
            data.reloads.append(record)
        elif event == EXECUTION_STARTED and isinstance(request_id, str):
            starts[request_id] = record
        elif event == EXECUTION_FINISHED and isinstance(request_id, str):
            finished[request_id] = record
        elif record.get("outcome") == "denied":
            data.other_refusals.append(record)
        elif event == "refusals_suppressed" and isinstance(record.get("counts"), dict):
            for key, reasons in record["counts"].items():
                for reason, count in reasons.items() if isinstance(reasons, dict) else ():
                    data.suppressed[(str(key), str(reason))] += count if isinstance(count, int) else 0
    data.executions = _executions(starts, finished, calls)
    if moments:
        data.first, data.last = min(moments), max(moments)
    data.timeline = _timeline(records, since or data.first, until or data.last)
    return data


def _verify(paths: list[str | Path]) -> tuple[list[Chain], Break | None]:
    report = verify_files(paths)
    # One chain per server when the verifier tells them apart, else the files' one chain.
    per_server = getattr(report, "chains", None)
    if per_server is None:
        return [Chain("", report.records, report.head, report.chain_start)], report.broken
    return [Chain(c.server, c.records, c.head, c.chain_start) for c in per_server.values()], report.broken


def _count(data: ReportData, record: dict[str, Any]) -> None:
    outcome = record.get("outcome")
    action = record.get("action")
    paths = [str(p) for p in record["paths"]] if isinstance(record.get("paths"), list) else []
    for figures in (data.principals[str(record.get("user"))], data.agents[agent_label(record)]):
        figures.calls += 1
        if outcome == "denied":
            figures.denied += 1
        elif outcome == "rate_limited":
            figures.rate_limited += 1
        elif outcome != "ok":
            figures.errors += 1
        else:
            figures.writes += action == "write"
            figures.executions += action == "execute"
            figures.documents.update(paths)
    if outcome != "ok":
        data.failures.append(record)


def _executions(
    starts: dict[str, dict[str, Any]], finished: dict[str, dict[str, Any]], calls: dict[str, dict[str, Any]]
) -> list[Execution]:
    """Each run's start and end record. A call whose client went away ends with its
    `execution_finished`; trails older than `execution_started` show calls without a start."""
    ran = [
        rid for rid, call in calls.items() if call.get("outcome") not in _NOT_RUN and call.get("decision") == "allow"
    ]
    executions = []
    for request_id in dict.fromkeys([*starts, *ran]):
        call = calls.get(request_id)
        end = finished.get(request_id) or (call if call and call.get("outcome") != "client_disconnected" else None)
        executions.append(Execution(request_id, starts.get(request_id), end))
    return sorted(executions, key=lambda e: str(e.first.get("ts", "")))


def _timeline(records: Iterable[dict[str, Any]], start: datetime | None, end: datetime | None) -> list[Bucket]:
    if start is None or end is None or end < start:
        return []
    width = next((w for w in _WIDTHS if (end - start) / w < MAX_BUCKETS), _WIDTHS[-1])
    # Buckets on round times (whole minutes, hours, days), as a reader expects on an axis.
    start = _EPOCH + (start - _EPOCH) // width * width
    count = int((end - start) / width) + 1
    calls, denials = [0] * count, [0] * count
    for record in records:
        moment = _moment(record)
        if record.get("event") != "tool_call" or moment is None or not start <= moment <= end:
            continue
        index = min(int((moment - start) / width), count - 1)
        calls[index] += 1
        denials[index] += record.get("outcome") == "denied"
    return [Bucket(start + i * width, start + (i + 1) * width, calls[i], denials[i]) for i in range(count)]


def _moment(record: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(str(record.get("ts", "")))
    except ValueError:
        return None
