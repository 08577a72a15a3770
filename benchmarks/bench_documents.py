"""Benchmark: insert_text on a 1 MB document, get_document_history on a document with 10,000 updates.

Runs a real Jupyter server with the extension (127.0.0.1, temporary folder) and
the official MCP client; the 10,000 updates come from a websocket collaborator
typing one character per update. A second, in-process measurement lists the
history of 10,000 updates that are all versions of their own (every update a
different agent's edit call), the worst case for grouping and summaries.

    .venv/bin/python benchmarks/bench_documents.py [--inserts 50] [--updates 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Collaborator, call, mcp_client, start_server  # noqa: E402
from pycrdt import Doc, Text  # noqa: E402

from jupyter_collab_mcp_secure.identity.principal import Principal  # noqa: E402
from jupyter_collab_mcp_secure.rtc.attribution import AttributionLog  # noqa: E402
from jupyter_collab_mcp_secure.rtc.history import DocumentHistory  # noqa: E402
from jupyter_collab_mcp_secure.rtc.ystore import CollabYStore, bound_store_class, store_key  # noqa: E402


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{name}: n={len(samples)} p50={statistics.median(samples) * 1000:.1f} ms p95={p95 * 1000:.1f} ms")


async def bench_server(workdir: Path, inserts: int, updates: int) -> None:
    root = workdir / "root"
    root.mkdir(parents=True)
    line = "The quick brown fox jumps over the lazy dog, 素早い茶色の狐 😀.\n"
    big = line * (1_048_576 // len(line.encode()))
    (root / "big.txt").write_text(big)
    (root / "typed.txt").write_text("")
    server = start_server(workdir)
    try:
        async with mcp_client(server) as client:
            await call(client, "get_document", path="big.txt", include_collaboration_state=False)
            rng = random.Random(1)
            samples = []
            length = len(big)
            for _ in range(inserts):
                position = rng.randint(0, length)
                started = time.perf_counter()
                result = await call(client, "insert_text", path="big.txt", text="INSERTED 😀 ", position=position)
                samples.append(time.perf_counter() - started)
                length = result["length"]
            report(f"insert_text on a {len(big.encode()) // 1024} KiB document", samples)

            async with Collaborator.join(server, "typed.txt", kind="file") as person:
                text = person.doc.get("source", type=Text)
                for index in range(updates):
                    text.insert(len(text), "abcdefghij"[index % 10])
                    if index % 200 == 0:
                        await asyncio.sleep(0)
                started = time.perf_counter()
                while True:
                    history = await call(client, "get_document_history", path="typed.txt", limit=10)
                    if sum(v["updates"] for v in history["versions"]) >= updates or time.perf_counter() - started > 300:
                        break
                    await asyncio.sleep(1)
            stored = sum(v["updates"] for v in history["versions"])
            samples = []
            for _ in range(10):
                started = time.perf_counter()
                history = await call(client, "get_document_history", path="typed.txt", limit=10)
                samples.append(time.perf_counter() - started)
            report(f"get_document_history, {stored} stored updates in {history['total_versions']} versions", samples)
    finally:
        server.stop()


async def bench_worst_case_history(workdir: Path, updates: int) -> None:
    """Every update its own version: grouping and attribution at their largest."""
    database = workdir / "ystore.sqlite"
    db = sqlite3.connect(database)
    db.execute("CREATE TABLE yupdates (path TEXT NOT NULL, yupdate BLOB, metadata BLOB, timestamp REAL NOT NULL)")
    db.execute("CREATE TABLE ycheckpoints (path TEXT NOT NULL, checkpoint BLOB NOT NULL, timestamp REAL)")
    db.execute(f"PRAGMA user_version = {CollabYStore.version}")
    attribution = AttributionLog(workdir / "attribution.sqlite")
    doc = Doc()
    text = doc.get("source", type=Text)
    clock = [1_000_000.0]
    key = store_key("file", "bench")
    doc.observe(
        lambda event: db.execute("INSERT INTO yupdates VALUES (?, ?, ?, ?)", (key, event.update, b"", clock[0]))
    )
    for index in range(updates):
        clock[0] += 0.01
        text.insert(len(text), "x")
        agent = Principal(user=f"user{index % 2}", auth="jwt", realm="bench", agent=f"agent{index % 3}")
        attribution.record(
            file_id="bench", started=clock[0] - 0.001, finished=clock[0] + 0.001, principal=agent, tool="insert_text"
        )
    db.commit()
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        history = await DocumentHistory(bound_store_class(database), attribution, "file", "bench", 3.0).load()
        history.newest(10)
        samples.append(time.perf_counter() - started)
    report(f"history in process, {updates} updates as {len(history.versions)} versions", samples)
    await attribution.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inserts", type=int, default=50)
    parser.add_argument("--updates", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as folder:
        await bench_server(Path(folder) / "server", args.inserts, args.updates)
        inprocess = Path(folder) / "inprocess"
        inprocess.mkdir()
        await bench_worst_case_history(inprocess, args.updates)


if __name__ == "__main__":
    asyncio.run(main())
