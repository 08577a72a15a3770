"""Gateway cost, in one run: a trivial tool and get_notebook (50 and 1,000 cells) through the full chain,
beside /api/status on the same server (the floor: Jupyter's own per-request cost) and the same trivial
tool on the bare MCP SDK served by uvicorn (the transport baseline).

    .venv/bin/python benchmarks/bench_gateway.py [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import MODERN, free_port, mcp_client, start_server, write_notebook  # noqa: E402

BARE_SERVER = """
import sys, uvicorn
from mcp.server.mcpserver import MCPServer
server = MCPServer(name="bare", log_level="WARNING")

@server.tool(name="list_notebooks")
async def list_notebooks(path: str | None = None) -> dict:
    return {"notebooks": [], "count": 0}

uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


async def measure(calls: int, action: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(max(calls // 10, 5)):
        await action()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


class _Bare:
    def __init__(self, port: int) -> None:
        self.mcp_url = f"http://127.0.0.1:{port}/mcp"
        self.token = "unused"


async def run(calls: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    root = workdir / "root"
    write_notebook(root / "nb50.ipynb", [f"x{i} = {i}\nprint(x{i})" for i in range(50)])
    write_notebook(root / "nb1000.ipynb", [f"x{i} = {i}\nprint(x{i})" for i in range(1000)])
    (root / "empty").mkdir()
    server = start_server(workdir, config={"CollabMCP": {"rate_limits": {"read": "1000000/minute"}}})
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
    rows: list[tuple[str, float, float]] = []
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{bare_port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        async with httpx.AsyncClient(headers=server.headers()) as http:
            rows.append(
                ("/api/status (Jupyter floor)", *await measure(calls, lambda: http.get(server.url + "api/status")))
            )
        async with mcp_client(_Bare(bare_port), mode=MODERN) as client:  # type: ignore[arg-type]
            rows.append(
                (
                    "trivial tool, bare SDK + uvicorn",
                    *await measure(calls, lambda: client.call_tool("list_notebooks", {})),
                )
            )
        async with mcp_client(server, mode=MODERN) as client:
            trivial = lambda: client.call_tool("list_notebooks", {"path": "empty"})  # noqa: E731
            rows.append(("trivial tool, full chain", *await measure(calls, trivial)))
            for cells in (50, 1000):
                read = lambda cells=cells: client.call_tool("get_notebook", {"path": f"nb{cells}.ipynb"})  # noqa: E731
                rows.append(
                    (f"get_notebook {cells} cells, full chain", *await measure(max(calls // (cells // 50), 20), read))
                )
        async with mcp_client(server, mode="legacy") as client:
            rows.append(
                (
                    "trivial tool, full chain, SSE session",
                    *await measure(calls, lambda: client.call_tool("list_notebooks", {"path": "empty"})),
                )
            )
    finally:
        bare.terminate()
        bare.wait()
        server.stop()
    floor = rows[0][1]
    print(f"{'case':45} {'p50 ms':>8} {'p95 ms':>8} {'p50/floor':>10}")
    for name, p50, p95 in rows:
        print(f"{name:45} {p50:8.2f} {p95:8.2f} {p50 / floor:10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    asyncio.run(run(parser.parse_args().calls))
