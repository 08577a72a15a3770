"""A startup check that the registry's path arguments are real parameters of their tools.

Authorization reads the registry (`path_args`, `RESOLVED_ARGS`), tools read their
own parameters: if the two drift apart (a parameter renamed), the resolve stage
finds no path and the call would be decided on nothing. The server refuses to
start instead, and the authorize stage refuses a call that names no document
unless its tool declares every document argument optional.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from ..registry import RESOLVED_ARGS, ToolSpec


class RegistryMismatch(RuntimeError):
    """The registry names a path argument its tool function does not have."""


def check_tool_paths(specs: Iterable[ToolSpec], function_of: Callable[[ToolSpec], Callable]) -> frozenset[str]:
    """Raise RegistryMismatch on drift; return the tools that may be called without any document."""
    documentless = set()
    for spec in specs:
        parameters = inspect.signature(function_of(spec)).parameters
        missing = [name for name in spec.path_args if name not in parameters]
        if missing:
            raise RegistryMismatch(
                f"tool {spec.name!r}: registry path argument(s) {missing} are not parameters of its function"
            )
        if spec.action is None or spec.filtered:
            continue
        document_args = [name for name in (*spec.path_args, *RESOLVED_ARGS) if name in parameters]
        if not document_args:
            raise RegistryMismatch(
                f"tool {spec.name!r} needs {spec.action} on a document but takes no document argument"
            )
        if all(parameters[name].default is not inspect.Parameter.empty for name in document_args):
            documentless.add(spec.name)
    return frozenset(documentless)
