"""`jupyter collab-mcp audit report`: one self-contained HTML page a compliance reviewer can read.

Exit codes (also in docs/admin.md): 0 written, every chain intact; 1 written, a chain is
broken (the page says where, at the top); 2 unreadable files or a bad option.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..audit.report import render
from ..audit.report_data import build, parse_when

WRITTEN, BROKEN, UNUSABLE = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write an HTML report: chain verification, per principal and agent, timeline, denials, executions",
        description=(
            "Give the files oldest first (rotated files, then the live one). The page needs no network and "
            "runs no script. Exit 0: written, chains intact; 1: written, a chain is broken; 2: unusable input."
        ),
    )
    report.add_argument("files", nargs="+", metavar="FILE")
    report.add_argument("--since", type=_when, metavar="TIME", help="from this time on: ISO 8601 or 7d, 12h, 30m, 2w")
    report.add_argument("--until", type=_when, metavar="TIME", help="before this time: ISO 8601 or 7d, 12h, 30m, 2w")
    report.add_argument("-o", "--output", default="-", metavar="FILE", help="the HTML file (default: standard output)")
    report.set_defaults(run=run_report)


def _when(text: str):
    try:
        return parse_when(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_report(args: argparse.Namespace) -> int:
    try:
        data = build(args.files, since=args.since, until=args.until)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return UNUSABLE
    page = render(data)
    if args.output == "-":
        sys.stdout.write(page)
    else:
        try:
            # Names, paths and activity of people: readable by the reviewer only.
            descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "w", encoding="utf-8") as handle:
                handle.write(page)
        except OSError as error:
            print(f"error: {error}", file=sys.stderr)
            return UNUSABLE
        print(f"{args.output}: {'chains intact' if data.intact else 'BROKEN: ' + str(data.broken)}", file=sys.stderr)
    return WRITTEN if data.intact else BROKEN
