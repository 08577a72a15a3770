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
