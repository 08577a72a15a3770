"""Helpers shared by the policy tests: random policies and requests, a recording audit trail."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.policy.source import bundled_policies_dir

MODEL = bundled_policies_dir() / "model.conf"
EXAMPLES = bundled_policies_dir() / "examples"

USERS = ["alice", "alice2", "bob", "carol", "dave", "Alice"]
GROUPS = ["group:team", "group:team2", "group:reviewers", "group:ops"]
AGENTS = ["agent:bot", "agent:bot2", "agent:scraper"]
ROLES = ["role:owner", "role:editor", "role:viewer", "role:deep"]
ACTIONS = ["read", "write", "execute", "admin"]
ODD_ACTIONS = ["", "READ", "delete", "*"]

SEGMENTS = [
    "notebooks",
    "alice",
    "alice2",
    "bob",
    "shared",
    "data",
    "secret",
    ".env",
    ".git",
    "x.ipynb",
    "y.txt",
    "a",
    "a2",
    "b",
    ".hidden",
    "ALICE",
    "é",
    "sp ace",
]
PATTERN_PIECES = SEGMENTS + ["*", "**", "*.ipynb", ".*", "a*", "?", "al?ce*"]
ODD_PATHS = [
    "/",
    "/notebooks/alice/x.ipynb",
    "../etc/passwd",
    "notebooks/../secret",
    "a//b",
    "./a",
    "a/./b",
    "a/",
    "notebooks/alice/",
    "..",
    ".",
    "a/..",
    "\\a",
    "a\\..\\b",
    "~/x",
    "C:/x",
]


def random_path(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(ODD_PATHS)
    if roll < 0.12:
        return ""
    segments = [rng.choice(SEGMENTS) for _ in range(rng.randint(1, 5))]
    if roll < 0.2:
        # Traversal-like and prefix-confusable shapes built from real segments.
        segments.insert(
            rng.randrange(len(segments) + 1),
            rng.choice(["..", ".", "", "alice2", "a2"]),
        )
    return "/".join(segments)


def random_pattern(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:
        return ""
    if roll < 0.1:
        return "**"
    return "/".join(rng.choice(PATTERN_PIECES) for _ in range(rng.randint(1, 4)))


def random_policy(rng: random.Random, rules: int, links: int) -> str:
    subjects = USERS + GROUPS + AGENTS + ROLES
    lines = []
    for _ in range(rules):
        effect = "deny" if rng.random() < 0.25 else "allow"
        lines.append(f"p, {rng.choice(subjects)}, {random_pattern(rng)}, {rng.choice(ACTIONS)}, {effect}")
    for _ in range(links):
        member = rng.choice(USERS + GROUPS + AGENTS + ROLES)
        lines.append(f"g, {member}, {rng.choice(GROUPS + ROLES)}")
    # A chain longer than Casbin's role hierarchy limit: the index must stop where Casbin stops.
    chain = [f"role:chain{level}" for level in range(12)]
    lines.append(f"g, carol, {chain[0]}")
    lines.extend(f"g, {lower}, {upper}" for lower, upper in pairwise(chain))
    lines.extend(f"p, {role}, chain/{index}/**, read, allow" for index, role in enumerate(chain))
    return "\n".join(lines) + "\n"


def random_subjects(rng: random.Random) -> tuple[str, ...]:
    subjects = [rng.choice(USERS + ["stranger"])]
    if rng.random() < 0.4:
        subjects.append(rng.choice(AGENTS))
    subjects.extend(rng.sample(GROUPS, rng.randint(0, 2)))
    if rng.random() < 0.15:
        subjects.append("role:owner")
    return tuple(subjects)


def random_request(rng: random.Random) -> tuple[tuple[str, ...], str, str]:
    action = rng.choice(ODD_ACTIONS) if rng.random() < 0.05 else rng.choice(ACTIONS)
    if rng.random() < 0.1:
        path = "chain/" + str(rng.randrange(12)) + "/x"
    else:
        path = random_path(rng)
    return random_subjects(rng), action, path


def principal(
    user: str,
    *,
    groups: tuple[str, ...] = (),
    agent: str | None = None,
    owner: bool = False,
) -> Principal:
    return Principal(
        user=user,
        auth="jupyter",
        realm="jupyter",
        groups=groups,
        agent=agent,
        is_owner=owner,
    )


@dataclass
class RecordingAuditTrail:
    reloads: list[dict] = field(default_factory=list)

    def policy_reload(self, *, ok: bool, sha256: str | None, reason: str | None, source: str) -> None:
        self.reloads.append({"ok": ok, "sha256": sha256, "reason": reason, "source": source})


def write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(text)
    staging.replace(path)
