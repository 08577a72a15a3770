"""Reading a model and a policy into one validated, immutable snapshot.

A snapshot is built completely (parsed, validated, enforcer built, index compiled
elsewhere) before anything uses it, so a decision never sees a half-loaded policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import casbin
from casbin.model import Model
from casbin.persist.adapter import Adapter, load_policy_line

from ..registry import ACTIONS
from .functions import EFFECTS, register_functions
from .glob import pattern_problem

ERROR, WARNING = "error", "warning"
# The words used wherever no rule matched (explain, simulate, the audit record's `rule`).
NO_RULE = "no rule grants it (default deny)"
SUBJECT_KINDS = ("group", "agent", "role", "service")
POLICY_FIELDS = {
    "p": ("subject", "path pattern", "action", "effect"),
    "g": ("member", "role"),
}


@dataclass(frozen=True)
class Finding:
    severity: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass(frozen=True)
class Rule:
    subject: str
    pattern: str
    action: str
    effect: str
    line: int | None = None

    def __str__(self) -> str:
        return f"p, {self.subject}, {self.pattern}, {self.action}, {self.effect}"


@dataclass(frozen=True)
class RoleLink:
    member: str
    role: str
    line: int | None = None

    def __str__(self) -> str:
        return f"g, {self.member}, {self.role}"


class PolicyError(Exception):
    """The files cannot be used; `findings` holds every reason found."""

    def __init__(self, source: str, findings: list[Finding]) -> None:
        self.source = source
        self.findings = findings
        errors = [str(f) for f in findings if f.severity == ERROR]
        super().__init__(f"{source}: " + "; ".join(errors))


@dataclass(frozen=True)
class PolicySnapshot:
    source: str
    sha256: str
    rules: tuple[Rule, ...]
    links: tuple[RoleLink, ...]
    enforcer: casbin.Enforcer = field(compare=False, repr=False)
    # The bundled matcher: the fast index implements exactly this model.
    standard_model: bool = True
    findings: tuple[Finding, ...] = ()


class _TextAdapter(Adapter):
    """Feeds Casbin the very bytes that were validated and hashed (not a second read)."""

    def __init__(self, text: str) -> None:
        self._text = text

    def load_policy(self, model: Model) -> None:
        for raw in self._text.splitlines():
            load_policy_line(raw.strip(), model)


class _LineCapture:
    """Stands in for a Casbin model so `load_policy_line` shows how it splits a line."""

    def __init__(self) -> None:
        self.policy: list[list[str]] = []
        self.model = {"p": {"p": self}, "g": {"g": self}}


def split_line(line: str) -> list[str]:
    capture = _LineCapture()
    load_policy_line("p," + line, capture)
    return capture.policy[0]


def bundled_policies_dir() -> Path:
    # The package folder, found without importing the package (which would import the whole extension).
    package = Path(__file__).resolve().parent.parent
    packaged = package / "policies"
    if packaged.is_dir():
        return packaged
    return package.parent / "policies"


def _normalized(text: str) -> str:
    return "".join(text.split())


def _is_standard(model: Model) -> bool:
    reference = Model()
    reference.load_model(str(bundled_policies_dir() / "model.conf"))
    sections = (("r", "r"), ("p", "p"), ("e", "e"), ("m", "m"))
    same = all(_normalized(model[sec][key].value) == _normalized(reference[sec][key].value) for sec, key in sections)
    return same and set(model.model.get("g", {})) == {"g"} and set(model.model["p"]) == {"p"}


def load_files(model_path: str | Path, policy_path: str | Path) -> PolicySnapshot:
    """Read both files once and build a snapshot, or raise PolicyError."""
    source = str(policy_path)
    try:
        model_text = Path(model_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(source, [Finding(ERROR, None, f"cannot read model {model_path}: {error}")]) from error
    try:
        policy_bytes = Path(policy_path).read_bytes()
    except OSError as error:
        raise PolicyError(source, [Finding(ERROR, None, f"cannot read policy: {error}")]) from error
    return build_snapshot(model_text, policy_bytes, source)


def build_snapshot(model_text: str, policy_bytes: bytes, source: str) -> PolicySnapshot:
    try:
        policy_text = policy_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(source, [Finding(ERROR, None, f"not UTF-8: {error}")]) from error
    model = Model()
    try:
        model.load_model_from_text(model_text)
        if "m" not in model.model or "p" not in model.model or "r" not in model.model:
            raise ValueError("the model needs [request_definition], [policy_definition] and [matchers]")
    except Exception as error:  # Casbin raises bare exceptions of many kinds for a bad model
        raise PolicyError(source, [Finding(ERROR, None, f"model does not load: {error}")]) from error

    rules, links, findings = _parse_lines(policy_text)
    if any(finding.severity == ERROR for finding in findings):
        raise PolicyError(source, findings)
    try:
        enforcer = register_functions(casbin.Enforcer(model, _TextAdapter(policy_text)))
    except Exception as error:
        raise PolicyError(
            source,
            [*findings, Finding(ERROR, None, f"Casbin refuses the policy: {error}")],
        ) from error
    _confirm_casbin_agrees(enforcer, rules, links, source)
    standard = _is_standard(model)
    if not standard:
        findings.append(
            Finding(
                WARNING,
                None,
                "custom model: decisions use the plain Casbin enforcer (slow at scale)",
            )
        )
    return PolicySnapshot(
        source=source,
        sha256=hashlib.sha256(policy_bytes).hexdigest(),
        rules=tuple(rules),
        links=tuple(links),
        enforcer=enforcer,
        standard_model=standard,
        findings=tuple(findings),
    )


def _parse_lines(text: str) -> tuple[list[Rule], list[RoleLink], list[Finding]]:
    rules: list[Rule] = []
    links: list[RoleLink] = []
    findings: list[Finding] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = split_line(line)
        except IndexError:
            findings.append(Finding(ERROR, number, "unbalanced brackets or parentheses"))
            continue
        kind, values = tokens[0], tokens[1:]
        if kind not in POLICY_FIELDS:
            findings.append(Finding(ERROR, number, f"unknown line type {kind!r} (expected 'p' or 'g')"))
            continue
        expected = POLICY_FIELDS[kind]
        if len(values) != len(expected):
            findings.append(
                Finding(
                    ERROR,
                    number,
                    f"'{kind}' needs {len(expected)} fields ({', '.join(expected)}), got {len(values)}",
                )
            )
            continue
        if kind == "p":
            rule = Rule(*values, line=number)
            findings.extend(_rule_problems(rule))
            rules.append(rule)
        else:
            link = RoleLink(*values, line=number)
            for name in (link.member, link.role):
                findings.extend(_subject_problems(name, number))
            links.append(link)
    return rules, links, findings


def _rule_problems(rule: Rule) -> list[Finding]:
    problems = _subject_problems(rule.subject, rule.line)
    if rule.action not in ACTIONS:
        problems.append(
            Finding(
                ERROR,
                rule.line,
                f"unknown action {rule.action!r} (one of {', '.join(ACTIONS)})",
            )
        )
    if rule.effect not in EFFECTS:
        problems.append(Finding(ERROR, rule.line, f"unknown effect {rule.effect!r} (allow or deny)"))
    problem = pattern_problem(rule.pattern)
    if problem:
        problems.append(Finding(ERROR, rule.line, f"pattern {rule.pattern!r} can never match: {problem}"))
    return problems


def _subject_problems(subject: str, line: int | None) -> list[Finding]:
    if not subject:
        return [Finding(ERROR, line, "empty subject")]
    if any(char.isspace() for char in subject):
        return [Finding(ERROR, line, f"subject {subject!r} contains whitespace")]
    kind, colon, name = subject.partition(":")
    if colon and kind not in SUBJECT_KINDS:
        return [
            Finding(
                ERROR,
                line,
                f"unknown subject kind {kind + ':'!r} in {subject!r} (group:, agent:, role:, service: or a user name)",
            )
        ]
    if colon and not name:
        return [Finding(ERROR, line, f"subject {subject!r} has no name after the colon")]
    return []


def _confirm_casbin_agrees(enforcer: casbin.Enforcer, rules: list[Rule], links: list[RoleLink], source: str) -> None:
    """The index is built from our parse; refuse to run if Casbin read the file differently."""
    loaded_rules = [list(values) for values in enforcer.model.model["p"]["p"].policy]
    loaded_links = [list(values) for values in enforcer.model.model.get("g", {}).get("g", _LineCapture()).policy]
    ours_rules = [[r.subject, r.pattern, r.action, r.effect] for r in rules]
    ours_links = [[link.member, link.role] for link in links]
    if loaded_rules != ours_rules or loaded_links != ours_links:
        raise PolicyError(
            source,
            [Finding(ERROR, None, "Casbin read the policy differently from the validator")],
        )
