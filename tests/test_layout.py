"""The shape of the package holds: no import cycles in bitsdb/, click only in bitsdb/cli/.

The graph is built from the source with `ast` (imports inside functions count: a lazy
import is still a dependency), so a cycle fails here before it can bite at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bitsdb"


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path, modules: dict[str, Path] | None = None) -> list[str]:
    """Absolute names of everything `module` imports (relative imports resolved). `from pkg import
    mod` depends on `pkg.mod` only; `from pkg import name` depends on `pkg` (its __init__)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.append(full if modules is not None and full in modules else base)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    for module, path in modules.items():
        deps = set()
        for name in imported_names(module, path, modules):
            while name and name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name != module:
                deps.add(name)
        graph[module] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}            # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph(module_files()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_click_only_in_the_cli_package():
    offenders = [module for module, path in module_files().items()
                 if not (module == "bitsdb.cli" or module.startswith("bitsdb.cli."))
                 and any(name.split(".")[0] == "click" for name in imported_names(module, path))]
    assert offenders == []


def test_the_checker_sees_a_cycle_and_click(tmp_path):
    """The checks above are only worth something if they can fail."""
    root = tmp_path / "bitsdb"
    (root / "low").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "api.py").write_text("from .low import reader\n")
    (root / "low" / "__init__.py").write_text("")
    (root / "low" / "reader.py").write_text("def f():\n    from ..api import g\n    import click\n")
    modules = module_files(root)
    assert find_cycle(import_graph(modules)) == ["bitsdb.api", "bitsdb.low.reader", "bitsdb.api"]
    assert "click" in imported_names("bitsdb.low.reader", modules["bitsdb.low.reader"], modules)


def test_builders_of_artefacts_live_in_forge():
    """Writers of databases, state files, sample records and image fixtures are in bitsdb/forge/."""
    for module in module_files():
        leaf = module.rsplit(".", 1)[-1]
        if any(word in leaf for word in ("builder", "synthetic", "testdata", "fixture")):
            assert module.startswith("bitsdb.forge."), module


#: Layers from the bottom up (docs/LAYOUT.md). A module may import its own layer and those before it.
LAYERS = ("bitsdb.text", "bitsdb.formats", "bitsdb.timeutil", "bitsdb.model", "bitsdb.bitscmd", "bitsdb.decode",
          "bitsdb.sources", "bitsdb.carve", "bitsdb.stores", "bitsdb.evidence", "bitsdb.history", "bitsdb.rules",
          "bitsdb.timeline", "bitsdb.output", "bitsdb.report", "bitsdb.forge",
          "bitsdb.api", "bitsdb", "bitsdb.cli", "bitsdb.__main__")


def layer_of(module: str) -> int:
    matches = [index for index, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")]
    assert matches, f"{module} belongs to no layer: add its package to LAYERS and docs/LAYOUT.md"
    return max(matches, key=lambda index: len(LAYERS[index]))


def test_lower_layers_never_import_higher_ones():
    graph = import_graph(module_files())
    upward = [f"{module} -> {dep}" for module, deps in sorted(graph.items()) for dep in sorted(deps)
              if layer_of(dep) > layer_of(module)]
    assert upward == []
