"""Reading audit files for a reviewer: filter records (query) and aggregate them (summary).

Review never trusts what it reads: lines that do not parse are reported and
skipped (run `audit verify` to prove the files intact), and every value printed
for a person is escaped, so a caller-chosen name cannot forge or hide a row.
One stream may hold many servers' records (a hub's log): the summary is per server.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..policy.glob import path_match
from .hashchain import START_EVENT

CHAIN_MARKERS = frozenset({START_EVENT, "audit_gap"})
EXECUTION_STARTED = "execution_started"
UNFINISHED = "unfinished"
# Control, format (bidi overrides, zero-width), lone surrogate and line/paragraph separator characters.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: str) -> str:
    """`text` with every character that could move the cursor, break a line or recolour the
    terminal shown as an escape (backslashes doubled, so escapes cannot be forged)."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in _UNPRINTABLE:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def unfinished_executions(records: Iterable[dict[str, Any]]) -> set[str]:
    """request_ids of `execution_started` records that no end record answers (the server died
    mid-cell, or the records are missing). A call whose client went away ends with its
    `execution_finished`."""
    started: set[str] = set()
    ended: set[str] = set()
    for record in records:
        request_id = record.get("request_id")
        if not isinstance(request_id, str):
            continue
        event = record.get("event")
        if event == EXECUTION_STARTED:
            started.add(request_id)
        elif event == "execution_finished" or (event == "tool_call" and record.get("outcome") != "client_disconnected"):
            ended.add(request_id)
    return started - ended


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
    # Verified agent ids only: a client's self-declared name is `clients`.
    agents: frozenset[str] = frozenset()
    clients: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    decisions: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    servers: frozenset[str] = frozenset()
    path_glob: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Only executions that started and never ended (request ids from unfinished_executions).
    unfinished: frozenset[str] | None = None

    def __call__(self, record: dict[str, Any]) -> bool:
        event = record.get("event")
        if self.unfinished is not None and (
            event != EXECUTION_STARTED or record.get("request_id") not in self.unfinished
        ):
            return False
        if self.events:
            if event not in self.events:
                return False
        elif event in CHAIN_MARKERS:
            return False
        checks: list[tuple[frozenset[str], Iterable[Any]]] = [
            (self.users, (record.get("user"),)),
            (self.agents, (record.get("agent"),)),
            (self.clients, (record.get("declared_client"),)),
            (self.tools, (record.get("tool"),)),
            (self.actions, (record.get("action"),)),
            (self.decisions, (record.get("decision"),)),
            (self.outcomes, (record.get("outcome"),)),
            (self.servers, (record.get("server"),)),
        ]
        for wanted, values in checks:
            if wanted and not wanted.intersection(v for v in values if isinstance(v, str)):
                return False
        if self.path_glob is not None:
            paths = record.get("paths") or []
            # The policy's glob semantics, so a reviewer's pattern selects what a rule with it would.
            if not any(path_match(path, self.path_glob) for path in paths if isinstance(path, str)):
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


TABLE_COLUMNS = (
    "ts",
    "event",
    "user",
    "agent",
    "tool",
    "action",
    "paths",
    "decision",
    "outcome",
    "duration_ms",
    "server",
)


def table_row(
    record: dict[str, Any], unfinished: frozenset[str] | set[str] = frozenset(), missing: str = "-"
) -> list[str]:
    if record.get("event") == EXECUTION_STARTED:
        record = {**record, "outcome": UNFINISHED if record.get("request_id") in unfinished else "started"}
    row = []
    for column in TABLE_COLUMNS:
        value = record.get(column)
        if column == "agent" and not value and record.get("declared_client"):
            value = f"{record['declared_client']} (declared)"
        if column == "user" and not value and record.get("remote_ip"):
            value = f"@{record['remote_ip']}"
        if isinstance(value, list):
            value = ",".join(map(str, value))
        row.append(missing if value is None or value == "" else str(value))
    return row


def format_table(header: Iterable[str], rows: list[list[str]]) -> str:
    header = [printable(str(cell).upper()) for cell in header]
    rows = [[printable(cell) for cell in cells] for cells in rows]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in [header, *rows]]
    return "\n".join(lines)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@")


def csv_cell(text: str) -> str:
    """`text` escaped as in the table, and never a formula: a leading quote makes it text."""
    text = printable(text)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_STARTS) else text


def format_csv(header: Iterable[str], rows: Iterable[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(header))
    writer.writerows([csv_cell(cell) for cell in cells] for cells in rows)
    return out.getvalue()


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per server (the records' `server` field): per user, calls, denials, rate-limited calls,
    errors, calls by tool; per path, who wrote, who executed, who was denied; per remote
    address, authentication failures; refusals counted in `refusals_suppressed` records; and
    executions that started and never ended."""
    servers: dict[str, _ServerSummary] = defaultdict(_ServerSummary)
    for record in records:
        servers[str(record.get("server") or "")].add(record)
    return {"servers": {server: summary.result() for server, summary in sorted(servers.items())}}


class _ServerSummary:
    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"calls": 0, "denied": 0, "rate_limited": 0, "errors": 0, "by_tool": Counter()}
        )
        self.paths: dict[str, dict[str, Counter]] = defaultdict(
            lambda: {"wrote": Counter(), "executed": Counter(), "denied": Counter()}
        )
        self.auth_failures: Counter = Counter()
        self.suppressed: dict[str, Counter] = defaultdict(Counter)
        self.started: dict[str, dict[str, Any]] = {}
        self.ended: set[str] = set()

    def add(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        request_id = record.get("request_id")
        if event == "auth_failure":
            self.auth_failures[str(record.get("remote_ip"))] += 1
        elif event == "refusals_suppressed" and isinstance(record.get("counts"), dict):
            for key, reasons in record["counts"].items():
                for reason, count in reasons.items() if isinstance(reasons, dict) else ():
                    self.suppressed[str(key)][str(reason)] += count if isinstance(count, int) else 0
        elif event == EXECUTION_STARTED and isinstance(request_id, str):
            self.started[request_id] = record
        elif event == "execution_finished" and isinstance(request_id, str):
            self.ended.add(request_id)
        elif event == "tool_call":
            if isinstance(request_id, str) and record.get("outcome") != "client_disconnected":
                self.ended.add(request_id)
            self._add_call(record)

    def _add_call(self, record: dict[str, Any]) -> None:
        user = str(record.get("user"))
        outcome = record.get("outcome")
        entry = self.users[user]
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
                self.paths[str(path)][column][user] += 1

    def result(self) -> dict[str, Any]:
        return {
            "users": {
                user: {**entry, "by_tool": dict(entry["by_tool"].most_common())}
                for user, entry in sorted(self.users.items())
            },
            "paths": {
                path: {column: dict(counts.most_common()) for column, counts in columns.items()}
                for path, columns in sorted(self.paths.items())
            },
            "auth_failures": dict(self.auth_failures.most_common()),
            "refusals_suppressed": {key: dict(reasons) for key, reasons in sorted(self.suppressed.items())},
            "unfinished_executions": [
                {field: record.get(field) for field in ("ts", "user", "agent", "tool", "paths", "request_id")}
                for request_id, record in self.started.items()
                if request_id not in self.ended
            ],
        }


def _path_column(action: Any, outcome: Any) -> str | None:
    if outcome == "denied":
        return "denied"
    if outcome != "ok":
        return None
    return {"write": "wrote", "execute": "executed"}.get(action)


def format_summary(summary: dict[str, Any]) -> str:
    sections: list[str] = []
    for server, part in summary["servers"].items():
        if sections:
            sections.append("")
        sections += [f"=== Server {server or '(not named in the records)'}", *_format_server(part)]
    return "\n".join(sections)


def _format_server(summary: dict[str, Any]) -> list[str]:
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
    if summary["refusals_suppressed"]:
        sections += [
            "",
            "Refusals counted, not written one by one (past the refusal budget)",
            format_table(
                ("principal or @address", "refusals by reason"),
                [[key, counts(reasons)] for key, reasons in summary["refusals_suppressed"].items()],
            ),
        ]
    if summary["unfinished_executions"]:
        sections += [
            "",
            "Executions started and never finished (the server stopped mid-cell?)",
            format_table(
                ("ts", "user", "agent", "tool", "paths", "request_id"),
                [
                    [
                        "-" if e[f] is None else ",".join(map(str, e[f])) if isinstance(e[f], list) else str(e[f])
                        for f in ("ts", "user", "agent", "tool", "paths", "request_id")
                    ]
                    for e in summary["unfinished_executions"]
                ],
            ),
        ]
    return sections
