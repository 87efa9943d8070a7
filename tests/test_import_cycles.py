"""fungrad's modules import downward only: no import cycle inside the package, and no import
placed inside a function (the usual way a cycle is hidden).

The import graph is built statically, with ``ast``, from every ``fungrad/**/*.py``: module-level
and function-level imports, relative imports resolved, ``from package import submodule`` read
as an import of the submodule, and ``from package import name`` as an import of the package's
``__init__``. A module never counts as importing the packages that contain it (Python
initialises them first anyway), unless it takes a name from one of them.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "fungrad"

# Optional dependencies imported where they are first needed, so that ``import fungrad`` does
# not load them: each is slow to load or may be missing, and only one feature uses it.
LAZY = {
    "cupy",                   # GPU buffers, kernels and NCCL: only once a device buffer exists
    "fungrad.backends.cupy",  # fungrad's CuPy overrides, which import cupy
    "mpi4py",                 # MPI: only when a multi-process run starts (fungrad/distributed)
    "ml_dtypes",              # bfloat16/float8: on first use (tests/test_lazy_ml_dtypes.py)
    "numexpr",                # the optional "numexpr" fusion strategy: when it is chosen
}


def _modules() -> dict[str, tuple[pathlib.Path, bool]]:
    """Every module of the package: dotted name -> (path, is_package)."""
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


MODULES = _modules()


def _resolve(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom
             ) -> list[tuple[str, str | None]]:
    """The absolute targets of one import statement, as ``(module, name or None)`` pairs."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    base = module if is_pkg else module.rpartition(".")[0]
    for _ in range(max(node.level - 1, 0)):
        base = base.rpartition(".")[0]
    target = (base + "." + node.module if node.module else base) if node.level else node.module
    return [(target, alias.name) for alias in node.names]


def _imports(module: str) -> list[tuple[int, bool, str, str | None]]:
    """``(line, inside_a_function, target, name)`` for every import statement of ``module``."""
    path, is_pkg = MODULES[module]
    return _imports_in(path.read_text(), module, is_pkg)


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _imports_in(source: str, module: str, is_pkg: bool) -> list[tuple[int, bool, str, str | None]]:
    """``_imports`` of the source text of ``module``: import statements, and calls of
    ``importlib.import_module`` or ``__import__`` with a literal name (a class body runs at
    import time: it counts as module level)."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((child.lineno, in_function, target, name)
                             for target, name in _resolve(module, is_pkg, child))
            elif _dynamic_import(child):
                found.append((child.lineno, in_function, child.args[0].value, None))
            visit(child, in_function or isinstance(child, _FUNCTIONS))

    visit(ast.parse(source, module), False)
    return found


def _dynamic_import(node: ast.AST) -> bool:
    """``importlib.import_module("name")`` or ``__import__("name")``."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "__import__") or (
        isinstance(f, ast.Attribute) and f.attr == "import_module")


def _edges(module: str, target: str, name: str | None) -> set[str]:
    """The package modules that one import makes ``module`` depend on."""
    if target.split(".")[0] != "fungrad":
        return set()
    own_packages = {module.rsplit(".", i)[0] for i in range(module.count(".") + 1)}
    parts = target.split(".")
    deps = {".".join(parts[:i]) for i in range(1, len(parts))} - own_packages
    if name is not None and f"{target}.{name}" in MODULES:
        deps |= {target} - own_packages
        deps.add(f"{target}.{name}")
    else:
        deps.add(target)  # a name taken from a module, or from a package's __init__
    return {d for d in deps if d in MODULES and d != module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its body)."""
    return {module: set().union(*(_edges(module, target, name)
                                  for _, _, target, name in _imports(module)))
            for module in MODULES}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component of ``graph`` that has one."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def connect(v: str) -> None:  # Tarjan's algorithm, iterative (the graph is deep)
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == node:
                            break
                    components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_shortest_cycle(graph, component) for component in components if len(component) > 1]


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    start = min(component)
    parent, frontier = {start: None}, [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if child not in parent:
                    parent[child] = node
                    next_frontier.append(child)
        frontier = next_frontier
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, ("import cycles inside fungrad (one shortest cycle per tangle):\n"
                        + "\n".join(" -> ".join(c) for c in cycles))


def test_no_import_inside_a_function():
    hidden = [f"{MODULES[m][0].relative_to(ROOT.parent)}:{line}: "
              + (f"from {target} import {name}" if name else f"import {target}")
              for m in MODULES for line, in_function, target, name in _imports(m)
              if in_function and not any(target == m or target.startswith(m + ".") for m in LAZY)]
    assert not hidden, ("imports placed inside functions (move them to the top of the module; "
                        "an optional dependency goes in LAZY):\n" + "\n".join(hidden))


@pytest.mark.parametrize("source, expected", [
    ("a", [["fungrad.a", "fungrad.b", "fungrad.a"]]),  # a two-module cycle, spelled out
    ("none", []),
])
def test_find_cycles_reports_the_path(source, expected):
    graph = {"fungrad.a": {"fungrad.b"}, "fungrad.b": {"fungrad.a"} if source == "a" else set(),
             "fungrad.c": {"fungrad.a"}}
    assert find_cycles(graph) == expected


def test_imports_inside_functions_are_found():
    source = ("import numpy\nfrom . import shapes\nclass A:\n    from .dot import Precision\n"
              "    def f(self):\n        from fungrad import lax\ng = lambda: __import__('os')\n"
              "h = importlib.import_module('fungrad.tree')\n")
    assert _imports_in(source, "fungrad.lax.conv", False) == [
        (1, False, "numpy", None), (2, False, "fungrad.lax", "shapes"),
        (4, False, "fungrad.lax.dot", "Precision"), (6, True, "fungrad", "lax"),
        (7, True, "os", None), (8, False, "fungrad.tree", None)]
    assert _imports_in("from .. import tree", "fungrad.lax", True) == [
        (1, False, "fungrad", "tree")]


def test_edges_of_package_imports():
    # ``from fungrad.lax import shapes`` imports a submodule: the package's __init__ counts too,
    # except from inside that package; ``from fungrad.lax import add`` takes a name from __init__.
    assert _edges("fungrad.numpy._ufuncs", "fungrad.lax", "shapes") == {"fungrad.lax",
                                                                        "fungrad.lax.shapes"}
    assert _edges("fungrad.lax.dot", "fungrad.lax", "shapes") == {"fungrad.lax.shapes"}
    assert _edges("fungrad.lax.dot", "fungrad.lax", "add") == {"fungrad.lax"}
    assert _edges("fungrad.lax.dot", "fungrad", "lax") == {"fungrad.lax"}
    assert _edges("fungrad.lax.dot", "numpy", None) == set()
