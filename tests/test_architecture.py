"""The package's shape, checked: imports run one way down the layers (no cycles), functions stay short.

Layers, top to bottom: estimators/cli -> job -> cluster and the model -> data/scoring/nn and the
model file format -> params/names/errors. A module imports only from its own layer or below.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "dask_dl"

LAYERS = {  # module (dotted, without "dask_dl.") or sub-package -> layer
    "names": 0, "params": 0, "errors": 0, "task_names": 0,
    "data": 1, "scoring": 1, "nn": 1, "persist": 1, "plots": 1, "progress": 1,
    "cluster": 2, "model": 2, "inputs": 2, "autoencoding": 2, "export": 2, "onnx_export": 2, "display": 2, "explain": 2,
    "job": 3, "checkpoint": 3, "grid": 4, "crossval": 4,
    "estimators": 4, "cli": 4,
    "__init__": 0,  # the version and lazy public names (PEP 562): it imports no module when loaded
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts)


def _layer(module: str) -> int:
    head = module.split(".")[0]
    assert head in LAYERS, f"module dask_dl.{module} has no layer in tests/test_architecture.py: add it"
    return LAYERS[head]


def _is_module(dotted: str) -> bool:
    path = PACKAGE.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _submodule(module: str, name: str) -> str:
    """``from module import name``: the submodule when ``name`` is one, else the module itself."""
    return f"{module}.{name}" if _is_module(f"{module}.{name}") else module


def _imports(path: pathlib.Path) -> set:
    """dask_dl modules imported by ``path`` (anywhere in it: module level or inside functions)."""
    package = _module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                if node.module:
                    names = [_submodule(".".join(base + [node.module]), a.name) for a in node.names]
                else:  # "from . import x": a module x, or a name of the package itself
                    names = [".".join(base + [a.name]) if _is_module(".".join(base + [a.name]))
                             else ".".join(base) or "__init__" for a in node.names]
            elif node.module and node.module.startswith("dask_dl."):
                names = [_submodule(node.module[len("dask_dl."):], a.name) for a in node.names]
            elif node.module == "dask_dl":
                names = [a.name if _is_module(a.name) else "__init__" for a in node.names]
            else:
                continue
            found.update(n for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name[len("dask_dl."):] for a in node.names if a.name.startswith("dask_dl."))
    return found


def _modules() -> dict:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_imports_from_its_own_layer_or_below():
    wrong = []
    for module, path in _modules().items():
        for target in _imports(path):
            if _layer(target) > _layer(module):
                wrong.append(f"dask_dl.{module} (layer {_layer(module)}) imports dask_dl.{target} "
                             f"(layer {_layer(target)})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    modules = _modules()

    def resolve(target):  # "cluster" (a package) -> "cluster.__init__"
        return target if target in modules else f"{target}.__init__" if f"{target}.__init__" in modules else None

    graph = {m: {t for t in map(resolve, _imports(p)) if t and t != m} for m, p in modules.items()}
    graph.pop("__init__", None)  # the package's lazy public names (PEP 562) import nothing at load
    state: dict = {}

    def visit(m, path):
        state[m] = "open"
        for t in graph.get(m, ()):
            if state.get(t) == "open":
                pytest.fail("import cycle: " + " -> ".join(path[path.index(t):] + [t]) if t in path
                            else f"import cycle through {t}")
            if t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])


def _is_numba(fn: ast.FunctionDef) -> bool:
    return any("njit" in ast.unparse(d) or "intrinsic" in ast.unparse(d) for d in fn.decorator_list)


@pytest.mark.parametrize("limit,numba", [(60, False), (120, True)])
def test_functions_fit_on_a_screen(limit, numba):
    """Outside the numba kernels no function is longer than ~60 lines; kernels stay under ~120."""
    long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_numba(node) == numba:
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    long.append(f"dask_dl.{module}.{node.name}: {length} lines")
    assert not long, f"functions over {limit} lines:\n" + "\n".join(long)
