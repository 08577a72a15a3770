"""What the gateway chain costs on a trivial tool, and whether auditing ever stalls the event loop.

One run prints three measurements (p50/p95):

1. In process, the same trivial tool endpoint behind every stage of the real chain
   (identity, audit to a file, argument size, resolve, authorize with the bundled
   policy, rate limit in memory) against no stage at all, interleaved call by call.
2. Through a real Jupyter server (tests/harness.py) with the official MCP client:
   the end-to-end p50 of a trivial tool, to put (1) in proportion. The goal is a
   chain cost of at most 10% of this p50. (The server cannot run with its stages
   removed, so "off" is measured in process, on the same stage objects.)
3. The audit trail with fsync on every record: how long `record()` holds the
   event loop, against what a synchronous write+fsync would have held it, and the
   worst event-loop lag while thousands of records go to disk.

Usage: .venv/bin/python benchmarks/bench_chain.py [--calls N] [--no-server]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_collab_mcp_secure.audit.digest import ArgumentDigest
from jupyter_collab_mcp_secure.audit.hashchain import GENESIS, seal
from jupyter_collab_mcp_secure.audit.sinks import FileSink
from jupyter_collab_mcp_secure.audit.trail import AuditTrail
from jupyter_collab_mcp_secure.gateway.chain import Chain
from jupyter_collab_mcp_secure.gateway.context import CallContext
from jupyter_collab_mcp_secure.gateway.errors import ok_result
from jupyter_collab_mcp_secure.gateway.stages.audit import AuditStage
from jupyter_collab_mcp_secure.gateway.stages.authorize import AuthorizeStage
from jupyter_collab_mcp_secure.gateway.stages.identity import IdentityStage
from jupyter_collab_mcp_secure.gateway.stages.ratelimit import RateLimitStage
from jupyter_collab_mcp_secure.gateway.stages.resolve import ResolveStage
from jupyter_collab_mcp_secure.gateway.stages.size import ArgumentSizeStage
from jupyter_collab_mcp_secure.identity.principal import OWNER_ROLE, AuthMethod, Principal
from jupyter_collab_mcp_secure.policy.config import PolicyConfig
from jupyter_collab_mcp_secure.ratelimit.config import RateLimitConfig

REPO = Path(__file__).resolve().parent.parent
LOG = logging.getLogger("bench")
OWNER = Principal(user="owner", auth=AuthMethod.OWNER_TOKEN, realm="jupyter", is_owner=True)
TOOL, ARGUMENTS = "get_notebook", {"path": "notebooks/demo.ipynb"}


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def show(label: str, samples_s: list[float]) -> float:
    p50, p95 = quantiles(samples_s)
    print(f"  {label:<44} p50 {p50 * 1e6:9.1f} us   p95 {p95 * 1e6:9.1f} us")
    return p50


async def trivial_tool(call: CallContext):
    return ok_result({"ok": True})


async def no_session(value: str) -> str:
    raise AssertionError("the benchmark call names no session or fork")


async def bench_in_process(workdir: Path, calls: int) -> float:
    print(f"1. chain on a trivial tool, in process ({calls} calls each, interleaved)")
    root = workdir / "root"
    (root / "notebooks").mkdir(parents=True)
    trail = AuditTrail(FileSink(workdir / "audit.jsonl", rotate_bytes=0, fsync=False), workdir / "k.key", LOG)
    await trail.start()
    policy = PolicyConfig().make_policy_engine(trail, LOG)
    await policy.start()
    limits = RateLimitConfig(rate_limits={"read": f"{calls * 4}/minute"})
    limiter = limits.make_rate_limiter(LOG)
    stages = [
        IdentityStage(),
        AuditStage(trail),
        ArgumentSizeStage(limits.max_argument_bytes, limits.max_edit_chars),
        ResolveStage(root, {"session_id": no_session, "fork_id": no_session}),
        AuthorizeStage(policy),
        RateLimitStage(limiter),
    ]
    assert OWNER_ROLE in OWNER.subjects
    full, bare = Chain(stages, endpoint=trivial_tool), Chain([], endpoint=trivial_tool)
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for n in range(calls + 200):
        for label, chain in (("on", full), ("off", bare)):
            call = CallContext(principal=OWNER, tool=TOOL, arguments=dict(ARGUMENTS), request_id=str(n))
            started = time.perf_counter()
            result = await chain(call)
            elapsed = time.perf_counter() - started
            assert not result.is_error, result.structured_content
            if n >= 200:  # warm-up excluded
                timings[label].append(elapsed)
    on, off = show("every stage on", timings["on"]), show("every stage off", timings["off"])
    overhead = on - off
    print(f"  {'chain cost (p50 on - p50 off)':<44}     {overhead * 1e6:9.1f} us")
    await policy.stop()
    await limiter.close()
    await trail.close()
    return overhead


async def bench_server(workdir: Path, calls: int) -> float:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import populate
    from harness import call, mcp_client, start_server

    print(f"2. end to end through a real Jupyter server ({calls} calls of {TOOL})")
    populate(workdir / "root")
    server = start_server(workdir, config={"CollabMCP": {"rate_limits": {"read": f"{calls * 4}/minute"}}})
    try:
        samples = []
        async with mcp_client(server) as client:
            for n in range(calls + 20):
                started = time.perf_counter()
                await call(client, TOOL, **ARGUMENTS)
                if n >= 20:
                    samples.append(time.perf_counter() - started)
        return show(f"{TOOL} via MCP (all stages on)", samples)
    finally:
        server.stop()


async def bench_audit_writes(workdir: Path, records: int) -> None:
    print(f"3. audit with fsync on every record ({records} records)")
    record = {"event": "tool_call", "user": "owner", "tool": TOOL, "paths": ["notebooks/demo.ipynb"], "outcome": "ok"}
    trail = AuditTrail(FileSink(workdir / "fsync.jsonl", rotate_bytes=0, fsync=True), workdir / "f.key", LOG)
    await trail.start()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - before - 0.001)

    ticking = asyncio.create_task(ticker())
    on_loop = []
    for _ in range(records):
        started = time.perf_counter()
        trail.record(dict(record))
        on_loop.append(time.perf_counter() - started)
        await asyncio.sleep(0)
    await trail.close()
    stop.set()
    await ticking
    show("record() on the event loop", on_loop)

    sync_path = workdir / "sync.jsonl"
    fd = os.open(sync_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    digest, head, synchronous = ArgumentDigest(b"k" * 32), GENESIS, []
    for _ in range(min(records, 500)):
        started = time.perf_counter()
        head, line = seal({**record, "args_digest": digest(ARGUMENTS)}, head)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
        synchronous.append(time.perf_counter() - started)
    os.close(fd)
    show("a synchronous write + fsync would hold it", synchronous)
    print(
        f"  {'worst event-loop lag while writing':<44} {max(lags) * 1e3:9.2f} ms (ticker every 1 ms, {len(lags)} ticks)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--no-server", action="store_true", help="skip the end-to-end measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        overhead = await bench_in_process(workdir / "inproc", args.calls)
        if not args.no_server:
            e2e = await bench_server(workdir / "server", max(200, args.calls // 10))
            print(f"  chain cost / end-to-end p50: {overhead / e2e:.1%} (goal: at most 10%)")
        await bench_audit_writes(workdir / "fsync", max(1000, args.calls))


if __name__ == "__main__":
    asyncio.run(main())
