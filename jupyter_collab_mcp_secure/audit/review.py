"""Reading audit files for a reviewer: filter records (query) and aggregate them (summary).

Review never trusts what it reads: lines that do not parse are reported and
skipped (run `audit verify` to prove the files intact).
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .hashchain import START_EVENT

CHAIN_MARKERS = frozenset({START_EVENT, "audit_gap"})


def parse_time(text: str) -> datetime:
    """RFC 3339 / ISO 8601 time or date; naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class Filters:
    users: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    decisions: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    path_glob: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __call__(self, record: dict[str, Any]) -> bool:
        event = record.get("event")
        if self.events:
            if event not in self.events:
                return False
        elif event in CHAIN_MARKERS:
            return False
        checks: list[tuple[frozenset[str], Iterable[Any]]] = [
            (self.users, (record.get("user"),)),
            (self.agents, (record.get("agent"), record.get("declared_client"))),
            (self.tools, (record.get("tool"),)),
            (self.actions, (record.get("action"),)),
            (self.decisions, (record.get("decision"),)),
            (self.outcomes, (record.get("outcome"),)),
        ]
        for wanted, values in checks:
            if wanted and not wanted.intersection(v for v in values if isinstance(v, str)):
                return False
        if self.path_glob is not None:
            paths = record.get("paths") or []
            if not any(fnmatch.fnmatchcase(path, self.path_glob) for path in paths if isinstance(path, str)):
                return False
        if self.since or self.until:
            try:
                moment = parse_time(str(record.get("ts", "")))
            except ValueError:
                return False
            if self.since and moment < self.since:
                return False
            if self.until and moment >= self.until:
                return False
        return True


def read_records(paths: Iterable[str | Path], on_bad_line: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    record = json.loads(raw)
                except ValueError:
                    on_bad_line(f"{path} line {number}: not JSON, skipped")
                    continue
                if isinstance(record, dict):
                    yield record
                else:
                    on_bad_line(f"{path} line {number}: not a record, skipped")


TABLE_COLUMNS = ("ts", "event", "user", "agent", "tool", "action", "paths", "decision", "outcome", "duration_ms")


def table_row(record: dict[str, Any]) -> list[str]:
    row = []
    for column in TABLE_COLUMNS:
        value = record.get(column)
        if column == "agent" and not value and record.get("declared_client"):
            value = f"{record['declared_client']} (declared)"
        if column == "user" and not value and record.get("remote_ip"):
            value = f"@{record['remote_ip']}"
        if isinstance(value, list):
            value = ",".join(map(str, value))
        row.append("-" if value is None or value == "" else str(value))
    return row


def format_table(header: Iterable[str], rows: list[list[str]]) -> str:
    header = [str(cell).upper() for cell in header]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in [header, *rows]]
    return "\n".join(lines)


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per user: calls, denials, rate-limited calls, errors, calls by tool. Per path: who wrote,
    who executed, who was denied. Per remote address: authentication failures."""
    users: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "denied": 0, "rate_limited": 0, "errors": 0, "by_tool": Counter()}
    )
    paths: dict[str, dict[str, Counter]] = defaultdict(
        lambda: {"wrote": Counter(), "executed": Counter(), "denied": Counter()}
    )
    auth_failures: Counter = Counter()
    for record in records:
        event = record.get("event")
        if event == "auth_failure":
            auth_failures[str(record.get("remote_ip"))] += 1
            continue
        if event != "tool_call":
            continue
        user = str(record.get("user"))
        outcome = record.get("outcome")
        entry = users[user]
        entry["calls"] += 1
        entry["by_tool"][str(record.get("tool"))] += 1
        if outcome == "denied":
            entry["denied"] += 1
        elif outcome == "rate_limited":
            entry["rate_limited"] += 1
        elif outcome != "ok":
            entry["errors"] += 1
        column = _path_column(record.get("action"), outcome)
        if column:
            for path in record.get("paths") or []:
                paths[str(path)][column][user] += 1
    return {
        "users": {
            user: {**entry, "by_tool": dict(entry["by_tool"].most_common())} for user, entry in sorted(users.items())
        },
        "paths": {
            path: {column: dict(counts.most_common()) for column, counts in columns.items()}
            for path, columns in sorted(paths.items())
        },
        "auth_failures": dict(auth_failures.most_common()),
    }


def _path_column(action: Any, outcome: Any) -> str | None:
    if outcome == "denied":
        return "denied"
    if outcome != "ok":
        return None
    return {"write": "wrote", "execute": "executed"}.get(action)


def format_summary(summary: dict[str, Any]) -> str:
    def counts(mapping: dict[str, int]) -> str:
        return ", ".join(f"{name} ({count})" for name, count in mapping.items()) or "-"

    user_rows = [
        [user, str(e["calls"]), str(e["denied"]), str(e["rate_limited"]), str(e["errors"]), counts(e["by_tool"])]
        for user, e in summary["users"].items()
    ]
    path_rows = [
        [path, counts(c["wrote"]), counts(c["executed"]), counts(c["denied"])] for path, c in summary["paths"].items()
    ]
    sections = [
        "Per user",
        format_table(("user", "calls", "denied", "rate_limited", "errors", "calls by tool"), user_rows),
        "",
        "Per path",
        format_table(("path", "wrote", "executed", "denied"), path_rows),
    ]
    if summary["auth_failures"]:
        sections += [
            "",
            "Authentication failures",
            format_table(("remote address", "failures"), [[ip, str(n)] for ip, n in summary["auth_failures"].items()]),
        ]
    return "\n".join(sections)
