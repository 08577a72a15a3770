"""The fast decision index: the bundled model's semantics without a linear scan.

Casbin evaluates the matcher against every rule (57 ms at 10,000 rules). Here the
rules are grouped by subject, then by requested action (keeping only rules whose
action can matter for it), then placed in a trie under the literal leading
segments of their pattern. A request visits only the subjects its principal has
(directly or through `g` links) and only the trie nodes along its own path, then
runs the same compiled matcher Casbin would run on those few candidates. No rule
that could match is ever skipped, which the differential test checks against a
plain Enforcer. Decisions are cached per snapshot; a reload builds a new index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TypeVar

from ..registry import ACTIONS
from .functions import ALLOW, implies
from .glob import Pattern, compile_pattern, is_canonical, literal_prefix, matches, path_match
from .source import RoleLink, Rule
from .subtree import covers_subtree

# Casbin's default role manager follows at most this many `g` hops (has_link's level 10
# checks the subject itself plus 9 further steps).
MAX_ROLE_HOPS = 9

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, size: int) -> V:
    """Keep `value` in a cache that is cleared whole when full (a decision is cheap to take again); 0: no cache."""
    if size:
        if len(cache) >= size:
            cache.clear()
        cache[key] = value
    return value


class _Node:
    __slots__ = ("children", "patterns")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.patterns: list[Pattern] = []


class _PatternTrie:
    def __init__(self, patterns: Iterable[str]) -> None:
        self.root = _Node()
        for pattern in dict.fromkeys(patterns):
            node = self.root
            for segment in literal_prefix(pattern):
                node = node.children.setdefault(segment, _Node())
            node.patterns.append(compile_pattern(pattern))

    def any_match(self, segments: list[str], path: str) -> bool:
        node = self.root
        for segment in segments:
            if node.patterns and any(matches(compiled, path) for compiled in node.patterns):
                return True
            node = node.children.get(segment)
            if node is None:
                return False
        return any(matches(compiled, path) for compiled in node.patterns)


class DecisionIndex:
    def __init__(self, rules: Iterable[Rule], links: Iterable[RoleLink], cache_size: int = 65536) -> None:
        self._rules: dict[str, list[Rule]] = defaultdict(list)
        for rule in rules:
            self._rules[rule.subject].append(rule)
        self._roles: dict[str, set[str]] = defaultdict(set)
        for link in links:
            self._roles[link.member].add(link.role)
        self._tables: dict[tuple[str, str], tuple[_PatternTrie, _PatternTrie]] = {}
        self._reach: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._decisions: dict[tuple[tuple[str, ...], str, str], bool] = {}
        self._rules_deciding: dict[tuple[tuple[str, ...], str, str], Rule | None] = {}
        self._cache_size = cache_size
        # Built now, in the reloading thread, so no request pays for it later.
        for subject in self._rules:
            for action in ACTIONS:
                self._table(subject, action)

    def allowed(self, subjects: tuple[str, ...], action: str, path: str) -> bool:
        key = (subjects, action, path)
        decision = self._decisions.get(key)
        if decision is None:
            decision = remember(self._decisions, key, self.decide(subjects, action, path), self._cache_size)
        return decision

    def decide(self, subjects: tuple[str, ...], action: str, path: str) -> bool:
        """The uncached decision: deny if any deny rule matches, else allow if any allow rule does."""
        if not is_canonical(path):
            return False
        segments = path.split("/") if path else []
        granted = False
        for subject in self.policy_subjects(subjects):
            table = self._table(subject, action)
            if table is None:
                continue
            allow, deny = table
            if deny.any_match(segments, path):
                return False
            if not granted and allow.any_match(segments, path):
                granted = True
        return granted

    def deciding_rule(self, subjects: tuple[str, ...], action: str, path: str) -> Rule | None:
        """The rule behind `allowed`: a matching deny if there is one, else a matching allow, else None.

        Recorded with every call so a later replay (`policy simulate`) can show what decided.
        """
        key = (subjects, action, path)
        try:
            return self._rules_deciding[key]
        except KeyError:
            return remember(self._rules_deciding, key, self._find_rule(subjects, action, path), self._cache_size)

    def _find_rule(self, subjects: tuple[str, ...], action: str, path: str) -> Rule | None:
        if not is_canonical(path):
            return None
        allow = None
        for subject in self.policy_subjects(subjects):
            for rule in self._rules[subject]:
                if rule.effect != ALLOW:
                    if implies(action, rule.action) and path_match(path, rule.pattern):
                        return rule
                elif allow is None and implies(rule.action, action) and path_match(path, rule.pattern):
                    allow = rule
        return allow

    def subtree_allowed(self, subjects: tuple[str, ...], action: str, folder: str) -> bool:
        """`action` on `folder` and on every path that could be beneath it (policy.subtree)."""
        if not self.allowed(subjects, action, folder):
            return False
        allows, denies = [], []
        for subject in self.policy_subjects(subjects):
            for rule in self._rules[subject]:
                if rule.effect == ALLOW and implies(rule.action, action):
                    allows.append(rule.pattern)
                elif rule.effect != ALLOW and implies(action, rule.action):
                    denies.append(rule.pattern)
        return covers_subtree(allows, denies, folder)

    def policy_subjects(self, subjects: tuple[str, ...]) -> tuple[str, ...]:
        """Every name a rule may use for this principal: its subjects and their roles."""
        reached = self._reach.get(subjects)
        if reached is None:
            found: dict[str, None] = {}
            for subject in subjects:
                found.update(dict.fromkeys(self._roles_of(subject)))
            reached = remember(
                self._reach, subjects, tuple(name for name in found if name in self._rules), self._cache_size
            )
        return reached

    def _roles_of(self, subject: str) -> list[str]:
        seen = {subject: None}
        frontier = [subject]
        for _ in range(MAX_ROLE_HOPS):
            frontier = [role for name in frontier for role in self._roles.get(name, ()) if role not in seen]
            if not frontier:
                break
            seen.update(dict.fromkeys(frontier))
        return list(seen)

    def _table(self, subject: str, action: str) -> tuple[_PatternTrie, _PatternTrie] | None:
        key = (subject, action)
        table = self._tables.get(key)
        if table is None:
            rules = self._rules.get(subject)
            if not rules:
                return None
            allow = [r.pattern for r in rules if r.effect == ALLOW and implies(r.action, action)]
            deny = [r.pattern for r in rules if r.effect != ALLOW and implies(action, r.action)]
            table = (_PatternTrie(allow), _PatternTrie(deny))
            self._tables[key] = table
        return table
