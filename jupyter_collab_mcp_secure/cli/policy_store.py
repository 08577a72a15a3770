"""`jupyter collab-mcp policy push|pull`: move a policy between a file and a policy store.

Exit codes (also in docs/policies.md):
  push: 0 pushed; 2 usage error; 3 the file fails `policy check` (nothing written); 4 the store cannot be written
  pull: 0 written; 2 usage error; 3 the store holds no valid policy; 4 the store cannot be read
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ..policy.source import PolicyError, load_files

PUSHED, USAGE, INVALID, UNREACHABLE = 0, 2, 3, 4


def add_parsers(commands: argparse._SubParsersAction, default_model: str) -> None:
    push = commands.add_parser(
        "push",
        help="check a policy file and make it the store's baseline",
        description=(
            "Run `policy check` on FILE and, when it has no errors, replace the policy in the store with it "
            "in one transaction; every server using the store reloads it within seconds. The store keeps "
            "canonical text (rules, then role links; no comments): the sha256 printed is the one servers "
            "audit. Exit 0: pushed; 2: usage; 3: FILE fails the check, nothing written; 4: store error."
        ),
    )
    push.add_argument("policy", help="the policy CSV file")
    push.add_argument("--store", required=True, help="the SQLAlchemy URL of the store (as c.CollabMCP.policy_store)")
    push.add_argument("--model", default=default_model, help="the Casbin model (default: bundled)")
    push.set_defaults(run=run_push)

    pull = commands.add_parser(
        "pull",
        help="write the store's policy to a file (or stdout)",
        description="Exit 0: written; 2: usage; 3: the store holds no valid policy; 4: the store cannot be read.",
    )
    pull.add_argument("--store", required=True, help="the SQLAlchemy URL of the store")
    pull.add_argument("-o", "--output", help="the file to write (atomically); default: stdout")
    pull.add_argument("--model", default=default_model, help="the Casbin model the text is checked against")
    pull.set_defaults(run=run_pull)


async def _then_close(store: Any, operation: Coroutine[Any, Any, str]) -> str:
    try:
        return await operation
    finally:
        await store.close()


def _store(url: str) -> Any:
    try:
        from ..policy.store import PolicyStore
    except ImportError as error:
        print(f"the policy store needs the `store` extra: {error}", file=sys.stderr)
        return None
    try:
        return PolicyStore(url)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy refuses a malformed URL with several error types
        print(f"not a usable store URL: {error}", file=sys.stderr)
        return None


def run_push(args: argparse.Namespace) -> int:
    from .policy import INVALID as CHECK_INVALID
    from .policy import run_check

    store = _store(args.store)
    if store is None:
        return USAGE
    if run_check(args) == CHECK_INVALID:
        print(f"{args.policy}: not pushed", file=sys.stderr)
        return INVALID
    snapshot = load_files(args.model, args.policy)

    try:
        sha256 = asyncio.run(_then_close(store, store.push(snapshot)))
    except PolicyError as error:
        print(str(error), file=sys.stderr)
        return UNREACHABLE
    print(f"{store.describe()}: pushed {len(snapshot.rules)} rules, {len(snapshot.links)} role links; sha256 {sha256}")
    return PUSHED


def run_pull(args: argparse.Namespace) -> int:
    store = _store(args.store)
    if store is None:
        return USAGE

    try:
        text = asyncio.run(_then_close(store, store.read_text()))
    except PolicyError as error:
        print(str(error), file=sys.stderr)
        return UNREACHABLE
    try:
        # The text a server would refuse is still written, so an admin can repair it, but the exit says so.
        store.snapshot_of(Path(args.model), text)
        status = PUSHED
    except PolicyError as error:
        print(f"{store.describe()}: the stored policy is INVALID: {error}", file=sys.stderr)
        status = INVALID
    if args.output:
        _write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return status


def _write_atomically(path: Path, text: str) -> None:
    # Servers watching the file must never read it half-written.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
