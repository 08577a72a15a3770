"""`jupyter collab-mcp ...`: the admin and reviewer commands, one subcommand family per module."""

from __future__ import annotations

import argparse
import sys

from . import audit, demo, policy, reference


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter collab-mcp",
        description=(
            "Check and explain gateway policies, verify and review the audit trail, run the demo, "
            "write the reference docs."
        ),
    )
    families = parser.add_subparsers(dest="family", required=True)
    policy.add_parser(families)
    audit.add_parser(families)
    demo.add_parser(families)
    reference.add_parser(families)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
