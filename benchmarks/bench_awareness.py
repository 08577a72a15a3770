"""p50/p95 of get_online_users and get_user_cursors with 20 websocket collaborators in one notebook.

Run: .venv/bin/python benchmarks/bench_awareness.py [--collaborators 20] [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from awareness_fixtures import user_state
from harness import Collaborator, call, mcp_client, start_server, write_notebook
from pycrdt import Array, Assoc


def lab_cursor(ytext, index: int) -> dict:
    raw = ytext.sticky_index(index, Assoc.AFTER).to_json()
    position = {"type": raw.get("type"), "tname": raw.get("tname"), "item": raw.get("item"), "assoc": 0}
    return {"anchor": position, "head": position, "primary": True, "empty": True}


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"{name:<18} p50 {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   (n={len(ordered)})"


async def timed(client, tool: str, calls: int, **arguments) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call(client, tool, **arguments)
        samples.append(time.perf_counter() - started)
    return samples


async def main(collaborators: int, calls: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-awareness-"))
    path = "bench.ipynb"
    write_notebook(workdir / "root" / path, [f"cell_{n} = {n}\nprint(cell_{n})" for n in range(30)])
    server = start_server(workdir)
    try:
        async with contextlib.AsyncExitStack() as stack:
            peers = [await stack.enter_async_context(Collaborator.join(server, path)) for _ in range(collaborators)]
            for number, peer in enumerate(peers):
                cells = peer.doc.get("cells", type=Array)
                source = cells[number % len(cells)]["source"]
                await peer.set_awareness(
                    user_state(
                        f"user{number}", f"User {number}", cursors=[lab_cursor(source, number % len(str(source)))]
                    )
                )
            client = await stack.enter_async_context(mcp_client(server))
            while len((await call(client, "get_user_cursors", document_path=path))["users"]) < collaborators:
                await asyncio.sleep(0.05)
            await timed(client, "get_online_users", 20)
            online = await timed(client, "get_online_users", calls)
            cursors = await timed(client, "get_user_cursors", calls, document_path=path)
            print(f"{collaborators} collaborators in one 30-cell notebook, 2026-07-28 mode, same machine")
            print(summary("get_online_users", online))
            print(summary("get_user_cursors", cursors))
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--collaborators", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.collaborators, options.calls))
