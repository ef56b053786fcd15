"""The package's layout: each stage imports only from itself and the stages before it, with no cycles.

Data flows one way: documents → passages → store → retrieval → reading → answers → API/UI. The
test reads every module's imports (at any depth, including ones inside functions) with ``ast``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parent.parent / "qa"

# In flow order. A module may import from its own stage and from earlier ones, never later ones.
STAGES = [
    ("foundation", {"qa", "qa.schema", "qa.settings", "qa.models", "qa.onnx"}),
    ("embedding", {"qa.embedding"}),
    ("stores", {"qa.stores"}),
    ("ingest", {"qa.ingest"}),
    ("retrieval", {"qa.retrieval"}),
    ("reading", {"qa.reading"}),
    ("answering", {"qa.answering"}),
    ("evaluation", {"qa.evaluation"}),
    ("serving", {"qa.serving"}),
    ("cli", {"qa.cli", "qa.__main__"}),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (``from qa.x import y`` counts qa.x.y if it is a module)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        for target in targets:
            if target in known:
                found.add(target)
            elif target.startswith("qa.") or target == "qa":
                parent = target.rsplit(".", 1)[0]
                if parent in known:
                    found.add(parent)
    found.discard(name)
    return found


def stage_of(name: str) -> int:
    for i, (_, members) in enumerate(STAGES):
        if any(name == m or name.startswith(m + ".") for m in members if m != "qa") or name == "qa" and "qa" in members:
            return i
    raise AssertionError(f"{name} belongs to no stage: add it to STAGES in {__file__}")


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) - {"qa"} for name, path in found.items()}


def test_every_module_belongs_to_a_stage():
    for name in modules():
        stage_of(name)


def test_no_module_imports_from_a_later_stage():
    against = [f"{name} ({STAGES[stage_of(name)][0]}) imports {dep} ({STAGES[stage_of(dep)][0]})"
               for name, deps in graph().items() for dep in sorted(deps) if stage_of(dep) > stage_of(name)]
    assert not against, "imports against the flow:\n" + "\n".join(against)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_catch_a_cycle_and_a_backward_import():
    """The checker itself: a made-up graph with a cycle is caught, and a stage order violation is seen."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert stage_of("qa.stores.local") < stage_of("qa.retrieval.search") < stage_of("qa.serving.app")
