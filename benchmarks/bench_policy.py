"""Decision latency of the policy engine beside plain Casbin, at 10, 1,000 and 10,000 rules.

Run: .venv/bin/python benchmarks/bench_policy.py
The policy looks like a hub-wide one: per-user home folders, team folders, agents with
denies, a few owner rules. Requests are random principals asking about random paths.
"""

from __future__ import annotations

import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import casbin

from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.functions import register_functions
from jupyter_collab_mcp_secure.policy.source import bundled_policies_dir

SIZES = (10, 1_000, 10_000)
ENGINE_SAMPLES = 20_000
CASBIN_BUDGET_SECONDS = 4.0


def hub_policy(rules: int, rng: random.Random) -> tuple[str, int]:
    users = max(1, rules // 10)
    lines = ["p, role:owner, **, admin, allow"]
    user = 0
    while len(lines) < rules:
        name = f"user{user % users}"
        team = f"group:team{user % max(1, users // 5)}"
        candidates = [
            f"p, {name}, home/{name}/**, write, allow",
            f"p, {name}, home/{name}/**, execute, allow",
            f"p, {team}, teams/{team[6:]}/**, write, allow",
            f"p, {team}, teams/{team[6:]}/secret/**, read, deny",
            f"p, agent:{name}-bot, home/{name}/drafts/**, write, allow",
            f"p, agent:{name}-bot, **, execute, deny",
            f"p, {name}, shared/*/{name}-*.ipynb, read, allow",
            f"p, {team}, **/.env, read, deny",
            f"g, {name}, {team}",
            f"p, {name}, projects/p{user}/**, read, allow",
        ]
        lines.extend(candidates[: rules - len(lines)])
        user += 1
    return "\n".join(lines) + "\n", users


def requests(users: int, rng: random.Random, count: int) -> list[tuple[Principal, str, str]]:
    out = []
    for _ in range(count):
        index = rng.randrange(users)
        name = f"user{index}"
        other = f"user{rng.randrange(users)}"
        principal = Principal(
            user=name,
            auth="jupyter",
            realm="jupyter",
            groups=(f"team{rng.randrange(max(1, users // 5))}",),
            agent=f"{name}-bot" if rng.random() < 0.5 else None,
        )
        path = rng.choice(
            [
                f"home/{other}/nb{rng.randrange(50)}.ipynb",
                f"home/{name}/drafts/.env",
                f"teams/team{rng.randrange(max(1, users // 5))}/secret/x.txt",
                f"shared/{rng.randrange(9)}/{other}-a.ipynb",
                f"projects/p{rng.randrange(users * 10)}/deep/er/file.py",
                f"home/{name}2/x",
            ]
        )
        out.append((principal, rng.choice(("read", "write", "execute", "admin")), path))
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.95)] * 1e6


def time_calls(call, workload) -> list[float]:
    samples = []
    clock = time.perf_counter
    for item in workload:
        start = clock()
        call(*item)
        samples.append(clock() - start)
    return samples


def main() -> int:
    logging.getLogger("casbin").setLevel(logging.ERROR)
    rng = random.Random(7)
    model = bundled_policies_dir() / "model.conf"
    print(
        f"{'rules':>7} | {'engine uncached p50/p95 (us)':>29} | {'engine cached p50/p95 (us)':>27} | {'plain casbin p50/p95 (us)':>27}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for size in SIZES:
            text, users = hub_policy(size, rng)
            policy = Path(scratch) / f"policy-{size}.csv"
            policy.write_text(text)
            workload = requests(users, rng, ENGINE_SAMPLES)

            uncached = PolicyEngine(model, policy, cache_size=0)
            cold = percentiles(time_calls(uncached.allowed, ((p, a, path) for p, a, path in workload)))

            cached = PolicyEngine(model, policy)
            time_calls(cached.allowed, workload)  # warm the cache with the same workload
            warm = percentiles(time_calls(cached.allowed, workload))

            plain = register_functions(casbin.Enforcer(str(model), str(policy)))
            casbin_samples: list[float] = []
            deadline = time.perf_counter() + CASBIN_BUDGET_SECONDS
            for principal, action, path in workload:
                if time.perf_counter() > deadline and len(casbin_samples) >= 30:
                    break
                start = time.perf_counter()
                plain.enforce(principal.subjects, path, action)
                casbin_samples.append(time.perf_counter() - start)
            slow = percentiles(casbin_samples)
            print(
                f"{size:>7} | {cold[0]:>13.1f} / {cold[1]:>13.1f} | {warm[0]:>12.2f} / {warm[1]:>12.2f} |"
                f" {slow[0]:>12.0f} / {slow[1]:>12.0f}  (casbin n={len(casbin_samples)})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
