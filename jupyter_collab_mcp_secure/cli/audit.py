"""`jupyter collab-mcp audit verify|query|summary`: the compliance reviewer's commands."""

from __future__ import annotations

import argparse
import json
import sys

from ..audit.report_data import parse_when
from ..audit.review import (
    TABLE_COLUMNS,
    Filters,
    format_csv,
    format_summary,
    format_table,
    printable,
    read_records,
    summarize,
    table_row,
    unfinished_executions,
)
from ..audit.verify import VerifyReport, verify_files
from ..policy.glob import pattern_problem
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

    query = commands.add_parser(
        "query",
        help="list records matching filters, as a table, JSON lines or CSV; --verify checks their chains",
        description="With --verify, the chain of every server the answer is drawn from (all servers in the "
        "files, or those --server names) is checked whole, so an empty answer is vouched for too. Exit "
        "status as for verify: 0 intact (or not verified), 1 broken, 2 unreadable files, 3 gaps.",
    )
    _add_filters(query)
    form = query.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print matching records as JSON lines")
    form.add_argument(
        "--csv", action="store_true", help="print the table as CSV (escaped; cells never start a formula)"
    )
    query.add_argument(
        "--verify",
        action="store_true",
        help="check the hash chain(s) the answer comes from, per server; the verdict follows the table "
        "(on standard error with --json or --csv) and sets the exit status",
    )
    query.add_argument(
        "--expect-head",
        metavar="[SERVER=]HASH",
        action="append",
        default=[],
        help="the chain head the server logged (as for verify; implies --verify), once per server",
    )
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
        ("agent", "the verified agent id (a JWT agent claim)"),
        ("client", "the client name the MCP client declared itself (self-declared: never proof)"),
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
    parser.add_argument(
        "--path",
        type=_glob,
        metavar="GLOB",
        help="records touching a path matching this glob, as in policy rules: * and ? within one path "
        "segment, ** for any number of segments (notebooks/** is notebooks and everything below it)",
    )
    for flag, meaning in (("since", "from this time on"), ("until", "before this time")):
        parser.add_argument(
            f"--{flag}",
            type=_time,
            metavar="TIME",
            help=f"{meaning}: RFC 3339 / ISO 8601 (UTC if no zone), or that long ago: 30m, 12h, 7d, 2w",
        )


def _time(text: str):
    try:
        return parse_when(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}; or a span before now such as 7d or 12h") from None


def _glob(text: str) -> str:
    problem = pattern_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def _values(given: list[str]) -> frozenset[str]:
    return frozenset(value.strip() for item in given for value in item.split(",") if value.strip())


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(
        users=_values(args.user),
        agents=_values(args.agent),
        clients=_values(args.client),
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
    elif args.csv:
        rows = [table_row(record, unfinished, missing="") for record in matches]
        sys.stdout.write(format_csv(TABLE_COLUMNS, rows))
    else:
        print(format_table(TABLE_COLUMNS, [table_row(record, unfinished) for record in matches]))
    if not (args.verify or args.expect_head):
        return 0
    # Every chain the answer is drawn from, not only those of the matches: removed records leave no match.
    scope = {str(record.get("server") or "") for record in everything}
    if keep.servers:
        scope &= keep.servers
    verdict, lines = _verify_scope(args.files, scope, _expected_heads(args.expect_head))
    out = sys.stderr if args.json or args.csv else sys.stdout
    for line in lines:
        print(line, file=out)
    return verdict


def _verify_scope(files: list[str], scope: set[str], expect_head) -> tuple[int, list[str]]:
    """The exit status and what to say about the chains of these servers."""
    if not scope:
        return EXIT_BROKEN, ["verify: BROKEN: no chain of the servers asked about is in these files"]
    try:
        report = verify_files(files, expect_head=expect_head, servers=scope)
    except OSError as error:
        return EXIT_USAGE, [f"verify: error: {error}"]
    if report.broken:
        lines = [f"verify: BROKEN: {printable(str(report.broken))}"]
        if len(scope) > 1:
            # Which of the chains the break is in, and whether the others still hold.
            lines += [_chain_line(server, verify_files(files, servers={server})) for server in sorted(scope)]
        return EXIT_BROKEN, lines
    lines = [_chain_line(server, report) for server in sorted(scope)]
    lines += [f"verify: unreadable: {printable(str(gap))}" for gap in report.gaps]
    return (EXIT_GAPS if report.gaps else 0), lines


def _chain_line(server: str, report: VerifyReport) -> str:
    name = f"server {printable(server)}" if server else "the chain (no server named)"
    chain = report.chains.get(server)
    if report.broken:
        return f"verify: {name}: BROKEN: {printable(str(report.broken))}"
    if chain is None:
        return f"verify: {name}: BROKEN: no verifiable records"
    verdict = "intact, with unreadable lines (gaps)" if report.gaps else "intact"
    return f"verify: {name}: {verdict}: {chain.records} records, chain head {chain.head}"


def run_summary(args: argparse.Namespace) -> int:
    keep = _filters(args)
    try:
        summary = summarize(record for record in read_records(args.files, _warn) if keep(record))
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else format_summary(summary))
    return 0
