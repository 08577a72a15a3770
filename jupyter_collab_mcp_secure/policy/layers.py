"""The owner layer: rules the server's owner adds on top of the admin's baseline.

The baseline (`policy_file`) is the admin's; the owner file (`owner_policy_file`) is
the owner's way to share within what the baseline lets the owner do:

- a deny in either layer wins;
- an owner allow applies to a request only where the baseline allows the owner
  (its user name and `role:owner`) the same action on the same path, so sharing
  never grants more than the owner holds;
- owner lines that name a reserved subject (`role:owner`, `role:hub-admin`,
  `service:<name>`) are ignored with a reason, the rest of the file applies;
- the owner file's `g` lines only link subjects for the owner's own rules: the two
  layers are separate indexes, so an owner cannot put anyone into a baseline role.

Both layers are decided by the fast index (policy/index.py). The index answers
"allowed?" only; to tell an explicit deny from "nothing grants it", each layer's
index carries one extra allow-everything rule for PROBE, a subject no policy line
can name (subjects with whitespace are refused) and no principal may present.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from ..identity.principal import HUB_ADMIN_ROLE, OWNER_ROLE
from ..registry import ADMIN
from .functions import ALLOW
from .index import DecisionIndex, remember
from .source import (
    ERROR,
    WARNING,
    Finding,
    PolicyError,
    PolicySnapshot,
    Rule,
    build_snapshot,
    bundled_policies_dir,
    split_line,
)

RESERVED_SUBJECTS = (OWNER_ROLE, HUB_ADMIN_ROLE)
# Service principals are configured by the hub admin; what they may do is the baseline's to say.
RESERVED_KINDS = ("service",)
PROBE = "layer probe"
BASELINE, OWNER, NOBODY = "baseline", "owner", "none"
_PROBE_RULE = Rule(PROBE, "**", ADMIN, ALLOW)


@dataclass(frozen=True)
class OwnerPolicy:
    """A validated owner file: the rules that apply, and the lines ignored (with why)."""

    snapshot: PolicySnapshot
    ignored: tuple[Finding, ...] = ()

    @property
    def ignored_summary(self) -> str | None:
        if not self.ignored:
            return None
        return f"ignored {len(self.ignored)} owner rule(s): " + "; ".join(str(f) for f in self.ignored)


def owner_subjects(owner: str) -> tuple[str, ...]:
    """Whose baseline grants cap the owner's rules: the owner by name and the owner role."""
    return (owner, OWNER_ROLE) if owner else (OWNER_ROLE,)


def load_owner_policy(path: str | Path) -> OwnerPolicy | None:
    """The owner file, or None when there is none (no owner rules); PolicyError when it is bad."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PolicyError(source, [Finding(ERROR, None, f"cannot read owner policy: {error}")]) from error
    return parse_owner_policy(data, source)


def parse_owner_policy(data: bytes, source: str) -> OwnerPolicy:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(source, [Finding(ERROR, None, f"not UTF-8: {error}")]) from error
    kept, ignored = _without_reserved(text)
    model = (bundled_policies_dir() / "model.conf").read_text(encoding="utf-8")
    snapshot = build_snapshot(model, kept.encode("utf-8"), source)
    # Audited as the file the owner wrote, not the filtered text.
    snapshot = replace(snapshot, sha256=hashlib.sha256(data).hexdigest())
    return OwnerPolicy(snapshot, tuple(ignored))


def _without_reserved(text: str) -> tuple[str, list[Finding]]:
    """Blank out the lines naming reserved subjects (line numbers stay as the owner wrote them)."""
    kept, ignored = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        reason = None if not line or line.startswith("#") else _reserved_reason(line)
        if reason:
            ignored.append(Finding(WARNING, number, f"ignored: {reason}"))
            kept.append("")
        else:
            kept.append(raw)
    return "\n".join(kept) + "\n", ignored


def _reserved_reason(line: str) -> str | None:
    try:
        tokens = split_line(line)
    except IndexError:
        return None  # the validator reports the syntax error
    kind, values = tokens[0], tokens[1:]
    names = values[:1] if kind == "p" else values[:2] if kind == "g" else []
    for name in names:
        if name in RESERVED_SUBJECTS or name == PROBE:
            return f"owner rules may not name the reserved subject {name!r}"
        prefix, colon, _ = name.partition(":")
        if colon and prefix in RESERVED_KINDS:
            return f"owner rules may not name {prefix}: subjects ({name!r}); the baseline decides them"
    return None


class LayeredDecider:
    """Baseline and owner layer composed; decisions cached per loaded pair of files."""

    def __init__(
        self,
        baseline: PolicySnapshot,
        owner: OwnerPolicy,
        capped_by: tuple[str, ...],
        cache_size: int = 65536,
    ) -> None:
        self._baseline = DecisionIndex((*baseline.rules, _PROBE_RULE), baseline.links, cache_size=cache_size)
        self._owner = DecisionIndex((*owner.snapshot.rules, _PROBE_RULE), owner.snapshot.links, cache_size=cache_size)
        self._capped_by = capped_by
        self._decisions: dict[tuple[tuple[str, ...], str, str], bool] = {}
        self._cache_size = cache_size

    def allowed(self, subjects: tuple[str, ...], action: str, path: str) -> bool:
        key = (subjects, action, path)
        decision = self._decisions.get(key)
        if decision is None:
            decision = remember(
                self._decisions, key, self.deciding_layer(subjects, action, path) != NOBODY, self._cache_size
            )
        return decision

    def subtree_allowed(self, subjects: tuple[str, ...], action: str, folder: str) -> bool:
        """`action` on `folder` and everything beneath it, with the same layering as `allowed`."""
        if PROBE in subjects:
            return False
        probed = (*subjects, PROBE)
        if not (
            self._baseline.subtree_allowed(probed, action, folder)
            and self._owner.subtree_allowed(probed, action, folder)
        ):
            return False  # a deny in either layer could match beneath the folder
        if self._baseline.subtree_allowed(subjects, action, folder):
            return True
        return self._owner.subtree_allowed(subjects, action, folder) and self._baseline.subtree_allowed(
            self._capped_by, action, folder
        )

    def deciding_rule(self, subjects: tuple[str, ...], action: str, path: str) -> tuple[str, Rule] | None:
        """The layer and rule behind `allowed` (a deny in either layer first), or None when nothing matched."""
        for name, index in ((BASELINE, self._baseline), (OWNER, self._owner)):
            rule = index.deciding_rule(subjects, action, path)
            if rule is not None and rule.effect != ALLOW:
                return name, rule
        layer = self.deciding_layer(subjects, action, path)
        if layer == BASELINE:
            rule = self._baseline.deciding_rule(subjects, action, path)
        elif layer == OWNER:
            rule = self._owner.deciding_rule(subjects, action, path)
        else:
            return None
        return (layer, rule) if rule is not None else None

    def deciding_layer(self, subjects: tuple[str, ...], action: str, path: str) -> str:
        """BASELINE or OWNER for the layer whose allow applies, NOBODY when refused."""
        if PROBE in subjects:
            return NOBODY
        probed = (*subjects, PROBE)
        if not self._baseline.allowed(probed, action, path) or not self._owner.allowed(probed, action, path):
            return NOBODY  # an explicit deny in either layer
        if self._baseline.allowed(subjects, action, path):
            return BASELINE
        if self._owner.allowed(subjects, action, path) and self._baseline.allowed(self._capped_by, action, path):
            return OWNER
        return NOBODY
