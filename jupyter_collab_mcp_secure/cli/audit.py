"""`jupyter collab-mcp audit verify|query|summary`: the compliance reviewer's commands."""

from __future__ import annotations

import argparse
import json
import sys

from ..audit.review import (
    TABLE_COLUMNS,
    Filters,
    format_summary,
    format_table,
    parse_time,
    printable,
    read_records,
    summarize,
    table_row,
    unfinished_executions,
)
from ..audit.verify import verify_files
from . import audit_report

EXIT_BROKEN = 1
EXIT_USAGE = 2
# The chain links, but unreadable lines (acknowledged by the server) sit in it.
EXIT_GAPS = 3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    family = subparsers.add_parser("audit", help="verify and review the audit trail")
    commands = family.add_subparsers(dest="command", required=True)

    verify = commands.add_parser(
        "verify",
        help="check the hash chain; exit 1 at the first broken link",
        description="Check audit files, oldest first (rotated files, then the live one), against "
        "their hash chains (one per server when servers share a stream). Exits 0 when intact, 1 at "
        "the first broken link, 2 on unreadable files, 3 when the chains link but unreadable lines "
        "(a torn or cut record the server skipped at a restart) sit in them.",
    )
    verify.add_argument("files", nargs="+", metavar="FILE")
    verify.add_argument(
        "--expect-head",
        metavar="[SERVER=]HASH",
        action="append",
        default=[],
        help="the chain head the server logged (catches records removed from the tail); with several "
        "servers' chains, SERVER=HASH once per server (SERVER as in the records, e.g. alice/)",
    )
    verify.set_defaults(run=run_verify)

    query = commands.add_parser("query", help="list records matching filters, as a table or JSON lines")
    _add_filters(query)
    query.add_argument("--json", action="store_true", help="print matching records as JSON lines")
    query.add_argument(
        "--unfinished",
        action="store_true",
        help="only executions that started and never finished (no end record with the same request_id)",
    )
    query.set_defaults(run=run_query)

    summary = commands.add_parser(
        "summary", help="per user: calls, denials, rate-limited calls, by tool; per path: who wrote, who executed"
    )
    _add_filters(summary)
    summary.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    summary.set_defaults(run=run_summary)
    audit_report.add_parser(commands)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    for name, meaning in (
        ("user", "the user a call acted for"),
        ("agent", "the agent id (verified) or declared client name"),
        ("tool", "tool name"),
        ("action", "read, write, execute or admin"),
        ("decision", "allow or deny"),
        ("outcome", "ok, error, denied, rate_limited, unauthenticated, client_disconnected"),
        (
            "event",
            "tool_call, execution_started, execution_finished, auth_failure, refusals_suppressed, "
            "policy_reload, audit_start, audit_gap (default: all but the last two)",
        ),
        ("server", "the server that wrote the record, as <user>/<server name> (alice/ for a default server)"),
    ):
        parser.add_argument(
            f"--{name}",
            action="append",
            default=[],
            metavar="VALUE",
            help=f"{meaning}; repeat or comma-separate for several",
        )
    parser.add_argument("--path", metavar="GLOB", help="records touching a path matching this glob (* also matches /)")
    parser.add_argument("--since", type=_time, metavar="TIME", help="from this time on (ISO 8601, UTC if no zone)")
    parser.add_argument("--until", type=_time, metavar="TIME", help="before this time (ISO 8601, UTC if no zone)")


def _time(text: str):
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _values(given: list[str]) -> frozenset[str]:
    return frozenset(value.strip() for item in given for value in item.split(",") if value.strip())


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(
        users=_values(args.user),
        agents=_values(args.agent),
        tools=_values(args.tool),
        actions=_values(args.action),
        decisions=_values(args.decision),
        outcomes=_values(args.outcome),
        events=_values(args.event),
        servers=_values(args.server),
        path_glob=args.path,
        since=args.since,
        until=args.until,
    )


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _expected_heads(given: list[str]) -> str | dict[str, str] | None:
    if not given:
        return None
    if len(given) == 1 and "=" not in given[0]:
        return given[0]
    return dict(item.rsplit("=", 1) if "=" in item else ("", item) for item in given)


def run_verify(args: argparse.Namespace) -> int:
    try:
        report = verify_files(args.files, expect_head=_expected_heads(args.expect_head))
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if report.broken:
        print(f"BROKEN: {printable(str(report.broken))}")
        print(f"{report.records} records verified before the break")
        return EXIT_BROKEN
    verdict = "GAPS" if report.gaps else "OK"
    print(f"{verdict}: {report.records} records in {len(report.files)} file(s), {len(report.chains)} chain(s)")
    for gap in report.gaps:
        print(f"unreadable: {printable(str(gap))}")
    for chain in report.chains.values():
        if len(report.chains) > 1:
            print(f"server {printable(chain.server) or '-'}: {chain.records} records")
        print(f"chain head: {chain.head}")
        print(f"chain starts after: {chain.chain_start}")
    return EXIT_GAPS if report.gaps else 0


def run_query(args: argparse.Namespace) -> int:
    try:
        everything = list(read_records(args.files, _warn))
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    unfinished = unfinished_executions(everything)
    keep = _filters(args)
    if args.unfinished:
        keep.unfinished = frozenset(unfinished)
    matches = [record for record in everything if keep(record)]
    if args.json:
        for record in matches:
            if record.get("request_id") in unfinished and record.get("event") == "execution_started":
                record = {**record, "unfinished": True}
            print(json.dumps(record, sort_keys=True))
    else:
        print(format_table(TABLE_COLUMNS, [table_row(record, unfinished) for record in matches]))
    return 0


def run_summary(args: argparse.Namespace) -> int:
    keep = _filters(args)
    try:
        summary = summarize(record for record in read_records(args.files, _warn) if keep(record))
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else format_summary(summary))
    return 0
