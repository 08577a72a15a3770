"""Why a request is decided as it is when an owner file is layered on the baseline: which layer decided."""

from __future__ import annotations

from dataclasses import dataclass

from .explain import Explanation, explain, render
from .layers import BASELINE, OWNER, LayeredDecider, OwnerPolicy
from .source import Finding, PolicySnapshot


@dataclass(frozen=True)
class LayeredExplanation:
    layer: str
    baseline: Explanation
    owner: Explanation
    # The baseline's answer for the owner itself: the most an owner rule can grant here.
    cap: Explanation
    ignored: tuple[Finding, ...]

    @property
    def allowed(self) -> bool:
        return self.layer in (BASELINE, OWNER)

    @property
    def decided_by(self) -> str:
        if self.baseline.denies or self.layer == BASELINE:
            return "the baseline"
        if self.owner.denies or self.layer == OWNER:
            return "the owner file"
        return "nobody (default deny)"

    @property
    def reason(self) -> str:
        if self.baseline.denies:
            return "a deny in the baseline matches (a deny always wins)"
        if self.owner.denies:
            return "a deny in the owner file matches (a deny always wins)"
        if self.layer == BASELINE:
            return "the baseline allows it"
        if self.layer == OWNER:
            return "the owner file allows it, and the baseline allows the owner the same"
        if self.owner.allows:
            return (
                "the owner file allows it, but the baseline does not allow the owner the same "
                "(owner rules grant nothing the owner lacks)"
            )
        return "no rule in either layer grants it (default deny)"


def explain_layers(
    baseline: PolicySnapshot,
    owner: OwnerPolicy,
    capped_by: tuple[str, ...],
    subjects: tuple[str, ...],
    action: str,
    path: str,
) -> LayeredExplanation:
    decider = LayeredDecider(baseline, owner, capped_by, cache_size=0)
    return LayeredExplanation(
        layer=decider.deciding_layer(subjects, action, path),
        baseline=explain(baseline, subjects, action, path),
        owner=explain(owner.snapshot, subjects, action, path),
        cap=explain(baseline, capped_by, action, path),
        ignored=owner.ignored,
    )


def render_layers(explanation: LayeredExplanation) -> str:
    verdict = "ALLOW" if explanation.allowed else "DENY"
    request = explanation.baseline
    lines = [
        f"{verdict}: {request.action} on {request.path or '(the server root)'}",
        f"  decided by: {explanation.decided_by}",
        f"  subjects: {', '.join(request.subjects)}",
        f"  because {explanation.reason}",
    ]
    sections = [("baseline", explanation.baseline), ("owner file", explanation.owner)]
    if explanation.owner.allows and not explanation.baseline.allows:
        sections.append((f"the owner ({', '.join(explanation.cap.subjects)}) in the baseline", explanation.cap))
    for title, part in sections:
        rules = _rule_lines(part)
        lines.append(f"  {title}: {'ALLOW' if part.allowed else 'DENY'}" + ("" if rules else " (no rule matches)"))
        lines.extend("  " + line for line in rules)
    if explanation.ignored:
        lines.append("  ignored owner rules:")
        lines.extend(f"    {finding}" for finding in explanation.ignored)
    return "\n".join(lines)


def _rule_lines(explanation: Explanation) -> list[str]:
    # render() opens with the verdict, the subjects and the reason; the rule listing follows.
    return render(explanation).splitlines()[3:]
