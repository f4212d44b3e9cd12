"""The package's layering (docs/architecture in the README): a module imports only from its own
layer or the layers below it, so data flows one way and no cycle can form across layers."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlr_mlflow"
LAYERS = {  # the first matching prefix decides a module's layer
    1: ("tracking", "sandbox", "kinds", "config", "resources", "provenance", "stats"),
    2: ("hypothesis", "fingerprint", "validate", "generate", "reward"),
    3: ("evaluate", "executors"),
    4: ("round", "audit", "suite_check"),
    5: ("cli", "terminal", "commands", "scheduling", "dashboard", "plugins", "__main__", "__init__"),
}


def layer_of(module: str) -> int:
    first = module.split(".")[0]
    for layer, prefixes in LAYERS.items():
        if first in prefixes:
            return layer
    raise AssertionError(f"module {module!r} has no layer: add it to LAYERS and to the README")


def imports_of(path: Path, module: str) -> set[str]:
    """Every mlr_mlflow module imported anywhere in the file, function bodies included."""
    package = module.rpartition(".")[0] if path.name != "__init__.py" else module
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [".".join(base + [a.name]) for a in node.names]
            elif (node.module or "").startswith("mlr_mlflow"):
                names = [node.module.removeprefix("mlr_mlflow").lstrip(".")]
            else:
                continue
            found.update(n for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("mlr_mlflow.") for a in node.names
                         if a.name.startswith("mlr_mlflow."))
    return found


def test_every_module_imports_only_from_its_layer_or_below():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        module = ".".join(rel.parts)
        own = layer_of(module)
        for target in imports_of(path, module):
            if layer_of(target) > own:
                wrong.append(f"{module} (layer {own}) imports {target} (layer {layer_of(target)})")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..rounds import Round\n    from . import names\n")
    assert imports_of(probe, "tracking.probe") == {"rounds", "tracking.names"}


def test_no_import_cycle_between_top_level_parts():
    """Within a layer too: e.g. the scheduler's jobs never call the CLI's commands, which start it."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        top = module.split(".")[0]
        graph.setdefault(top, set()).update(t.split(".")[0] for t in imports_of(path, module)
                                            if t.split(".")[0] not in (top, "__init__"))

    def reaches(start: str, goal: str, seen: set) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(top for top in graph if reaches(top, top, {top}))
    assert not cycles, f"import cycles through: {', '.join(cycles)}"


def test_every_relative_import_names_something_that_exists():
    """A module moved into a package keeps `from .sandbox import ...` lines that now point nowhere;
    such an import only fails when its function first runs (a round's, in a user's hands)."""
    import importlib
    import importlib.util

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        if parts[-1] == "__init__":
            package = parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[:len(package) - (node.level - 1)]
            if node.module:
                target = ".".join(base + [node.module])
                if importlib.util.find_spec(target) is None:
                    missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {target}")
                continue
            owner = importlib.import_module(".".join(base))
            for alias in node.names:
                target = ".".join(base + [alias.name])
                if not hasattr(owner, alias.name) and importlib.util.find_spec(target) is None:
                    missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {target}")
    assert not missing, "\n".join(missing)
