"""Range checks for numeric settings, as `@validate` handlers the config mixins bind.

traitlets finds a class's handlers by attribute name, so a handler a mixin binds under a name another
mixin also uses is silently hidden in `CollabMCP`; bind each under a name of its own
(tests/test_reference_docs.py checks that none is hidden).
"""

from __future__ import annotations

from typing import Any

from traitlets import TraitError, validate
from traitlets.traitlets import ValidateHandler


def positive(*names: str) -> ValidateHandler:
    """Sizes, timeouts and intervals: 0 or less makes no sense."""

    @validate(*names)
    def check(self: Any, proposal: Any) -> Any:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be positive, not {proposal['value']}")
        return proposal["value"]

    return check


def not_negative(*names: str) -> ValidateHandler:
    """Counts and delays where 0 is meaningful (off, unlimited, at once)."""

    @validate(*names)
    def check(self: Any, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more, not {proposal['value']}")
        return proposal["value"]

    return check
