"""The package's imports follow the layers docs/architecture.md draws, and no two layers import each other.

Each module belongs to a layer (its package, or itself for a top-level module); the three files that
are the gateway's call contract (errors, paths, context) form a layer of their own, below the chain.
Imports under `if TYPE_CHECKING:` only name types for annotations: they are not dependencies at run
time and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "jupyter_collab_mcp_secure"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE
CONTRACT_MODULES = {"gateway.errors", "gateway.paths", "gateway.context"}

BASE = {
    "config_ranges",
    "registry",
    "state_dir",
    "room_ids",
    "path_templates",
    "trusted_files",
    "hub",
    "lifecycle",
    "timestamps",
    "upstream",
}
BELOW_GATEWAY = BASE | {"identity", "contract"}
# What each layer may import besides itself; the table docs/architecture.md shows.
ALLOWED: dict[str, set[str]] = {
    # upstream.py is the seam to other packages' private APIs: any layer may go through it.
    **{name: {"config_ranges", "upstream"} for name in BASE},
    "identity": set(),
    "contract": {"identity", "registry"},
    "policy": BELOW_GATEWAY,
    "ratelimit": BELOW_GATEWAY,
    "rtc": BELOW_GATEWAY,
    # audit's review filters paths with the policy's glob; it reports the refusal budget's counts.
    "audit": BELOW_GATEWAY | {"policy", "ratelimit"},
    "gateway": BELOW_GATEWAY | {"policy", "audit", "ratelimit"},
    "tools": BELOW_GATEWAY | {"rtc"},
    "server": BELOW_GATEWAY | {"gateway", "tools"},
    "transport": BELOW_GATEWAY,
    "extension": {"*"},
    "cli": {"*"},
    "package": {"extension"},
}


def layer_of(module: str) -> str:
    """`gateway.stages.audit` -> `gateway`; the package's own `__init__` is `package`."""
    if not module:
        return "package"
    if ".".join(module.split(".")[:2]) in CONTRACT_MODULES:
        return "contract"
    return module.split(".")[0]


def _type_checking_only(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _targets(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    """Absolute module names (relative to the package, `""` for the package itself) an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level:
        base = package[: len(package) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
        names = [f"{stem}.{alias.name}" for alias in node.names] if node.module is None else [stem]
    else:
        names = [node.module or ""]
    ours = [name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")]
    return [name.removeprefix(PACKAGE).removeprefix(".") for name in ours]


def imports() -> list[tuple[str, str, str]]:
    """(importing module, imported module, where) for every run-time import of our own modules."""
    found = []
    for file in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(file.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        package = parts if file.name == "__init__.py" else parts[:-1]
        module = ".".join(parts[1:])
        tree = ast.parse(file.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in skipped:
                for target in _targets(node, package):
                    found.append((module, target, f"{file.relative_to(PACKAGE_DIR.parent)}:{node.lineno}"))
    return found


def layer_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for source, target, _ in imports():
        if layer_of(source) != layer_of(target):
            graph.setdefault(layer_of(source), set()).add(layer_of(target))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return stack[stack.index(successor) :] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_belongs_to_a_documented_layer():
    modules = {source for source, _, _ in imports()} | {target for _, target, _ in imports()}
    unknown = sorted({layer_of(module) for module in modules} - ALLOWED.keys())
    assert not unknown, f"layers missing from ALLOWED and docs/architecture.md: {unknown}"


def test_no_import_breaks_the_layering():
    broken = [
        f"{where}: {layer_of(source)} imports {target or PACKAGE} ({layer_of(target)})"
        for source, target, where in imports()
        if layer_of(source) != layer_of(target)
        and "*" not in ALLOWED.get(layer_of(source), set())
        and layer_of(target) not in ALLOWED.get(layer_of(source), set())
    ]
    assert not broken, "imports against docs/architecture.md's layers:\n" + "\n".join(broken)


def test_no_layer_cycle():
    assert find_cycle(layer_graph()) is None, f"import cycle between layers: {' -> '.join(find_cycle(layer_graph()))}"


def test_the_checks_see_a_cycle_and_an_upward_import():
    # The checks themselves, on a known graph and a known import, so a parsing slip cannot pass silently.
    assert find_cycle({"gateway": {"policy"}, "policy": {"rtc"}, "rtc": {"gateway"}}) == [
        "gateway",
        "policy",
        "rtc",
        "gateway",
    ]
    assert find_cycle({"gateway": {"policy"}, "policy": {"rtc"}}) is None
    found = {(layer_of(source), layer_of(target)) for source, target, _ in imports()}
    assert ("gateway", "policy") in found and ("tools", "rtc") in found and ("rtc", "contract") in found
    assert layer_of("gateway.stages.audit") == "gateway" and layer_of("gateway.errors") == "contract"
