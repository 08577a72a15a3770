"""This project's server under many agents, and under a burst of long reads, with its memory before and after.

One server (127.0.0.1, JWT identities, its own policy, every feature on) and, repeated --repeats times:

(a) Agents: --agents agents over --users users (JWT tokens; half the agents in the 2025-11-25 handshake era,
    half in the 2026-07-28 per-request era, every user has one of each) insert cells into one notebook at random
    positions for --seconds, each pausing 0.25-0.65 s between calls, while 2 people type into it (websocket
    collaborators, one character every 0.08-0.25 s). Before that, in the same run, one client inserts alone
    (back to back, the people typing). Reports insert p50/p95 under load, the single-client insert p50 and the
    ratios, errors, and whether anything was lost: every inserted cell and every typed character must be in
    the server's notebook and in both people's copies.
(b) Readers: one client reads a 1,000-cell notebook (live room) back to back, then --readers clients do so
    together for --burst-seconds. Reports total throughput against the single client's rate, and the burst's
    p50/p95 (and p95 over its own p50).

Server RSS is printed at the start and after each repetition (growth across repetitions is what to watch).

    .venv/bin/python benchmarks/bench_load.py [--seconds 20] [--burst-seconds 10] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_ydoc import YNotebook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from awareness_fixtures import jwt_config, token_for  # noqa: E402
from benchlib import LabCollaborator, cpu_seconds, percentiles, rss_mb  # noqa: E402
from harness import (  # noqa: E402
    LEGACY,
    MODERN,
    Collaborator,
    JupyterServer,
    audit_records,
    mcp_client,
    start_server,
    write_notebook,
)

LOAD_CELLS = 20  # the load notebook's cells at the start, the 2 people's cells first
READ_CELLS = 1000
CONVERGE_SECONDS = 30


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    inserted: set[str] = field(default_factory=set)


async def timed_insert(client, path: str, position: int, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        result = await client.call_tool(
            "insert_notebook_cell", {"path": path, "content": f"# {uuid.uuid4().hex}", "position": position}
        )
    except Exception as error:  # a transport failure is an error to count, not a reason to stop the run
        tally.errors[type(error).__name__] += 1
        return
    tally.latencies_ms.append((time.perf_counter() - started) * 1000)
    if result.is_error:
        tally.errors[(result.structured_content or {}).get("error", {}).get("code", "unknown")] += 1
    else:
        tally.inserted.add(result.structured_content["cell_id"])


async def agent(
    server: JupyterServer,
    identity: tuple[str, str, str],
    path: str,
    ready: list[str],
    go: asyncio.Future[float],
    tally: Tally,
) -> None:
    """Connect, wait for the start (the future holds the time to stop), then insert with pauses until then."""
    token, mode, name = identity
    async with mcp_client(server, token, mode=mode, client_name=name) as client:
        await client.list_tools()
        ready.append(name)
        stop = await go
        while True:
            pause = random.uniform(0.25, 0.65)
            if time.monotonic() + pause >= stop:
                return
            await asyncio.sleep(pause)
            await timed_insert(client, path, random.randint(0, LOAD_CELLS), tally)


async def person(collaborator: Collaborator, cell_index: int, done: asyncio.Event) -> str:
    """Type into one cell until `done`; returns what was typed. Agents insert around the cell, never into it."""
    source = YNotebook(collaborator.doc).ycells[cell_index]["source"]
    typed = []
    while not done.is_set():
        character = random.choice("abcdefghij ")
        source += character
        typed.append(character)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), random.uniform(0.08, 0.25))
    return "".join(typed)


def cells_of(collaborator: Collaborator) -> dict[str, str]:
    return {str(cell["id"]): str(cell["source"]) for cell in YNotebook(collaborator.doc).ycells}


async def server_cells(server: JupyterServer, path: str) -> dict[str, str]:
    async with mcp_client(server, mode=LEGACY) as client:
        result = await client.call_tool("get_notebook", {"path": path, "include_collaboration_state": False})
    return {cell["id"]: cell["source"] for cell in result.structured_content["cells"]}


async def lost_in(view: Callable[[], Awaitable[dict[str, str]]], expected: set[str], typed: dict[str, str]) -> str:
    """What this view lacks, once it has caught up (edits still in flight are waited for); empty if nothing."""
    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        cells = await view()
        missing = len(expected - cells.keys())
        wrong_text = [cell for cell, text in typed.items() if cells.get(cell) != text]
        if not missing and not wrong_text and len(cells) == LOAD_CELLS + len(expected):
            return ""
        if time.monotonic() > deadline:
            return f"{len(cells)} cells, {missing} inserted cells missing, typing lost in cells {wrong_text}"
        await asyncio.sleep(0.2)


async def load_run(
    server: JupyterServer, tokens: list[tuple[str, str, str]], single_token: str, path: str, args
) -> None:
    async with LabCollaborator.join(server, path) as first, LabCollaborator.join(server, path) as second:
        typists_cells = [str(YNotebook(first.doc).ycells[index]["id"]) for index in (0, 1)]
        done = asyncio.Event()
        typing = [asyncio.create_task(person(peer, index, done)) for index, peer in enumerate((first, second))]
        single = Tally()
        async with mcp_client(server, single_token, mode=LEGACY, client_name="single") as client:
            for _ in range(args.single):
                await timed_insert(client, path, random.randint(0, LOAD_CELLS), single)
        load, ready, go = Tally(), [], asyncio.get_running_loop().create_future()
        agents = asyncio.gather(*(agent(server, identity, path, ready, go, load) for identity in tokens))
        while len(ready) < len(tokens) and not agents.done():  # the clock starts once every agent is connected
            await asyncio.sleep(0.05)
        pid = server.proc.pid
        cpu_before, server_before, started = time.process_time(), cpu_seconds(pid), time.monotonic()
        go.set_result(started + args.seconds)
        await agents
        elapsed = time.monotonic() - started
        client_cpu, server_cpu = (
            (time.process_time() - cpu_before) / elapsed,
            (cpu_seconds(pid) - server_before) / elapsed,
        )
        done.set()
        typed = dict(zip(typists_cells, await asyncio.gather(*typing), strict=True))
        expected = single.inserted | load.inserted

        async def local(peer: Collaborator) -> dict[str, str]:
            return cells_of(peer)

        lost = {
            "server": await lost_in(lambda: server_cells(server, path), expected, typed),
            "person 1": await lost_in(lambda: local(first), expected, typed),
            "person 2": await lost_in(lambda: local(second), expected, typed),
        }
        async with LabCollaborator.join(server, path) as late:  # what a person opening the notebook now gets
            lost["a newly joined collaborator"] = await lost_in(lambda: local(late), expected, typed)

    agent_ids = {name for _, _, name in tokens}
    inside = [
        record["duration_ms"]
        for record in await audit_records(
            server,
            lambda r: r.get("tool") == "insert_notebook_cell" and r.get("agent") in agent_ids and r["paths"] == [path],
            len(load.latencies_ms),
        )
    ]
    single_p50, _ = percentiles(single.latencies_ms)
    p50, p95 = percentiles(load.latencies_ms)
    print(f"(a) {len(tokens)} agents over {args.users} users, 2 people typing, {args.seconds:.0f} s")
    print(f"    single-client insert p50 {single_p50:.1f} ms (n={len(single.latencies_ms)})")
    print(f"    insert under load    p50 {p50:.1f} ms, p95 {p95:.1f} ms (n={len(load.latencies_ms)})")
    print(f"    ratios to the single-client p50: p50 x{p50 / single_p50:.2f}, p95 x{p95 / single_p50:.2f}")
    if inside:
        inside_p50, inside_p95 = percentiles(inside)
        print(
            f"    the same inserts inside the chain (audit duration_ms): p50 {inside_p50:.1f} ms, p95 {inside_p95:.1f} ms"
        )
    print(f"    audit records of the agents' inserts: {len(inside)} of {len(load.latencies_ms)} calls")
    print(f"    characters typed: {sum(map(len, typed.values()))}")
    print(f"    CPU while the agents ran: server {server_cpu:.0%} of a core, this client process {client_cpu:.0%}")
    errors = single.errors + load.errors
    print(f"    errors: {dict(errors) if errors else 'none'}")
    problems = [f"{view}: {problem}" for view, problem in lost.items() if problem]
    print(f"    nothing lost: {'yes' if not problems else 'NO: ' + '; '.join(problems)}")


async def read_run(server: JupyterServer, path: str, args) -> None:
    async def reader(client, stop: float, latencies: list[float]) -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            result = await client.call_tool("get_notebook", {"path": path})
            latencies.append((time.perf_counter() - started) * 1000)
            if result.is_error or result.structured_content["cell_count"] != READ_CELLS:
                raise RuntimeError(f"get_notebook failed or was incomplete: {result.content}")

    burst_name = f"burst-reader-{uuid.uuid4().hex[:8]}"  # finds this burst's calls in the audit log
    async with LabCollaborator.join(server, path), contextlib.AsyncExitStack() as stack:
        single = await stack.enter_async_context(mcp_client(server, mode=LEGACY, client_name="single-reader"))
        clients = [
            await stack.enter_async_context(mcp_client(server, mode=LEGACY, client_name=burst_name))
            for _ in range(args.readers)
        ]
        for _ in range(3):  # warm-up
            await single.call_tool("get_notebook", {"path": path})
        alone: list[float] = []
        started = time.perf_counter()
        await reader(single, time.monotonic() + args.burst_seconds / 2, alone)
        single_rate = len(alone) / (time.perf_counter() - started)
        burst: list[float] = []
        started, cpu_before, server_before = time.perf_counter(), time.process_time(), cpu_seconds(server.proc.pid)
        await asyncio.gather(*(reader(client, time.monotonic() + args.burst_seconds, burst) for client in clients))
        elapsed = time.perf_counter() - started
        burst_rate, client_cpu = len(burst) / elapsed, (time.process_time() - cpu_before) / elapsed
        server_cpu = (cpu_seconds(server.proc.pid) - server_before) / elapsed
    inside = [
        record["duration_ms"]
        for record in await audit_records(
            server, lambda r: r.get("tool") == "get_notebook" and r.get("declared_client") == burst_name, len(burst)
        )
    ]
    single_p50, _ = percentiles(alone)
    p50, p95 = percentiles(burst)
    print(f"(b) {args.readers} clients reading a {READ_CELLS}-cell notebook back to back, {args.burst_seconds:.0f} s")
    print(f"    one client alone: {single_rate:.1f} calls/s, p50 {single_p50:.1f} ms (n={len(alone)})")
    print(f"    together: {burst_rate:.1f} calls/s (x{burst_rate / single_rate:.2f} the single client's rate)")
    print(f"    burst p50 {p50:.1f} ms, p95 {p95:.1f} ms (p95/p50 x{p95 / p50:.2f}, n={len(burst)})")
    if inside:
        inside_p50, inside_p95 = percentiles(inside)
        print(
            f"    the burst's reads inside the chain (audit duration_ms): p50 {inside_p50:.1f} ms, p95 {inside_p95:.1f} ms"
        )
    print(f"    CPU during the burst: server {server_cpu:.0%} of a core, this client process {client_cpu:.0%}")


async def run(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    root = workdir / "root"
    users = [f"user{index}" for index in range(args.users)]
    config = jwt_config(workdir, [f"p, {user}, load/**, write, allow" for user in users])
    # Every agent an identity of its own; each user has agents in both eras.
    tokens = [
        (token_for(users[index % args.users], f"agent-{index}"), LEGACY if index % 2 == 0 else MODERN, f"agent-{index}")
        for index in range(args.agents)
    ]
    write_notebook(root / "read" / f"nb{READ_CELLS}.ipynb", [f"x{i} = {i}\nprint(x{i})" for i in range(READ_CELLS)])
    server = start_server(workdir, config=config)
    try:
        pid = server.proc.pid
        print(f"server RSS at start: {rss_mb(pid):.0f} MiB")
        for repeat in range(1, args.repeats + 1):
            path = f"load/run{repeat}.ipynb"
            write_notebook(root / path, ["", ""] + [f"y{i} = {i}" for i in range(LOAD_CELLS - 2)])
            print(f"--- run {repeat}/{args.repeats}")
            await load_run(server, tokens, token_for(users[0], "single"), path, args)
            await read_run(server, f"read/nb{READ_CELLS}.ipynb", args)
            print(f"server RSS after run {repeat}: {rss_mb(pid):.0f} MiB")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20, help="how long the agents insert")
    parser.add_argument("--single", type=int, default=40, help="inserts of the single client")
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--burst-seconds", type=float, default=10, help="how long the readers read together")
    parser.add_argument("--repeats", type=int, default=2, help="runs of (a) and (b) on the same server")
    parser.add_argument("--budget", type=float, default=900, help="seconds after which the benchmark gives up")
    arguments = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(arguments), arguments.budget))
    except TimeoutError:
        sys.exit(f"bench_load did not finish within {arguments.budget:.0f} s")
