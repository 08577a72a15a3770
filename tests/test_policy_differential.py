"""The fast index decides exactly like a plain casbin.Enforcer with the same model and functions."""

from __future__ import annotations

import logging
import random

import casbin
import pytest
from policy_fixtures import MODEL, random_policy, random_request

from jupyter_collab_mcp_secure.policy.functions import register_functions
from jupyter_collab_mcp_secure.policy.index import DecisionIndex
from jupyter_collab_mcp_secure.policy.source import load_files

SEEDS = [11, 23, 37, 41, 59]
REQUESTS_PER_SEED = 2_200  # 11,000 requests in all


@pytest.fixture(autouse=True)
def quiet_casbin():
    # Plain Casbin logs every denied request at WARNING.
    logger = logging.getLogger("casbin")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(previous)


@pytest.mark.parametrize("seed", SEEDS)
def test_index_decides_like_plain_casbin(seed, tmp_path):
    rng = random.Random(seed)
    policy = tmp_path / "policy.csv"
    policy.write_text(random_policy(rng, rules=80, links=20))
    plain = register_functions(casbin.Enforcer(str(MODEL), str(policy)))
    snapshot = load_files(MODEL, policy)
    assert snapshot.standard_model
    cached = DecisionIndex(snapshot.rules, snapshot.links)
    uncached = DecisionIndex(snapshot.rules, snapshot.links, cache_size=0)

    requests = [random_request(rng) for _ in range(REQUESTS_PER_SEED)]
    # Repeat some requests so the cached path answers from its cache too.
    requests += requests[:200]
    outcomes = {True: 0, False: 0}
    for subjects, action, path in requests:
        expected = plain.enforce(subjects, path, action)
        assert uncached.decide(subjects, action, path) == expected, (
            subjects,
            action,
            path,
        )
        assert cached.allowed(subjects, action, path) == expected, (
            subjects,
            action,
            path,
        )
        outcomes[expected] += 1
    # Both decisions occur often enough for the comparison to mean something.
    assert outcomes[True] > 100 and outcomes[False] > 100


def test_empty_policy_denies_like_casbin(tmp_path):
    policy = tmp_path / "policy.csv"
    policy.write_text("# nothing\n")
    plain = register_functions(casbin.Enforcer(str(MODEL), str(policy)))
    snapshot = load_files(MODEL, policy)
    index = DecisionIndex(snapshot.rules, snapshot.links)
    for request in [
        (("alice",), "read", ""),
        (("",), "", ""),
        (("role:owner",), "admin", "x"),
    ]:
        subjects, action, path = request
        assert index.decide(subjects, action, path) is plain.enforce(subjects, path, action) is False


def hub_policy(rng: random.Random, users: int) -> str:
    """A hub-wide policy: a home folder per user, team folders, reviewers, and scattered denies."""
    lines = [f"p, u{n}, home/u{n}/**, write, allow" for n in range(users)]
    lines += [f"p, u{n}, home/u{n}/.ssh/**, read, deny" for n in range(0, users, 5)]
    lines += [f"p, group:team{t}, teams/{t}/**, write, allow" for t in range(users // 10)]
    lines += [f"p, group:team{t}, teams/{t}/secrets/**, read, deny" for t in range(users // 10)]
    lines += [f"p, agent:bot{n}, home/u{n}/**, execute, deny" for n in range(0, users, 4)]
    lines += [f"g, u{n}, group:team{n % (users // 10)}" for n in range(users)]
    rng.shuffle(lines)
    return "\n".join(["p, role:owner, **, admin, allow", *lines]) + "\n"


def hub_request(rng: random.Random, users: int) -> tuple[tuple[str, ...], str, str]:
    user = rng.randrange(users)
    subjects = (f"u{user}", f"agent:bot{user}") if rng.random() < 0.3 else (f"u{user}",)
    owner = rng.randrange(users) if rng.random() < 0.3 else user
    path = rng.choice(
        [
            f"home/u{owner}/notes.ipynb",
            f"home/u{owner}/.ssh/id_rsa",
            f"home/u{owner}2/x",
            f"teams/{user % (users // 10)}/plan.md",
            f"teams/{user % (users // 10)}/secrets/.env",
            f"teams/{rng.randrange(users // 10)}/plan.md",
        ]
    )
    return subjects, rng.choice(["read", "write", "execute", "admin"]), path


def test_index_decides_like_plain_casbin_at_hub_scale(tmp_path):
    """About 10,000 rules, as the speed target assumes; plain Casbin needs ~50 ms a decision, so fewer requests."""
    rng = random.Random(97)
    policy = tmp_path / "policy.csv"
    policy.write_text(hub_policy(rng, users=6_000))
    plain = register_functions(casbin.Enforcer(str(MODEL), str(policy)))
    snapshot = load_files(MODEL, policy)
    assert len(snapshot.rules) >= 9_000
    index = DecisionIndex(snapshot.rules, snapshot.links, cache_size=0)
    outcomes = {True: 0, False: 0}
    for subjects, action, path in (hub_request(rng, 6_000) for _ in range(100)):
        expected = plain.enforce(subjects, path, action)
        assert index.decide(subjects, action, path) == expected, (subjects, action, path)
        outcomes[expected] += 1
    assert outcomes[True] > 10 and outcomes[False] > 10
