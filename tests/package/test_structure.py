"""The package layout: no import cycle between senet's subpackages, ``senet.layers`` at the bottom, and
``senet.retrofit`` a plain function beside its package.

The import graph is read from the source with ``ast`` (nothing is imported), counting top-level AND in-function
imports: a lazy import
hides a cycle from Python at import time but not from a reader.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import senet

SRC = Path(senet.__file__).parent
# Leaf modules every subpackage may use; they import nothing of senet.
LEAVES = {"errors", "_version"}


def _unit(module: str) -> str:
    """``senet.models._registry`` -> ``models``; ``senet`` (the facade ``__init__``) -> ``senet``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "senet"


def _imported(node: ast.AST, package: list[str]) -> list[str]:
    """Absolute senet module names an import statement reads (``from senet import x`` counts ``senet.x``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = package[: len(package) - node.level + 1] if node.level else []
    module = ".".join(base + ([node.module] if node.module else []))
    if module == "senet":  # `from senet import layers` imports the subpackage, not the facade
        return [
            f"senet.{a.name}" if (SRC / a.name).exists() or (SRC / f"{a.name}.py").exists() else "senet"
            for a in node.names
        ]
    return [module]


def import_graph() -> dict[str, dict[str, list[str]]]:
    """``{unit: {imported unit: ["file:line", ...]}}`` over every module of src/senet."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(SRC.rglob("*.py")):
        parts = ["senet", *path.relative_to(SRC).with_suffix("").parts]
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        src = _unit(".".join(parts))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package):
                if target != "senet" and not target.startswith("senet."):
                    continue
                dst = _unit(target)
                if dst != src and dst not in LEAVES:
                    graph[src][dst].append(f"{path.relative_to(SRC)}:{node.lineno}")
    return graph


def _find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, {})):
            if state.get(v) == 1:
                return stack[stack.index(v) :] + [v]
            if v not in state and (cycle := visit(v)):
                return cycle
        stack.pop()
        state[u] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_cycle_between_subpackages() -> None:
    graph = import_graph()
    cycle = _find_cycle(graph)
    where = [f"{a} -> {b}: {graph[a][b][:3]}" for a, b in zip(cycle, cycle[1:], strict=False)] if cycle else []
    assert cycle is None, "import cycle " + " -> ".join(cycle) + "\n" + "\n".join(where)


def test_layers_imports_nothing_above_it() -> None:
    assert dict(import_graph().get("layers", {})) == {}


def test_models_do_not_import_weights() -> None:
    # Published weights are loaded above the registry, by senet.create_model (senet/factory.py).
    assert "weights" not in import_graph().get("models", {})


def test_cycle_finder_sees_a_lazy_cycle() -> None:
    assert _find_cycle({"a": {"b": []}, "b": {"a": []}}) == ["a", "b", "a"]
    assert _find_cycle({"a": {"b": []}, "b": {}}) is None


def test_retrofit_is_a_function_and_its_package_still_imports() -> None:
    import inspect

    from senet import retrofit
    from senet.retrofit import attention_modules  # the package, found in sys.modules
    from senet.retrofit.core import retrofit as core_retrofit

    assert inspect.isfunction(retrofit) and retrofit is core_retrofit is senet.retrofit
    assert list(inspect.signature(retrofit).parameters)[:3] == ["model", "attn_layer", "position"]
    assert callable(attention_modules)


def test_sweep_runner_lives_in_train_and_stays_importable_from_analysis() -> None:
    from senet.analysis import ablate
    from senet.train import grids, sweep

    assert ablate.run_sweep is sweep.run_grid and ablate.config_key is sweep.run_key
    assert ablate.senet_train_fn is sweep.senet_train_fn and ablate.Grid is grids.Grid
    assert "analysis" not in import_graph().get("train", {})


def test_cli_holds_no_plotting_preprocessing_or_checkpoint_parsing() -> None:
    # A command parses, calls the library, prints: figures live in senet.analysis.plots, preprocessing in senet.data,
    # checkpoint reading in senet.runs / senet.resolve. These imports and calls in cli/ would mean the logic came back.
    library_only = {"matplotlib", "torchvision", "safetensors", "numpy", "PIL", "onnxruntime"}
    found = []
    for path in sorted((SRC / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in library_only]
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", "") == "torch":
                found.append(f"{path.name}:{node.lineno} calls torch.load")
    assert found == []
