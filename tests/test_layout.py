"""The package's layout rules, read from its source with ``ast``: no import cycles, and complete ``__all__`` lists.

Imports: every ``import`` and ``from ... import`` of a module of ``mlsm``, at any depth (inside functions and
methods included), except those under ``if TYPE_CHECKING:`` (they never run). Relative imports are resolved.
``from P import name`` is an import of the module ``P.name`` when that is a module of the package, else of ``P``
(a package is its ``__init__``). Importing ``P.M`` is not counted as importing ``P``'s ``__init__`` too: Python runs
it, but a package's ``__init__`` importing its own modules is how packages re-export.

Public modules: every module whose dotted name has no part starting with ``_`` (a package's ``__init__`` is the
package), ``__main__`` excluded. Its public definitions are the names bound at its top level (``def``, ``class``,
assignment, also inside a top-level ``if`` or ``try``, not under ``if TYPE_CHECKING:``) that do not start with
``_``; names it imports are not definitions. A module's ``__all__`` lists exactly its public definitions. A
package's ``__init__`` re-exports: its ``__all__`` lists exactly its public definitions and the public names it
imports from its own modules (``__version__`` may be listed too, as ``mlsm`` does: any name it lists must be bound
at its top level).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlsm

PACKAGE = Path(mlsm.__file__).resolve().parent


@dataclass
class Module:
    name: str  # dotted: mlsm.stores.base; a package is its __init__: mlsm.stores
    path: Path
    is_package: bool
    tree: ast.Module = field(repr=False)


@functools.cache  # parsed once for all the tests here; nothing changes them
def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        found[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_runtime(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` that can run: the bodies of ``if TYPE_CHECKING:`` are skipped (their ``else``s
    are not)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk_runtime(other)
            continue
        yield child
        yield from _walk_runtime(child)


def _resolve(module: Module, level: int, target: str | None) -> str:
    """The absolute name of ``from <dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _known(name: str, modules: dict[str, Module]) -> str | None:
    """The module of the package that importing ``name`` runs: ``name`` itself, else its longest known prefix."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports when it runs."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module in modules.values():
        for node in _walk_runtime(module.tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node.level, node.module)
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names
                ]
            for target in targets:
                known = _known(target, modules)
                if known is not None and known != module.name:
                    graph[module.name].add(known)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> ... -> a``) per strongly connected group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the package is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(graph[node]):
            if after not in index:
                connect(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_one_cycle(graph, group) for group in groups]


def _one_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for after in sorted(graph[node] & group):
                if after == start:
                    return [*paths[node], start]
                if after not in paths:
                    paths[after] = [*paths[node], after]
                    following.append(after)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def test_the_package_has_no_import_cycles() -> None:
    found = cycles(import_graph(_modules()))
    assert not found, "import cycles (imports inside functions count):\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    source = {
        "mlsm.a": "from mlsm.b import x\n",
        "mlsm.b": "def f():\n    from mlsm import c\n",
        "mlsm.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mlsm.d import y\nfrom . import a\n",
        "mlsm.d": "from mlsm.c import z\n",
    }
    modules = {name: Module(name, Path(name), False, ast.parse(text)) for name, text in source.items()}
    assert cycles(import_graph(modules)) == [["mlsm.a", "mlsm.b", "mlsm.c", "mlsm.a"]]


# -- __all__ --------------------------------------------------------------------------------------------------


def _top_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """The statements that run at import: the module's, and those of its top-level ``if``/``try`` blocks."""
    for node in tree.body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _top_level(ast.Module(body=[*node.body, *node.orelse], type_ignores=[]))
            else:
                yield from _top_level(ast.Module(body=node.orelse, type_ignores=[]))
        elif isinstance(node, ast.Try):
            handlers = [statement for handler in node.handlers for statement in handler.body]
            yield from _top_level(ast.Module(body=[*node.body, *handlers, *node.orelse], type_ignores=[]))
        else:
            yield node


def _assigned(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for item in target.elts:
            yield from _assigned(item)


def _declared_all(module: Module) -> list[str] | None:
    for node in _top_level(module.tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                value = ast.literal_eval(node.value)
                assert isinstance(value, (list, tuple)), f"{module.name}: __all__ is not a list of names"
                return list(value)
    return None


def _bindings(module: Module, modules: dict[str, Module]) -> tuple[set[str], set[str], set[str]]:
    """The names ``module`` defines, the names it imports from the package's own modules (for a package: from
    the modules inside it), and every name bound at its top level."""
    defined: set[str] = set()
    own_imports: set[str] = set()
    bound: set[str] = set()
    for node in _top_level(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(name for target in node.targets for name in _assigned(target))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            defined.update(_assigned(node.target))
        elif isinstance(node, ast.Import):
            bound.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = {alias.asname or alias.name for alias in node.names}
            bound.update(names)
            source = _resolve(module, node.level, node.module)
            if module.is_package and source.startswith(module.name + "."):
                own_imports.update(names)
    defined.discard("__all__")
    return defined, own_imports, bound | defined


def _public_modules(modules: dict[str, Module]) -> list[Module]:
    return [
        module for name, module in sorted(modules.items()) if not any(part.startswith("_") for part in name.split("."))
    ]


def test_every_public_module_lists_exactly_its_public_names_in_all() -> None:
    modules = _modules()
    problems = []
    for module in _public_modules(modules):
        listed = _declared_all(module)
        defined, own_imports, bound = _bindings(module, modules)
        public = {name for name in defined | own_imports if not name.startswith("_")}
        if listed is None:
            problems.append(f"{module.name}: no __all__ (public names: {', '.join(sorted(public)) or 'none'})")
            continue
        if len(listed) != len(set(listed)):
            problems.append(f"{module.name}: __all__ lists a name twice")
        missing = public - set(listed)
        extra = {name for name in listed if name not in bound or (name not in public and not name.startswith("__"))}
        if missing:
            problems.append(f"{module.name}: __all__ lacks {', '.join(sorted(missing))}")
        if extra:
            problems.append(f"{module.name}: __all__ lists {', '.join(sorted(extra))}, not defined there")
    assert not problems, "\n".join(problems)


def test_public_modules_are_found_by_their_names() -> None:
    names = {module.name for module in _public_modules(_modules())}
    assert {"mlsm", "mlsm.stores", "mlsm.stores.base", "mlsm.lifecycle.release"} <= names
    assert not names & {"mlsm.__main__", "mlsm.runs._local", "mlsm._version", "mlsm.engine._engine"}
